//! The citizen-question fixtures (`audio-fixtures/manifest.toml`), shared by the
//! benchmarks and the tests.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Fixture {
    pub id: String,
    pub lang: String,
    pub text: String,
    pub intent: String,
    pub topic: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub source: String,
}

#[derive(Deserialize)]
struct Manifest {
    fixture: Vec<Fixture>,
}

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures")
}

pub fn load() -> Result<Vec<Fixture>, String> {
    let path = dir().join("manifest.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m: Manifest = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(m.fixture)
}

impl Fixture {
    /// The recording as made (16 kHz wideband, as a web caller's microphone hears it).
    pub fn wav(&self) -> PathBuf {
        dir().join("questions").join(format!("{}.wav", self.id))
    }

    /// The telephone version: 8 kHz, through G.711.
    pub fn telephone_wav(&self) -> PathBuf {
        dir().join("questions").join(format!("{}.tel.wav", self.id))
    }
}

/// Word error rate of `hypothesis` against `reference`, on lower-cased words without
/// punctuation (Levenshtein over words).
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f32 {
    let words = |s: &str| -> Vec<String> {
        s.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (r, h) = (words(reference), words(hypothesis));
    if r.is_empty() {
        return if h.is_empty() { 0.0 } else { 1.0 };
    }
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(rw != hw))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f32 / r.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wer_counts_substitutions_insertions_and_deletions() {
        assert_eq!(
            word_error_rate("the bin is emptied", "The bin is emptied!"),
            0.0
        );
        assert_eq!(
            word_error_rate("the bin is emptied", "the bin was emptied"),
            0.25
        );
        assert_eq!(word_error_rate("a b c d", "a c d"), 0.25);
        assert_eq!(word_error_rate("a b", "a b c d"), 1.0);
    }

    #[test]
    fn every_fixture_has_its_audio() {
        let all = load().unwrap();
        assert!(all.len() >= 30);
        for f in &all {
            assert!(f.telephone_wav().is_file(), "{} has no audio", f.id);
        }
    }
}
