//! Speech-to-text as a call sees it: a decode of an utterance (or, at a pause, of the
//! speech so far) queued now and heard later. The call depends on this interface,
//! not on whisper, so another engine (a streaming one, a stronger model on another
//! machine) can be added without touching the call.
//!
//! A decode may be of speech the caller goes on with (a partial at a pause, or a turn
//! they add to before its transcript comes): the engine stops it when its `Abandon`
//! flag is set (or skips it, still queued), and the call decides whether its
//! transcript is the turn's (no speech since) or is thrown away. An engine that recognizes as the audio
//! comes could answer partials from what it already has; whisper decodes them anew.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::forced::{CandidateSource, Hint};

/// What a call needs from a recognizer.
pub trait SpeechToText: Send + Sync {
    /// Queues a decode; refused at once (`Overloaded`) rather than kept waiting
    /// when the engine is full. The transcript comes from the returned future.
    fn submit(&self, decode: Decode) -> Result<PendingTranscript, SttError>;

    /// A decode submitted now would start at once. Partials are asked for only then,
    /// so that they never delay another caller's final decode.
    fn has_idle_worker(&self) -> bool;

    /// About how long the last decode submitted will take to come back, given those
    /// ahead of it (zero before any decode has been timed).
    fn expected_wait(&self) -> Duration;
}

/// One decode: 16 kHz mono audio, what to do with it, and the flag that abandons it
/// when the caller may go on.
pub struct Decode {
    pub audio_16k: Vec<f32>,
    pub turn: Turn,
    pub abandon: Option<Abandon>,
}

pub type PendingTranscript = Pin<Box<dyn Future<Output = Result<Transcript, SttError>> + Send>>;

/// Recognizes a whole utterance (no partial): what a call's turn, `voicebot understand`
/// and the benchmarks ask of an engine.
pub async fn recognize(
    stt: &dyn SpeechToText,
    audio_16k: Vec<f32>,
    turn: Turn,
) -> Result<Transcript, SttError> {
    stt.submit(Decode {
        audio_16k,
        turn,
        abandon: None,
    })?
    .await
}

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("speech model {path} is missing: run `voicebot models fetch` (or models/fetch.sh)")]
    ModelMissing { path: PathBuf },
    #[error("speech model {path} cannot be loaded ({reason}): it may be corrupt; rerun `voicebot models fetch`")]
    ModelInvalid { path: PathBuf, reason: String },
    #[error("speech recognizer overloaded: {0} utterances already waiting")]
    Overloaded(usize),
    #[error("speech recognition failed: {0}")]
    Failed(String),
    #[error("speech recognizer stopped")]
    Stopped,
    #[error("decode abandoned: the caller went on speaking")]
    Abandoned,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    pub language: String,
    /// Mean token probability, 0..1.
    pub confidence: f32,
    pub audio_secs: f32,
    /// Time spent decoding (excludes time waiting in the queue).
    pub decode_secs: f32,
    pub queued_secs: f32,
    /// Knowledge-base candidates scored on the audio, best first; empty when not asked.
    pub hints: Vec<Hint>,
    /// Time the scoring took (part of `decode_secs`).
    pub rescore_secs: f32,
    /// ln(P(other language) / P(line's language)) when `Turn::detect` asked for it.
    pub other_language_log_odds: Option<f32>,
}

/// What to do with one utterance besides transcribing it.
#[derive(Clone, Default)]
pub struct Turn {
    pub language: String,
    pub prompt: String,
    /// Score these candidates' phrasings on the audio (knowledge-base-aware recognition)
    /// when the transcript's confidence is below `rescore_below`.
    pub candidates: Option<CandidateSource>,
    pub rescore_below: f32,
    /// Another language the caller may be speaking: if the engine hears it rather than
    /// `language`, the utterance is transcribed (with `detect_prompt`) and scored in it.
    pub detect: Option<String>,
    pub detect_prompt: String,
}

/// Set to stop a decode early (the engine checks it during computation).
pub type Abandon = Arc<AtomicBool>;
