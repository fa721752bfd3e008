//! Text normalisation shared by the knowledge base's examples and callers' turns, so
//! that both land in the same canonical form before they are compared.
//!
//! Speech recognition on phone audio writes the same Danish word in several ways: "ø"
//! or "oe", "å" or "aa", "æ" or "ae", a compound joined or split, punctuation anywhere,
//! hesitations ("øh"). The canonical form is lowercase ASCII-ish words where æ/ø/å are
//! spelled ae/oe/aa (the direction ASR errs in), accents are dropped, apostrophes
//! vanish ("don't" = "dont"), everything else that is not a letter or digit separates
//! words, and digits are split from letters ("3dage" = "3 dage"). Stems come from the
//! Snowball stemmer of the turn's language, applied to the canonical form.

use rust_stemmers::{Algorithm, Stemmer};

use super::resolution::Language;

/// Hesitations and fillers that carry no meaning in either language.
const FILLERS: [&str; 11] = [
    "oeh", "oehm", "aeh", "aehm", "uh", "um", "uhm", "eh", "ehm", "hmm", "mm",
];

/// Lowercase canonical words of `text`, without fillers.
pub fn words(text: &str) -> Vec<String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut prev: Option<char> = None;
    for c in text.chars().flat_map(char::to_lowercase) {
        let mapped: &str = match c {
            'æ' | 'ä' => "ae",
            'ø' | 'ö' => "oe",
            'å' => "aa",
            'é' | 'è' | 'ê' | 'ë' => "e",
            'á' | 'à' | 'â' => "a",
            'ü' | 'ú' | 'ù' | 'û' => "u",
            'í' | 'ì' | 'î' | 'ï' => "i",
            'ó' | 'ò' | 'ô' => "o",
            'ç' => "c",
            'ñ' => "n",
            'ß' => "ss",
            '\'' | '’' | '´' | '`' => "",
            c if c.is_ascii_alphanumeric() => {
                // Split digits from letters, e.g. "3dage", "b12".
                if prev.is_some_and(|p| p.is_ascii_digit() != c.is_ascii_digit()) {
                    out.push(' ');
                }
                out.push(c);
                prev = Some(c);
                continue;
            }
            c if c.is_alphabetic() => {
                out.push(c);
                prev = Some(c);
                continue;
            }
            _ => " ",
        };
        if prev.is_some_and(|p| p.is_ascii_digit()) && !mapped.is_empty() && mapped != " " {
            out.push(' ');
        }
        out.push_str(mapped);
        prev = mapped.chars().last().or(prev);
    }
    out.split_whitespace()
        .filter(|w| !FILLERS.contains(w))
        .map(str::to_string)
        .collect()
}

/// Danish words that Snowball over-stems into another common word of the domain
/// ("farligt" → "far", the father; "lejlighed" → "lej", as in "leje"; "passer" → "pas",
/// the passport), in canonical spelling, with the stem they get instead.
const DANISH_EXCEPTIONS: &[(&str, &str)] = &[
    ("farlig", "farlig"),
    ("farligt", "farlig"),
    ("farlige", "farlig"),
    ("lejlighed", "lejlighed"),
    ("lejligheden", "lejlighed"),
    ("lejligheder", "lejlighed"),
    ("passer", "passe"),
];

/// Snowball stemmers for the supported languages.
pub struct Stemmers {
    da: Stemmer,
    en: Stemmer,
}

impl Default for Stemmers {
    fn default() -> Self {
        Stemmers {
            da: Stemmer::create(Algorithm::Danish),
            en: Stemmer::create(Algorithm::English),
        }
    }
}

impl Stemmers {
    pub fn stem(&self, lang: Language, word: &str) -> String {
        let stemmer = match lang {
            Language::Da => {
                if let Some(&(_, stem)) = DANISH_EXCEPTIONS.iter().find(|(w, _)| *w == word) {
                    return stem.to_string();
                }
                &self.da
            }
            Language::En => &self.en,
        };
        stemmer.stem(word).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn danish_letters_and_their_asr_spellings_meet() {
        assert_eq!(
            words("Hvornår bliver mit affald tømt?"),
            words("hvornaar bliver mit affald toemt")
        );
        assert_eq!(
            words("Kørekort, fornyelse!"),
            vec!["koerekort", "fornyelse"]
        );
        assert_eq!(words("Æbler Ä Ö"), vec!["aebler", "ae", "oe"]);
    }

    #[test]
    fn punctuation_fillers_digits_and_apostrophes() {
        assert_eq!(
            words("øh, jeg... vil gerne-have"),
            vec!["jeg", "vil", "gerne", "have"]
        );
        assert_eq!(
            words("I don't know, uh, it's 3pm"),
            vec!["i", "dont", "know", "its", "3", "pm"]
        );
        assert_eq!(words("B12 og 3dage"), vec!["b", "12", "og", "3", "dage"]);
        assert_eq!(words("café [CPR]"), vec!["cafe", "cpr"]);
    }

    #[test]
    fn stems_follow_the_language() {
        let s = Stemmers::default();
        assert_eq!(
            s.stem(Language::Da, "boligerne"),
            s.stem(Language::Da, "bolig")
        );
        assert_eq!(
            s.stem(Language::En, "collections"),
            s.stem(Language::En, "collection")
        );
        assert_ne!(s.stem(Language::Da, "farligt"), s.stem(Language::Da, "far"));
        assert_ne!(s.stem(Language::Da, "passer"), s.stem(Language::Da, "pas"));
    }
}
