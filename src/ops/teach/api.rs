//! The teach API (JSON, behind the staff login like the other staff routes; described
//! by `openapi.json`, served at `/api/openapi.json`) and the teach page (`/teach`).
//! Input is checked here, at the edge: a clear 4xx naming the field, bounded sizes,
//! and caller-like text redacted before it is stored as an example.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{TeachError, Teacher};
use crate::intent::overlay::{AddedExample, BothLanguages, Examples, NewIntent};
use crate::ops::http::OpsState;
use crate::privacy;

const PAGE: &str = include_str!("teach.html");
const OPENAPI: &str = include_str!("openapi.json");

/// A request body larger than this gets 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_EXAMPLE_CHARS: usize = 200;
const MAX_EXAMPLES: usize = 30;
const MAX_NAME_CHARS: usize = 80;
const MAX_WHY_CHARS: usize = 500;
const MAX_TEXT_CHARS: usize = 400;

impl IntoResponse for TeachError {
    fn into_response(self) -> Response {
        let status = match &self {
            TeachError::UnknownIntent(_) | TeachError::UnknownVersion(_) => StatusCode::NOT_FOUND,
            TeachError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            TeachError::BadRequest(_) => StatusCode::BAD_REQUEST,
            TeachError::Conflict(_) => StatusCode::CONFLICT,
            TeachError::Kb(_) | TeachError::Records(_) | TeachError::Io(_) => {
                tracing::error!(error = %self, "teach request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

/// A JSON body: 400 when it is not JSON, 422 when it lacks a field or has a wrong one.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, TeachError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => TeachError::Invalid(e.to_string()),
        _ => TeachError::BadRequest(format!("the body is not JSON: {e}")),
    })
}

/// `value` trimmed: not empty, at most `max` characters, no control characters.
fn field(name: &str, value: &str, max: usize) -> Result<String, TeachError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(TeachError::Invalid(format!("{name} is empty")));
    }
    let n = v.chars().count();
    if n > max {
        return Err(TeachError::Invalid(format!(
            "{name} is too long: {n} characters, at most {max}"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(TeachError::Invalid(format!(
            "{name} contains control characters"
        )));
    }
    Ok(v.to_string())
}

fn lang(value: &str) -> Result<String, TeachError> {
    match value {
        "da" | "en" => Ok(value.to_string()),
        other => Err(TeachError::Invalid(format!(
            "lang must be \"da\" or \"en\", not {other:?}"
        ))),
    }
}

/// An example phrasing: what a caller might say, so redacted like a transcript.
fn example_text(name: &str, value: &str) -> Result<String, TeachError> {
    Ok(privacy::redact(&field(name, value, MAX_EXAMPLE_CHARS)?))
}

fn teacher(state: &OpsState) -> Result<Arc<Teacher>, TeachError> {
    state.teach.clone().ok_or_else(|| {
        TeachError::Conflict(
            "teaching needs a knowledge base file: set [intent] kb (the embedded one cannot be taught)"
                .into(),
        )
    })
}

/// Runs `f` on the blocking pool (files, SQLite, matcher builds) and answers with
/// its result as JSON with `ok` as the status.
async fn run<T: Serialize + Send + 'static>(
    state: &OpsState,
    ok: StatusCode,
    f: impl FnOnce(&Teacher) -> Result<T, TeachError> + Send + 'static,
) -> Response {
    let teacher = match teacher(state) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match tokio::task::spawn_blocking(move || f(&teacher)).await {
        Ok(Ok(v)) => (ok, Json(v)).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => TeachError::Io(std::io::Error::other(e.to_string())).into_response(),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub async fn unresolved(State(state): State<Arc<OpsState>>) -> Response {
    run(&state, StatusCode::OK, |t| t.unresolved(now())).await
}

pub async fn intents(State(state): State<Arc<OpsState>>) -> Response {
    run(&state, StatusCode::OK, |t| t.intents()).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExampleBody {
    lang: String,
    text: String,
}

/// `POST /api/kb/intents/{id}/examples`: drafts a phrasing for intent `id`.
pub async fn add_example(
    State(state): State<Arc<OpsState>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let example = body::<ExampleBody>(&bytes).and_then(|b| {
        Ok(AddedExample {
            intent: field("intent id", &id, MAX_NAME_CHARS)?,
            lang: lang(&b.lang)?,
            text: example_text("text", &b.text)?,
        })
    });
    match example {
        Ok(example) => run(&state, StatusCode::CREATED, move |t| t.add_example(example)).await,
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BothBody {
    da: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentBody {
    id: String,
    topic: String,
    link: String,
    title: BothBody,
    /// Spoken on the phone.
    answer: BothBody,
    sms_text: Option<BothBody>,
    #[serde(default)]
    needs_person: bool,
    examples: ExamplesBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExamplesBody {
    #[serde(default)]
    da: Vec<String>,
    #[serde(default)]
    en: Vec<String>,
}

fn both(name: &str, b: &BothBody) -> Result<BothLanguages, TeachError> {
    Ok(BothLanguages {
        da: field(&format!("{name}.da"), &b.da, MAX_TEXT_CHARS)?,
        en: field(&format!("{name}.en"), &b.en, MAX_TEXT_CHARS)?,
    })
}

fn examples(lang: &str, list: &[String]) -> Result<Vec<String>, TeachError> {
    if list.len() > MAX_EXAMPLES {
        return Err(TeachError::Invalid(format!(
            "examples.{lang} has {} phrasings, at most {MAX_EXAMPLES}",
            list.len()
        )));
    }
    list.iter()
        .map(|e| example_text(&format!("examples.{lang}"), e))
        .collect()
}

impl IntentBody {
    /// The checks of the edge; the knowledge base's own rules (topic, link, answer
    /// length, number of examples) are applied when the draft is merged.
    fn check(self) -> Result<NewIntent, TeachError> {
        let id = field("id", &self.id, MAX_NAME_CHARS)?;
        let well_formed = id.split_once('.').is_some_and(|(a, b)| {
            let part = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            };
            part(a) && part(b)
        });
        if !well_formed {
            return Err(TeachError::Invalid(format!(
                "id {id:?} must be \"<topic>.<name>\" in lowercase ascii letters, digits and _"
            )));
        }
        Ok(NewIntent {
            id,
            topic: field("topic", &self.topic, MAX_NAME_CHARS)?,
            kind: "answer".into(),
            needs_person: self.needs_person,
            link: field("link", &self.link, MAX_TEXT_CHARS)?,
            title: both("title", &self.title)?,
            answer: both("answer", &self.answer)?,
            sms_text: self
                .sms_text
                .as_ref()
                .map(|s| both("sms_text", s))
                .transpose()?,
            examples: Examples {
                da: examples("da", &self.examples.da)?,
                en: examples("en", &self.examples.en)?,
            },
        })
    }
}

/// `POST /api/kb/intents`: drafts a new answer intent.
pub async fn new_intent(State(state): State<Arc<OpsState>>, bytes: Bytes) -> Response {
    match body::<IntentBody>(&bytes).and_then(IntentBody::check) {
        Ok(intent) => run(&state, StatusCode::CREATED, move |t| t.add_intent(intent)).await,
        Err(e) => e.into_response(),
    }
}

pub async fn draft(State(state): State<Arc<OpsState>>) -> Response {
    run(&state, StatusCode::OK, |t| t.draft_view()).await
}

pub async fn discard(State(state): State<Arc<OpsState>>) -> Response {
    run(&state, StatusCode::OK, |t| t.discard()).await
}

pub async fn preview(State(state): State<Arc<OpsState>>) -> Response {
    run(&state, StatusCode::OK, |t| t.preview(now())).await
}

/// Who changes what is in service, and why: the history's record.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    author: String,
    why: String,
}

impl ChangeBody {
    fn check(bytes: &[u8]) -> Result<(String, String), TeachError> {
        let b: ChangeBody = body(bytes)?;
        Ok((
            field("author", &b.author, MAX_NAME_CHARS)?,
            field("why", &b.why, MAX_WHY_CHARS)?,
        ))
    }
}

pub async fn publish(State(state): State<Arc<OpsState>>, bytes: Bytes) -> Response {
    match ChangeBody::check(&bytes) {
        Ok((author, why)) => {
            run(&state, StatusCode::OK, move |t| {
                t.publish(author, why, now())
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

pub async fn history(State(state): State<Arc<OpsState>>) -> Response {
    run(&state, StatusCode::OK, |t| t.history()).await
}

pub async fn rollback(
    State(state): State<Arc<OpsState>>,
    Path(version): Path<String>,
    bytes: Bytes,
) -> Response {
    let checked = version
        .parse::<u32>()
        .map_err(|_| TeachError::BadRequest(format!("version {version:?} is not a number")))
        .and_then(|v| Ok((v, ChangeBody::check(&bytes)?)));
    match checked {
        Ok((v, (author, why))) => {
            run(&state, StatusCode::OK, move |t| {
                t.rollback(v, author, why, now())
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_bounded_and_examples_redacted() {
        assert!(field("text", "  ", 10)
            .unwrap_err()
            .to_string()
            .contains("text is empty"));
        let long = field("text", &"ø".repeat(11), 10).unwrap_err().to_string();
        assert!(long.contains("11 characters, at most 10"), "{long}");
        assert!(field("why", "a\u{7}b", 10).is_err());
        assert_eq!(field("why", " ok ", 10).unwrap(), "ok");
        assert!(lang("sv")
            .unwrap_err()
            .to_string()
            .contains("\"da\" or \"en\""));
        assert!(lang("en").is_ok());
        let e = example_text("text", "mit cpr er 010203-1234").unwrap();
        assert!(e.contains("[CPR]") && !e.contains("010203"), "{e}");
    }

    #[test]
    fn bodies_name_what_is_wrong() {
        let e = body::<ExampleBody>(b"{not json").unwrap_err();
        assert!(matches!(e, TeachError::BadRequest(_)), "{e}");
        let e = body::<ExampleBody>(br#"{"lang":"da"}"#).unwrap_err();
        assert!(
            matches!(e, TeachError::Invalid(_)) && e.to_string().contains("text"),
            "{e}"
        );
        let e = body::<ExampleBody>(br#"{"lang":"da","text":"x","extra":1}"#).unwrap_err();
        assert!(e.to_string().contains("extra"), "{e}");
    }

    #[test]
    fn a_new_intent_id_is_topic_dot_name() {
        let intent = |id: &str| IntentBody {
            id: id.into(),
            topic: "general".into(),
            link: "https://kommune.example.org/x".into(),
            title: BothBody {
                da: "T".into(),
                en: "T".into(),
            },
            answer: BothBody {
                da: "A".into(),
                en: "A".into(),
            },
            sms_text: None,
            needs_person: false,
            examples: ExamplesBody {
                da: vec![],
                en: vec![],
            },
        };
        assert!(intent("general.hund").check().is_ok());
        for bad in ["hund", "General.Hund", "general.", "general.hund kat"] {
            assert!(intent(bad).check().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_openapi_document_is_json_and_names_every_path() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        for path in [
            "/api/unresolved",
            "/api/kb/intents",
            "/api/kb/intents/{id}/examples",
            "/api/kb/draft",
            "/api/kb/preview",
            "/api/kb/publish",
            "/api/kb/history",
            "/api/kb/rollback/{version}",
            "/api/charts/{name}",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} not documented");
        }
    }
}
