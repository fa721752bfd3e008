//! Turns a text into the terms the index compares, for one language: stems, synonym
//! group terms, and the parts of Danish compounds.
//!
//! Steps, the same for knowledge-base examples and callers' turns:
//! 1. canonical words (`normalize`), Snowball stems;
//! 2. the longest lexicon variant at each position becomes its group term ("kan ikke
//!    finde" → `=mistet`), so synonyms meet;
//! 3. function words are dropped: they say nothing about the topic, and in a short turn
//!    they would otherwise make unrelated examples look alike;
//! 4. Danish compounds are also split into parts the knowledge base or lexicon knows
//!    ("affaldsspandene" → affald + spand), because callers and speech recognition
//!    join and split compounds freely.

use std::collections::HashSet;

use super::lexicon::Lexicon;
use super::normalize::Stemmers;
use super::resolution::Language;
use super::spelling::Speller;

/// Danish function words, in canonical spelling (å = aa, ø = oe, æ = ae). Question words
/// and negations stay: "hvornår" and "ikke" change what a caller asks.
const STOP_DA: &[&str] = &[
    "og", "i", "jeg", "det", "at", "en", "den", "til", "er", "som", "paa", "de", "med", "han",
    "af", "for", "der", "var", "mig", "sig", "men", "et", "har", "om", "vi", "min", "havde", "ham",
    "hun", "nu", "over", "da", "fra", "du", "ud", "sin", "dem", "os", "op", "man", "hans", "eller",
    "skal", "selv", "her", "vil", "blev", "kunne", "ind", "vaere", "dog", "noget", "ville",
    "deres", "efter", "ned", "skulle", "denne", "end", "dette", "mit", "ogsaa", "under", "have",
    "dig", "hende", "mine", "alt", "meget", "sit", "sine", "vor", "mod", "disse", "din", "nogle",
    "jer", "saa", "lige", "bare", "altsaa", "lidt", "hej", "goddag", "jeres", "vores", "faa",
    "kan", "gerne", "mon", "nok", "vel", "hvis", "blive", "bliver", "blevet",
];

/// English function words, in canonical spelling (apostrophes removed).
const STOP_EN: &[&str] = &[
    "the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "for", "is", "are", "was", "were",
    "be", "been", "am", "i", "me", "my", "you", "your", "we", "our", "us", "it", "its", "this",
    "that", "do", "does", "did", "have", "has", "had", "can", "could", "would", "will", "should",
    "there", "their", "they", "them", "he", "she", "his", "her", "im", "ive", "id", "ill", "with",
    "from", "about", "just", "so", "some", "any", "get", "got", "hi", "hello", "well", "like",
    "really", "please", "youre", "theyre", "thats", "theres", "whats", "by", "as", "into", "up",
    "out", "if", "then", "want", "need", "now", "still", "also", "too", "very", "one", "these",
    "those", "what", "which", "who", "were",
];

/// Compound parts shorter than this are too likely to match by accident.
const MIN_PART: usize = 3;

pub struct Analyzer {
    lang: Language,
    stemmers: Stemmers,
    lexicon: Lexicon,
    /// Stems of every word in the knowledge base's texts of this language.
    known: HashSet<String>,
    speller: Speller,
}

impl Analyzer {
    /// An analyzer for `lang` that knows the words of `texts` (a knowledge base's
    /// examples and titles) for splitting compounds.
    pub fn new<'a>(lang: Language, texts: impl IntoIterator<Item = &'a str>) -> Analyzer {
        let stemmers = Stemmers::default();
        let lexicon = Lexicon::embedded(lang, &stemmers);
        let kb_words: Vec<String> = texts
            .into_iter()
            .flat_map(super::normalize::words)
            .collect();
        let known = kb_words
            .iter()
            .map(|w| stemmers.stem(lang, w))
            .filter(|s| s.chars().count() >= MIN_PART)
            .collect();
        let stop = match lang {
            Language::Da => STOP_DA,
            Language::En => STOP_EN,
        };
        let vocabulary = kb_words
            .into_iter()
            .chain(lexicon.words().iter().cloned())
            .chain(stop.iter().map(|w| w.to_string()));
        Analyzer {
            lang,
            stemmers,
            speller: Speller::new(vocabulary),
            lexicon,
            known,
        }
    }

    /// The knowledge base's spelling of a turn's canonical words (see `spelling`).
    pub fn correct(&self, words: &[String]) -> Vec<String> {
        self.speller.correct(words)
    }

    /// The terms of a text's canonical words.
    pub fn terms(&self, words: &[String]) -> Vec<String> {
        let stems: Vec<String> = words
            .iter()
            .map(|w| self.stemmers.stem(self.lang, w))
            .collect();
        let stop = match self.lang {
            Language::Da => STOP_DA,
            Language::En => STOP_EN,
        };
        let mut out = Vec::with_capacity(stems.len() + 4);
        let mut i = 0;
        while i < stems.len() {
            if let Some((term, n)) = self.lexicon.longest_match(&stems[i..]) {
                out.push(term.to_string());
                i += n;
                continue;
            }
            if !stop.contains(&words[i].as_str()) {
                out.push(stems[i].clone());
                if self.lang == Language::Da {
                    if let Some(parts) = self.split(&words[i]) {
                        out.extend(parts);
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// The term of one word: its group term if the lexicon has it, else its stem.
    fn term(&self, word: &str) -> String {
        let stem = self.stemmers.stem(self.lang, word);
        match self.lexicon.longest_match(std::slice::from_ref(&stem)) {
            Some((term, _)) => term.to_string(),
            None => stem,
        }
    }

    fn is_known(&self, word: &str) -> bool {
        let stem = self.stemmers.stem(self.lang, word);
        stem.chars().count() >= MIN_PART
            && (self.known.contains(&stem) || self.lexicon.knows(&stem))
    }

    /// Splits a Danish compound in two known parts, allowing the linking "s" or "e"
    /// ("affald-s-spand", "skrald-e-spand"); prefers the most balanced split.
    fn split(&self, word: &str) -> Option<[String; 2]> {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        if chars.len() < 2 * MIN_PART + 1 {
            return None;
        }
        let mut best: Option<(usize, &str, &str)> = None;
        for &(at, _) in &chars[MIN_PART..=chars.len() - MIN_PART] {
            let (head, rest) = word.split_at(at);
            let linked = rest
                .strip_prefix(['s', 'e'])
                .filter(|r| r.chars().count() >= MIN_PART);
            for tail in std::iter::once(rest).chain(linked) {
                let balance = head.chars().count().min(tail.chars().count());
                if best.is_none_or(|(b, _, _)| balance > b)
                    && self.is_known(head)
                    && self.is_known(tail)
                {
                    best = Some((balance, head, tail));
                }
            }
        }
        best.map(|(_, head, tail)| [self.term(head), self.term(tail)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::normalize::words;

    fn terms(a: &Analyzer, text: &str) -> Vec<String> {
        a.terms(&words(text))
    }

    #[test]
    fn synonyms_meet_and_function_words_go() {
        let a = Analyzer::new(Language::Da, ["mit sundhedskort er blevet væk"]);
        let mut said = terms(&a, "jeg kan ikke finde mit sygesikringskort");
        said.sort();
        assert_eq!(said, vec!["=mistet", "=sundhedskort"]);
        let a = Analyzer::new(Language::En, ["I lost my health card"]);
        assert_eq!(
            terms(&a, "I can't find my yellow card"),
            vec!["=lost", "=health_card"]
        );
    }

    #[test]
    fn danish_compounds_are_split_into_known_parts() {
        let a = Analyzer::new(
            Language::Da,
            ["hvornår bliver affaldet hentet", "min spand er væk"],
        );
        let t = terms(&a, "affaldsspandene");
        assert!(
            t.contains(&"=affald".to_string()) && t.contains(&"=spand".to_string()),
            "{t:?}"
        );
        assert_eq!(
            terms(&a, "hvornår"),
            vec!["hvornaar"],
            "short and unknown words stay whole"
        );
    }
}
