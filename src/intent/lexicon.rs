//! Synonym groups: the words and phrases callers use for one thing (`lexicon.toml`).
//!
//! A knowledge base has a handful of examples per intent; callers have a thousand ways
//! to say each. Stems and character n-grams bridge spelling and inflection, but not
//! "sygesikringskort" vs "sundhedskort" or "nah" vs "no". The lexicon maps every
//! variant (after normalisation and stemming, so matching is on stems) to one group
//! term, for examples and callers alike.

use std::collections::HashMap;

use serde::Deserialize;

use super::normalize::{words, Stemmers};
use super::resolution::Language;

const EMBEDDED: &str = include_str!("lexicon.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    da: Vec<Vec<String>>,
    en: Vec<Vec<String>>,
}

/// The synonym groups of one language, keyed by the stems of each variant.
pub struct Lexicon {
    /// Variant stems → group term.
    variants: HashMap<Vec<String>, String>,
    /// The longest variant, in words.
    longest: usize,
    /// Every word of every variant, canonical.
    words: Vec<String>,
}

impl Lexicon {
    /// The embedded lexicon for `lang`.
    pub fn embedded(lang: Language, stemmers: &Stemmers) -> Lexicon {
        let raw: Raw = toml::from_str(EMBEDDED).expect("the embedded lexicon is valid TOML");
        let groups = match lang {
            Language::Da => raw.da,
            Language::En => raw.en,
        };
        let mut variants = HashMap::new();
        let mut longest = 1;
        let mut all_words = Vec::new();
        for group in groups {
            let Some(name) = group.first() else { continue };
            let term = format!("={}", words(name).join("_"));
            for variant in &group {
                let canonical = words(variant);
                let stems: Vec<String> = canonical.iter().map(|w| stemmers.stem(lang, w)).collect();
                all_words.extend(canonical);
                longest = longest.max(stems.len());
                variants.insert(stems, term.clone());
            }
        }
        Lexicon {
            variants,
            longest,
            words: all_words,
        }
    }

    /// The group term of the longest variant starting at `stems[0]`, and its length.
    pub fn longest_match(&self, stems: &[String]) -> Option<(&str, usize)> {
        (1..=self.longest.min(stems.len())).rev().find_map(|n| {
            self.variants
                .get(&stems[..n])
                .map(|term| (term.as_str(), n))
        })
    }

    /// Every word the lexicon uses, canonical.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Whether a single stem is a known variant (used to recognise compound parts).
    pub fn knows(&self, stem: &str) -> bool {
        self.variants
            .contains_key(std::slice::from_ref(&stem.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_variant_is_in_two_groups() {
        let stemmers = Stemmers::default();
        let raw: Raw = toml::from_str(EMBEDDED).unwrap();
        let mut clashes = Vec::new();
        for (lang, groups) in [(Language::Da, raw.da), (Language::En, raw.en)] {
            let mut owner: HashMap<Vec<String>, String> = HashMap::new();
            for group in &groups {
                for variant in group {
                    let stems: Vec<String> = words(variant)
                        .iter()
                        .map(|w| stemmers.stem(lang, w))
                        .collect();
                    if let Some(other) = owner.insert(stems.clone(), group[0].clone()) {
                        if other != group[0] {
                            clashes.push(format!(
                                "{lang}: \"{variant}\" {stems:?} is in groups {other} and {}",
                                group[0]
                            ));
                        }
                    }
                }
            }
        }
        assert!(clashes.is_empty(), "{clashes:#?}");
    }

    #[test]
    fn longest_variant_wins() {
        let stemmers = Stemmers::default();
        let lex = Lexicon::embedded(Language::En, &stemmers);
        let stems: Vec<String> = words("lost my job today")
            .iter()
            .map(|w| stemmers.stem(Language::En, w))
            .collect();
        assert_eq!(lex.longest_match(&stems), Some(("=unemployed", 3)));
        let stems: Vec<String> = words("lost it")
            .iter()
            .map(|w| stemmers.stem(Language::En, w))
            .collect();
        assert_eq!(lex.longest_match(&stems), Some(("=lost", 1)));
        assert!(lex.knows(&stemmers.stem(Language::En, "passport")));
    }
}
