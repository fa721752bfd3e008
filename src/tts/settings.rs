//! `[tts]`: which engine speaks each language, and with what voice. The shape belongs to
//! speech synthesis (config only embeds it), so a new engine is a change here alone.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// espeak-ng formant speech: any language, robotic, ~500× real time.
    Espeak,
    /// A Piper (VITS, ONNX) neural voice: `model` is its `.onnx`, the `.onnx.json` beside it.
    Piper,
}

/// What a Piper voice that fails to load turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Log an error naming the file and speak with espeak-ng (`name`, `rate`, `pitch`).
    Espeak,
    /// Refuse to start: a line that must sound like the configured voice.
    None,
}

/// One language's voice. The espeak fields are also the fallback of a Piper voice.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Voice {
    #[serde(default = "espeak")]
    pub engine: Engine,
    /// espeak-ng voice: a language code ("da", "en-gb") or a voice name.
    pub name: String,
    /// espeak-ng words per minute.
    pub rate: u32,
    #[serde(default = "pitch")]
    pub pitch: u32,
    /// Piper: the voice's `.onnx`; none means the shipped English voice
    /// (`en_US-joe-medium.onnx` in the model cache, see `models/fetch.sh`).
    #[serde(default)]
    pub model: Option<PathBuf>,
    #[serde(default = "fallback")]
    pub fallback: Fallback,
}

fn espeak() -> Engine {
    Engine::Espeak
}
fn pitch() -> u32 {
    50
}
fn fallback() -> Fallback {
    Fallback::Espeak
}

impl Voice {
    pub fn espeak(name: &str, rate: u32) -> Voice {
        Voice {
            engine: Engine::Espeak,
            name: name.into(),
            rate,
            pitch: 50,
            model: None,
            fallback: Fallback::Espeak,
        }
    }

    /// The same voice as spoken by espeak-ng (a Piper voice's fallback).
    pub fn as_espeak(&self) -> Voice {
        Voice {
            engine: Engine::Espeak,
            model: None,
            ..self.clone()
        }
    }

    /// Distinguishes voices in the prompt cache.
    pub fn key(&self) -> String {
        match self.engine {
            Engine::Espeak => format!("espeak/{}/{}/{}", self.name, self.rate, self.pitch),
            Engine::Piper => format!("piper/{}", self.model_path().display()),
        }
    }

    /// The `.onnx` a Piper voice loads.
    pub fn model_path(&self) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(|| crate::stt::model_dir().join(SHIPPED_VOICE))
    }
}

/// The English neural voice `models/fetch.sh` puts in the model cache.
pub const SHIPPED_VOICE: &str = "en_US-joe-medium.onnx";

impl Default for Voice {
    fn default() -> Self {
        Voice::espeak("da", 165)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsConfig {
    #[serde(deserialize_with = "danish")]
    pub da: Voice,
    #[serde(deserialize_with = "english")]
    pub en: Voice,
    /// ONNX Runtime for Piper voices; default: `libonnxruntime.so` in the model cache.
    pub onnxruntime: Option<PathBuf>,
}

/// A table that leaves out `name` or `rate` keeps its language's espeak voice.
fn with_name<'de, D: serde::Deserializer<'de>>(
    d: D,
    name: &str,
    rate: i64,
) -> Result<Voice, D::Error> {
    use serde::de::Error;
    let mut table = toml::Table::deserialize(d)?;
    table
        .entry("name")
        .or_insert_with(|| toml::Value::String(name.into()));
    table
        .entry("rate")
        .or_insert_with(|| toml::Value::Integer(rate));
    Voice::deserialize(table).map_err(D::Error::custom)
}
fn danish<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Voice, D::Error> {
    with_name(d, "da", 165)
}
fn english<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Voice, D::Error> {
    with_name(d, "en-gb", 150)
}

impl Default for TtsConfig {
    fn default() -> Self {
        TtsConfig {
            da: Voice::default(),
            // The shipped neural voice when it has been fetched (else espeak, logged).
            en: Voice {
                engine: Engine::Piper,
                ..Voice::espeak("en-gb", 150)
            },
            onnxruntime: None,
        }
    }
}

impl TtsConfig {
    pub fn voice(&self, language: &str) -> &Voice {
        if language == "en" {
            &self.en
        } else {
            &self.da
        }
    }

    pub fn onnxruntime_path(&self) -> PathBuf {
        self.onnxruntime
            .clone()
            .unwrap_or_else(|| crate::stt::model_dir().join("libonnxruntime.so"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piper_table_keeps_its_languages_espeak_voice_as_fallback() {
        let c: TtsConfig =
            toml::from_str("[en]\nengine = \"piper\"\nmodel = \"/v/x.onnx\"\n").unwrap();
        assert_eq!(c.en.engine, Engine::Piper);
        assert_eq!(c.en.name, "en-gb");
        assert_eq!(c.en.fallback, Fallback::Espeak);
        assert_eq!(c.da, Voice::default());
        assert_eq!(c.en.key(), "piper//v/x.onnx");
    }

    #[test]
    fn the_old_espeak_shape_still_reads() {
        let c: TtsConfig =
            toml::from_str("da = { name = \"da\", rate = 140, pitch = 40 }\n").unwrap();
        assert_eq!(c.da.engine, Engine::Espeak);
        assert_eq!((c.da.rate, c.da.pitch), (140, 40));
        assert!(toml::from_str::<TtsConfig>("[da]\nengine = \"festival\"\n").is_err());
        assert!(toml::from_str::<TtsConfig>("[da]\nmodle = \"x\"\n").is_err());
    }
}
