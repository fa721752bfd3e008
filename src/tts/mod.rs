//! Talking back: text to 8 kHz speech, cached for everything the bot says often.
pub mod cache;
pub mod espeak;

use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("speech synthesis unavailable: {0}")]
    Init(String),
}

/// A voice: espeak-ng voice name, speed (words per minute) and pitch (0–99).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Voice {
    pub name: String,
    pub rate: u32,
    pub pitch: u32,
}

impl Default for Voice {
    fn default() -> Self {
        Voice { name: "da".into(), rate: 160, pitch: 50 }
    }
}

impl Voice {
    fn key(&self) -> String {
        format!("{}/{}/{}", self.name, self.rate, self.pitch)
    }
}

/// Anything that turns text into 8 kHz speech, sentence by sentence.
pub trait Synthesizer: Send + Sync {
    fn stream(&self, text: &str, voice: &Voice) -> Result<mpsc::UnboundedReceiver<Vec<i16>>, TtsError>;
}

/// Splits text after sentence punctuation so the first sentence can play while the rest
/// is synthesized.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if matches!(c, '.' | '?' | '!') {
            let s = current.trim();
            if !s.is_empty() {
                out.push(s.to_string());
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_into_sentences() {
        assert_eq!(sentences("Hej. Hvordan går det? Godt"), vec!["Hej.", "Hvordan går det?", "Godt"]);
        assert!(sentences("  ").is_empty());
    }

    #[tokio::test]
    async fn espeak_speaks_danish_at_8k() {
        let tts = espeak::Espeak::shared().unwrap();
        let mut rx = tts.stream("Goddag. Du har ringet til kommunen.", &Voice::default()).unwrap();
        let mut chunks = Vec::new();
        while let Some(c) = rx.recv().await {
            chunks.push(c);
        }
        assert_eq!(chunks.len(), 2, "one chunk per sentence");
        let all: Vec<i16> = chunks.concat();
        let secs = all.len() as f32 / 8000.0;
        assert!((1.5..6.0).contains(&secs), "{secs} s of speech");
        assert!(crate::audio::wav::level(&all) > 0.02, "audible");
    }

    #[tokio::test]
    async fn cache_returns_the_same_audio_without_synthesis() {
        let tts: std::sync::Arc<dyn Synthesizer> = espeak::Espeak::shared().unwrap();
        let cache = cache::PromptCache::new(tts);
        let v = Voice { name: "en".into(), ..Voice::default() };
        assert!(cache.get("Hello there.", &v).is_none());
        let first = cache.warm("Hello there.", &v).await.unwrap();
        let again = cache.get("Hello there.", &v).unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &again));
        assert_eq!(cache.size(), (1, first.len() * 2));
    }
}
