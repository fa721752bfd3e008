//! From espeak's IPA to a Piper voice's input ids, the way piper-phonemize does it (the
//! voices were trained on exactly this): language-switch flags such as `(en)` dropped,
//! each Unicode code point after NFD one phoneme, `^` first, `$` last, `_` after each.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

const BOS: &str = "^";
const EOS: &str = "$";
const PAD: &str = "_";

/// Cuts a sentence where espeak ends a clause, keeping the punctuation: `"Hej, du."` →
/// `[("Hej", Some(',')), ("du", Some('.'))]`. A mark inside a token ("1,5") is no cut.
pub fn clauses(text: &str) -> Vec<(String, Option<char>)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let at_end = chars.peek().is_none_or(|n| n.is_whitespace());
        if matches!(c, ',' | '.' | '?' | '!' | ':' | ';') && at_end {
            let clause = current.trim();
            if !clause.is_empty() {
                out.push((clause.to_string(), Some(c)));
            }
            current.clear();
        } else {
            current.push(c);
        }
    }
    if !current.trim().is_empty() {
        out.push((current.trim().to_string(), None));
    }
    out
}

/// A voice's `phoneme_id_map` (`.onnx.json`).
pub struct PhonemeIds {
    map: HashMap<String, Vec<i64>>,
}

impl PhonemeIds {
    pub fn new(map: HashMap<String, Vec<i64>>) -> Result<PhonemeIds, String> {
        for needed in [BOS, EOS, PAD] {
            if !map.contains_key(needed) {
                return Err(format!("phoneme_id_map has no {needed:?}"));
            }
        }
        Ok(PhonemeIds { map })
    }

    /// Ids for one sentence's IPA; phonemes the voice does not know are left out.
    pub fn ids(&self, ipa: &str) -> Vec<i64> {
        let ipa = strip_language_flags(ipa);
        let mut ids = self.map[BOS].clone();
        ids.extend(&self.map[PAD]);
        for phoneme in ipa.nfd() {
            let mut buf = [0u8; 4];
            if let Some(id) = self.map.get(&*phoneme.encode_utf8(&mut buf)) {
                ids.extend(id);
                ids.extend(&self.map[PAD]);
            }
        }
        ids.extend(&self.map[EOS]);
        ids
    }
}

/// espeak marks words it reads in another language's rules as `(en)…(da)`.
fn strip_language_flags(ipa: &str) -> String {
    let mut out = String::with_capacity(ipa.len());
    let mut depth = 0;
    for c in ipa.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> PhonemeIds {
        let map = [
            ("_", 0),
            ("^", 1),
            ("$", 2),
            (" ", 3),
            (",", 8),
            ("h", 20),
            ("ə", 59),
            ("l", 24),
            ("ˈ", 120),
            ("o", 27),
            ("\u{303}", 141),
        ];
        PhonemeIds::new(map.iter().map(|(k, v)| (k.to_string(), vec![*v])).collect()).unwrap()
    }

    #[test]
    fn ids_are_framed_and_padded_like_piper_phonemize() {
        assert_eq!(
            ids().ids("həlˈo,"),
            [1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 8, 0, 2]
        );
    }

    #[test]
    fn decomposed_accents_are_phonemes_and_flags_and_unknowns_drop() {
        // õ → o + combining tilde; "(en)" is a language switch; "x" is not in the map.
        assert_eq!(ids().ids("(en)õx"), [1, 0, 27, 0, 141, 0, 2]);
    }

    #[test]
    fn clauses_keep_their_punctuation_but_not_inside_numbers() {
        assert_eq!(
            clauses("Hello, it costs 1,5 kroner. Yes"),
            vec![
                ("Hello".to_string(), Some(',')),
                ("it costs 1,5 kroner".to_string(), Some('.')),
                ("Yes".to_string(), None),
            ]
        );
    }

    #[test]
    fn a_map_without_the_frame_symbols_is_refused() {
        assert!(PhonemeIds::new(HashMap::new()).is_err());
    }
}
