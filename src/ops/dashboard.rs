//! The staff dashboard: one static page (`dashboard.html`, plain JS, no build step)
//! fed by `/api/events`, a server-sent event stream of the calls in progress and just
//! finished (pushed whenever [`LiveCalls`](super::live::LiveCalls) changes), and
//! `/api/summary`, the last 24 hours' figures from the call records.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use futures::Stream;

use super::http::OpsState;
use super::records::Records;
use super::summary::summarise;

const PAGE: &str = include_str!("dashboard.html");

/// Calls sent per snapshot: those in progress come first in practice (newest first).
const SNAPSHOT: usize = 50;

const DAY_SECS: i64 = 86_400;

pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

pub async fn events(
    State(state): State<Arc<OpsState>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changed = state.live.subscribe();
    let stream = futures::stream::unfold((changed, true), move |(mut changed, first)| {
        let live = state.live.clone();
        async move {
            if first {
                changed.borrow_and_update();
            } else if changed.changed().await.is_err() {
                return None;
            }
            let mut calls = live.list();
            calls.truncate(SNAPSHOT);
            let json = serde_json::to_string(&calls).unwrap_or_else(|_| "[]".into());
            Some((
                Ok(Event::default().event("calls").data(json)),
                (changed, false),
            ))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

pub async fn summary(State(state): State<Arc<OpsState>>) -> Response {
    let store = state.records.clone();
    let since = chrono::Utc::now().timestamp() - DAY_SECS;
    let calls = tokio::task::spawn_blocking(move || Records::open(&store)?.since(since)).await;
    match calls {
        Ok(Ok(calls)) => Json(summarise(&calls)).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
