//! How one caller turn becomes a request to the intent service: the recognizer
//! transcribes it, checks the caller's language on the first turn, and scores the
//! knowledge base's phrasings on the audio; the request carries the transcript and
//! those scores. Calls, `voicebot understand` and `voicebot bench understand` all go
//! through here, so what they report is what a caller gets.

use std::sync::Arc;

use crate::config::SttConfig;
use crate::intent::acoustic;
use crate::intent::reload::{self, SharedMatcher};
use crate::intent::resolution::{Language, Request};
use crate::stt::engine::{self, SpeechToText, Transcript, Turn};
use crate::stt::forced::CandidateSource;

#[derive(Clone)]
pub struct Understanding {
    pub config: SttConfig,
    /// The local knowledge base's matcher: where candidate phrasings come from.
    pub matcher: SharedMatcher,
}

impl Understanding {
    /// What the recognizer does with the caller's `turn`-th utterance (from 1) on a
    /// call in `language`.
    pub fn turn(&self, language: &str, turn: u32) -> Turn {
        let candidates = self.config.rescore.then(|| {
            let matcher = self.matcher.clone();
            let top = self.config.rescore_candidates;
            Arc::new(move |text: &str, lang: &str, confidence: f32| {
                let matcher = reload::current(&matcher);
                let lang = lang.parse().unwrap_or_default();
                if !acoustic::may_overrule(confidence, matcher.text_confidence(text, lang)) {
                    return Vec::new();
                }
                matcher.candidates(text, lang, top)
            }) as CandidateSource
        });
        let other = if language == "en" { "da" } else { "en" };
        Turn {
            language: language.to_string(),
            prompt: self.config.prompt_for(language).to_string(),
            candidates,
            // Hints are not weighed for a transcript whisper is sure of: don't make them.
            rescore_below: acoustic::SURE_TRANSCRIPT,
            detect: (turn == 1 && self.config.detect_language).then(|| other.to_string()),
            detect_prompt: self.config.prompt_for(other).to_string(),
        }
    }
}

/// The intent request for a transcript (the driver adds the call's own fields).
pub fn request(t: &Transcript, turn: u32) -> Request {
    Request {
        turn,
        text: t.text.clone(),
        asr_confidence: Some(t.confidence),
        language: t.language.parse().unwrap_or(Language::Da),
        hints: t.hints.clone(),
        ..Request::default()
    }
}

/// What the gateway makes of one utterance on a call's first turn
/// (`voicebot understand`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Understood {
    pub transcript: String,
    pub action: crate::intent::resolution::Action,
    pub intent_id: String,
    pub confidence: f32,
    pub language: String,
    pub hints: Vec<crate::intent::resolution::Hint>,
    pub recognition_secs: f32,
}

/// Runs `audio_16k` through exactly a call's first turn: recognition (with the
/// knowledge-base scoring unless the config turns it off), then the intent service.
pub async fn first_turn(
    understanding: &Understanding,
    stt: &dyn SpeechToText,
    resolver: &dyn crate::intent::client::IntentResolver,
    audio_16k: Vec<f32>,
    language: &str,
) -> anyhow::Result<Understood> {
    let t = engine::recognize(stt, audio_16k, understanding.turn(language, 1)).await?;
    let r = resolver.resolve(request(&t, 1)).await?;
    Ok(Understood {
        transcript: t.text,
        action: r.action,
        intent_id: r.intent_id,
        confidence: r.confidence,
        language: t.language,
        hints: t.hints,
        recognition_secs: t.decode_secs,
    })
}
