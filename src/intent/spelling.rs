//! Corrects what speech recognition misspells, against the words the bot knows.
//!
//! A recognizer writes "hvilkæn" for "hvilken", "kørekot" for "kørekort", "sundheds
//! kort" for "sundhedskort". Such a word matches nothing, and the turn loses exactly the
//! word that said what it was about. So before stemming, a word the knowledge base and
//! lexicon do not know is replaced by the known word one edit away (two for long words;
//! the most frequent if several), and two words are joined when only together they make
//! a known word. Short words are left alone: one edit turns them into too many others.

use std::collections::HashMap;

/// Words shorter than this are never corrected.
const MIN_LEN: usize = 4;
/// Words this long may be two edits away.
const LONG: usize = 9;

pub struct Speller {
    /// Known word → how often the knowledge base uses it.
    known: HashMap<String, u32>,
    /// Known words by length in characters, for the edit-distance search.
    by_len: HashMap<usize, Vec<(String, Vec<char>)>>,
}

impl Speller {
    pub fn new(words: impl IntoIterator<Item = String>) -> Speller {
        let mut known: HashMap<String, u32> = HashMap::new();
        for w in words {
            *known.entry(w).or_default() += 1;
        }
        let mut by_len: HashMap<usize, Vec<(String, Vec<char>)>> = HashMap::new();
        for w in known.keys() {
            let chars: Vec<char> = w.chars().collect();
            by_len
                .entry(chars.len())
                .or_default()
                .push((w.clone(), chars));
        }
        for list in by_len.values_mut() {
            list.sort();
        }
        Speller { known, by_len }
    }

    pub fn knows(&self, word: &str) -> bool {
        self.known.contains_key(word)
    }

    /// `words` with unknown words corrected and split compounds joined.
    pub fn correct(&self, words: &[String]) -> Vec<String> {
        let mut out = Vec::with_capacity(words.len());
        let mut i = 0;
        while i < words.len() {
            if let Some(next) = words.get(i + 1) {
                let joined = format!("{}{}", words[i], next);
                if (!self.knows(&words[i]) || !self.knows(next)) && self.knows(&joined) {
                    out.push(joined);
                    i += 2;
                    continue;
                }
            }
            out.push(self.correct_word(&words[i]));
            i += 1;
        }
        out
    }

    fn correct_word(&self, word: &str) -> String {
        let chars: Vec<char> = word.chars().collect();
        if self.knows(word) || chars.len() < MIN_LEN || chars.iter().any(char::is_ascii_digit) {
            return word.to_string();
        }
        let max = if chars.len() >= LONG { 2 } else { 1 };
        let mut best: Option<(usize, u32, &str)> = None;
        for len in chars.len().saturating_sub(max).max(MIN_LEN)..=chars.len() + max {
            for (candidate, cand_chars) in self.by_len.get(&len).into_iter().flatten() {
                let Some(d) = distance(&chars, cand_chars, max) else {
                    continue;
                };
                let freq = self.known[candidate];
                let better = match best {
                    None => true,
                    Some((bd, bf, _)) => d < bd || (d == bd && freq > bf),
                };
                if better {
                    best = Some((d, freq, candidate));
                }
            }
        }
        best.map_or_else(|| word.to_string(), |(_, _, w)| w.to_string())
    }
}

/// Optimal-string-alignment distance (edits: insert, delete, substitute, swap two
/// neighbours), or `None` if it exceeds `max`.
fn distance(a: &[char], b: &[char], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
            row_min = row_min.min(cur[j]);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|&d| d <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speller() -> Speller {
        let words =
            "hvilken dag bliver affaldet hentet sundhedskort koerekort kort hvornaar kommer kommer";
        Speller::new(words.split(' ').map(String::from))
    }

    fn correct(s: &Speller, text: &str) -> String {
        s.correct(&text.split(' ').map(String::from).collect::<Vec<_>>())
            .join(" ")
    }

    #[test]
    fn misspellings_become_known_words() {
        let s = speller();
        assert_eq!(
            correct(&s, "hvilkaen dag bliver afaldet hentte"),
            "hvilken dag bliver affaldet hentet"
        );
        assert_eq!(correct(&s, "koerekot"), "koerekort");
        assert_eq!(
            correct(&s, "sundhedkosrt"),
            "sundhedskort",
            "two edits in a long word"
        );
    }

    #[test]
    fn split_compounds_are_joined_and_short_words_left_alone() {
        let s = speller();
        assert_eq!(correct(&s, "mit sundheds kort"), "mit sundhedskort");
        assert_eq!(
            correct(&s, "kort dag"),
            "kort dag",
            "two known words stay two"
        );
        assert_eq!(correct(&s, "dgo xyzzyq 12345"), "dgo xyzzyq 12345");
    }

    #[test]
    fn distance_counts_edits() {
        let d = |a: &str, b: &str| {
            distance(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
                2,
            )
        };
        assert_eq!(d("kort", "kort"), Some(0));
        assert_eq!(d("kort", "kot"), Some(1));
        assert_eq!(d("kort", "krot"), Some(1));
        assert_eq!(d("kort", "kasse"), None);
    }
}
