//! Hearing callers: voice activity, endpointing, and whisper speech-to-text.
pub mod endpoint;
pub mod engine;
pub mod forced;
pub mod language;
pub mod listener;
mod priors_warmup;
pub mod recognizer;
pub mod rescore;
pub mod silero;
pub mod trie;
pub mod turn_end;
pub mod vad;
pub mod vocab;
pub mod voices;
pub mod worker;

use std::path::PathBuf;

/// Where `models/fetch.sh` caches the models (`VOICEBOT_MODEL_DIR` overrides).
pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VOICEBOT_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/voicebot/models")
}

/// The model file for a name fetched by `models/fetch.sh`, or a path as given.
/// `base-q8_0` is whisper base with 8-bit (q8_0) weights: ~15-20% faster decodes, but
/// its Danish transcripts differ from f16's on half the turns and the understanding
/// benchmark did not show it as good (models/README.md), so `base` (f16) is the default.
pub fn model_path(name_or_path: &str) -> PathBuf {
    match name_or_path {
        "base" | "base-q8_0" | "tiny.en" => model_dir().join(format!("ggml-{name_or_path}.bin")),
        path => PathBuf::from(path),
    }
}

/// `voicebot transcribe`: one file, any WAV, with a single worker.
pub async fn transcribe_file(
    path: &std::path::Path,
    model: &str,
    language: &str,
    prompt: Option<&str>,
    adaptive_audio_ctx: bool,
) -> Result<engine::Transcript, TranscribeError> {
    let (pcm, rate) = crate::audio::wav::read_mono(path)?;
    let audio = crate::audio::resample::resample(&pcm, rate, 16000);
    let opts = recognizer::SttOptions {
        workers: 1,
        queue: 1,
        adaptive_audio_ctx,
        ..Default::default()
    };
    let stt = recognizer::Recognizer::load(&model_path(model), opts)?;
    let defaults = crate::config::SttConfig::default();
    let prompt = prompt.unwrap_or(defaults.prompt_for(language)).to_string();
    Ok(stt.transcribe_16k(audio, language, &prompt).await?)
}

#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error(transparent)]
    Audio(#[from] crate::audio::wav::WavError),
    #[error(transparent)]
    Stt(#[from] engine::SttError),
}
