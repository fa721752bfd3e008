//! The engine behind each voice, chosen from `[tts]`: espeak-ng, or a Piper voice
//! loaded at start (a voice that fails to load is an error naming its file, or espeak
//! in its place when its `fallback` says so).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::espeak::Espeak;
use super::piper::PiperVoice;
use super::settings::{Engine, Fallback, TtsConfig};
use super::{Priority, Synthesizer, TtsError, Voice};

pub struct Engines {
    espeak: Arc<Espeak>,
    /// Loaded Piper voices by model path (two languages may share one).
    piper: HashMap<PathBuf, PiperVoice>,
}

impl Engines {
    pub fn from_config(config: &TtsConfig) -> Result<Engines, TtsError> {
        let espeak = Espeak::shared()?;
        let mut piper = HashMap::new();
        for (language, voice) in [("da", &config.da), ("en", &config.en)] {
            if voice.engine != Engine::Piper {
                continue;
            }
            let path = voice.model_path();
            if piper.contains_key(&path) {
                continue;
            }
            let started = std::time::Instant::now();
            match PiperVoice::load(&path, &config.onnxruntime_path(), espeak.clone()) {
                Ok(v) => {
                    tracing::info!(language, model = %path.display(),
                        secs = started.elapsed().as_secs_f32(), "piper voice loaded");
                    piper.insert(path, v);
                }
                // The embedded default: the shipped voice when fetched, else espeak.
                Err(e) if voice.model.is_none() && !path.exists() => {
                    tracing::info!(language, error = %e,
                        "shipped neural voice not fetched (models/fetch.sh voice): espeak-ng speaks");
                }
                Err(e) if voice.fallback == Fallback::Espeak => {
                    tracing::error!(language, error = %e,
                        "piper voice not loaded: espeak-ng speaks instead");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Engines { espeak, piper })
    }

    /// Espeak alone (tests and tools that need no neural voice).
    pub fn espeak_only() -> Result<Engines, TtsError> {
        Ok(Engines {
            espeak: Espeak::shared()?,
            piper: HashMap::new(),
        })
    }

    /// What actually speaks `voice`: "piper <model>" or "espeak <name>".
    pub fn describe(&self, voice: &Voice) -> String {
        match self.piper_for(voice) {
            Some(_) => format!("piper {}", voice.model_path().display()),
            None => format!("espeak {}", voice.name),
        }
    }

    fn piper_for(&self, voice: &Voice) -> Option<&PiperVoice> {
        match voice.engine {
            Engine::Piper => self.piper.get(&voice.model_path()),
            Engine::Espeak => None,
        }
    }
}

impl Synthesizer for Engines {
    fn stream(
        &self,
        text: &str,
        voice: &Voice,
        priority: Priority,
    ) -> Result<mpsc::UnboundedReceiver<Vec<i16>>, TtsError> {
        match self.piper_for(voice) {
            Some(piper) => piper.stream(text, priority),
            None => self.espeak.stream(text, &voice.as_espeak(), priority),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tts::settings::SHIPPED_VOICE;

    fn piper(model: &str, fallback: Fallback) -> TtsConfig {
        TtsConfig {
            en: Voice {
                engine: Engine::Piper,
                model: Some(model.into()),
                fallback,
                ..Voice::espeak("en-gb", 150)
            },
            ..TtsConfig::default()
        }
    }

    async fn collect(mut rx: mpsc::UnboundedReceiver<Vec<i16>>) -> Vec<Vec<i16>> {
        let mut chunks = Vec::new();
        while let Some(c) = rx.recv().await {
            chunks.push(c);
        }
        chunks
    }

    #[test]
    fn a_broken_voice_path_is_an_error_naming_the_file() {
        let e = Engines::from_config(&piper("/nowhere/da_DK-x.onnx", Fallback::None))
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("/nowhere/da_DK-x.onnx.json"), "{e}");
    }

    #[tokio::test]
    async fn a_broken_voice_falls_back_to_espeak_when_configured() {
        let c = piper("/nowhere/da_DK-x.onnx", Fallback::Espeak);
        let engines = Engines::from_config(&c).unwrap();
        assert_eq!(engines.describe(&c.en), "espeak en-gb");
        let chunks = collect(engines.stream("Hello.", &c.en, Priority::Live).unwrap()).await;
        assert!(
            crate::audio::wav::level(&chunks.concat()) > 0.02,
            "espeak spoke"
        );
    }

    /// Needs `models/fetch.sh voice onnxruntime` (run by scripts/setup.sh).
    #[tokio::test]
    async fn the_shipped_piper_voice_speaks_english_sentence_by_sentence() {
        let c = TtsConfig::default();
        let path = c.en.model_path();
        assert!(path.ends_with(SHIPPED_VOICE));
        let engines = Engines::from_config(&c).unwrap();
        assert_eq!(
            engines.describe(&c.en),
            format!("piper {}", path.display()),
            "fetch the voice: models/fetch.sh voice onnxruntime"
        );
        let chunks = collect(
            engines
                .stream(
                    "Hello. You have reached the citizen service.",
                    &c.en,
                    Priority::Live,
                )
                .unwrap(),
        )
        .await;
        assert_eq!(chunks.len(), 2, "one chunk per sentence");
        let secs = chunks.concat().len() as f32 / 8000.0;
        assert!((1.5..6.0).contains(&secs), "{secs} s of speech");
        assert!(crate::audio::wav::level(&chunks[1]) > 0.02, "audible");
    }
}
