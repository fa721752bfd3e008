//! Calls in progress and just finished, as staff see them: who said what (redacted),
//! what the bot understood and answered, and where the call was put through.
//!
//! The switchboard screen-pop (`/switchboard/calls/<id>`) reads it, so a transferred
//! caller is never asked to start over. It keeps the last `keep` calls in memory;
//! call records (SQLite) are the durable copy.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::privacy::redact;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    /// Seconds since the call was answered.
    pub at_secs: f32,
    /// "caller" or "bot".
    pub who: &'static str,
    /// Redacted.
    pub text: String,
    /// For caller lines: what the intent service made of it.
    pub intent: Option<String>,
    pub confidence: Option<f32>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TransferView {
    pub queue: String,
    pub reason: String,
    /// "refer", "bridge", or empty while it is being tried.
    pub method: String,
    pub result: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallView {
    pub call_id: String,
    /// Unix seconds.
    pub started: i64,
    pub called: String,
    /// Redacted caller number.
    pub caller: String,
    pub language: String,
    pub topic: Option<String>,
    pub intent: Option<String>,
    pub lines: Vec<Line>,
    pub transfer: Option<TransferView>,
    /// Set when the call is over.
    pub outcome: Option<String>,
}

#[derive(Clone)]
pub struct LiveCalls {
    inner: Arc<Mutex<VecDeque<CallView>>>,
    keep: usize,
}

impl LiveCalls {
    pub fn new(keep: usize) -> LiveCalls {
        LiveCalls {
            inner: Arc::new(Mutex::new(VecDeque::new())),
            keep: keep.max(1),
        }
    }

    fn with<R>(&self, call_id: &str, f: impl FnOnce(&mut CallView) -> R) -> Option<R> {
        let mut calls = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        calls.iter_mut().find(|c| c.call_id == call_id).map(f)
    }

    pub fn start(&self, call_id: &str, started: i64, called: &str, caller: &str, language: &str) {
        let mut calls = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // Finished calls make room first; live ones are never dropped.
        while calls.len() >= self.keep {
            match calls.iter().position(|c| c.outcome.is_some()) {
                Some(i) => {
                    calls.remove(i);
                }
                None => break,
            }
        }
        calls.push_back(CallView {
            call_id: call_id.into(),
            started,
            called: called.into(),
            caller: caller.into(),
            language: language.into(),
            topic: None,
            intent: None,
            lines: Vec::new(),
            transfer: None,
            outcome: None,
        });
    }

    pub fn said(&self, call_id: &str, at_secs: f32, who: &'static str, text: &str) {
        self.with(call_id, |c| {
            c.lines.push(Line {
                at_secs,
                who,
                text: redact(text),
                intent: None,
                confidence: None,
            })
        });
    }

    /// What the last thing the caller said was understood as.
    pub fn understood(&self, call_id: &str, intent: &str, topic: &str, confidence: f32) {
        self.with(call_id, |c| {
            if let Some(line) = c.lines.iter_mut().rev().find(|l| l.who == "caller") {
                line.intent = Some(intent.into());
                line.confidence = Some(confidence);
            }
            if !topic.is_empty() {
                c.topic = Some(topic.into());
                c.intent = Some(intent.into());
            }
        });
    }

    pub fn transfer(&self, call_id: &str, t: TransferView) {
        self.with(call_id, |c| c.transfer = Some(t));
    }

    pub fn end(&self, call_id: &str, outcome: &str) {
        self.with(call_id, |c| c.outcome = Some(outcome.into()));
    }

    pub fn get(&self, call_id: &str) -> Option<CallView> {
        self.with(call_id, |c| c.clone())
    }

    /// Newest first.
    pub fn list(&self) -> Vec<CallView> {
        let calls = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        calls.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_are_redacted_and_intents_attached_to_the_callers_line() {
        let live = LiveCalls::new(10);
        live.start("c1", 0, "70101010", "+45 20 ** ** 56", "da");
        live.said("c1", 1.0, "bot", "Goddag");
        live.said(
            "c1",
            4.0,
            "caller",
            "mit cpr nummer er 010203-1234 og jeg vil have nyt pas",
        );
        live.understood("c1", "pas.nyt", "pas_koerekort", 0.8);
        let c = live.get("c1").unwrap();
        assert_eq!(c.lines.len(), 2);
        assert!(!c.lines[1].text.contains("010203"), "{}", c.lines[1].text);
        assert!(c.lines[1].text.contains("[CPR]"));
        assert_eq!(c.lines[1].intent.as_deref(), Some("pas.nyt"));
        assert_eq!(c.lines[0].intent, None);
        assert_eq!(c.topic.as_deref(), Some("pas_koerekort"));
    }

    #[test]
    fn finished_calls_make_room_and_live_ones_stay() {
        let live = LiveCalls::new(2);
        live.start("a", 0, "", "", "da");
        live.start("b", 0, "", "", "da");
        live.start("c", 0, "", "", "da");
        assert_eq!(live.list().len(), 3, "no finished call to drop");
        live.end("a", "resolved");
        live.start("d", 0, "", "", "da");
        let ids: Vec<_> = live.list().into_iter().map(|c| c.call_id).collect();
        assert_eq!(ids, ["d", "c", "b"]);
    }
}
