//! `/api/prompts`: which fixed prompts callers hear as a person's recording and which
//! are synthesized, and by what voice (for staff checking a new recording took).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::http::OpsState;

#[derive(Debug, Clone, Serialize)]
pub struct PromptSource {
    pub language: String,
    pub prompt: String,
    pub text: String,
    /// The WAV file when recorded; none when synthesized.
    pub recording: Option<String>,
    /// "piper <model>", "espeak <voice>", or "recording".
    pub voice: String,
}

pub async fn list(State(state): State<Arc<OpsState>>) -> Json<Vec<PromptSource>> {
    Json(state.prompts.clone())
}
