//! Calls in progress and just finished, as staff see them: who said what (redacted),
//! what the bot understood and answered, and where the call was put through.
//!
//! The switchboard screen-pop (`/switchboard/calls/<id>`) reads it, so a transferred
//! caller is never asked to start over. It keeps the last `keep` calls in memory;
//! call records (SQLite) are the durable copy: the call as it stands is handed to the
//! [`RecordWriter`] given to [`LiveCalls::with_records`] when it starts, at each turn
//! understood and each bot line, at a transfer and at its end, so a crash of the
//! gateway loses at most the turn in progress. Every change bumps a
//! [`watch`] version, so the dashboard pushes a fresh snapshot only when there is one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::watch;

use super::records::{RecordWriter, Write};
use crate::intent::resolution::{Action, Kind, Resolution};
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
    /// For caller lines: the bot had an answer (not a clarifying question, not out of
    /// scope, not a failed resolution).
    pub answered: bool,
    /// For caller lines: end of speech to the bot's first reply audio.
    pub reply_secs: Option<f32>,
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
    /// "sip" (a phone call) or "webrtc" (the web page).
    pub channel: String,
    /// The municipality (`[[tenants]]` name) the call is for.
    pub tenant: String,
    pub topic: Option<String>,
    pub intent: Option<String>,
    pub lines: Vec<Line>,
    pub transfer: Option<TransferView>,
    /// How many lines there were when the call was first handed to a person.
    pub handed_over_at: Option<usize>,
    /// Set when the call is over.
    pub outcome: Option<String>,
    /// Unix seconds, set when the call is over.
    pub ended: Option<i64>,
    pub sms_sent: bool,
    /// A reply latency measured before the caller's words were transcribed (the bot
    /// said "one moment" first): it belongs to the next caller line.
    #[serde(skip)]
    reply_pending: Option<f32>,
}

#[derive(Clone)]
pub struct LiveCalls {
    inner: Arc<Mutex<VecDeque<CallView>>>,
    keep: usize,
    changed: Arc<watch::Sender<u64>>,
    records: Option<RecordWriter>,
}

impl LiveCalls {
    pub fn new(keep: usize) -> LiveCalls {
        LiveCalls {
            inner: Arc::new(Mutex::new(VecDeque::new())),
            keep: keep.max(1),
            changed: Arc::new(watch::channel(0).0),
            records: None,
        }
    }

    /// Finished calls (and later SMS) are also written to call records.
    pub fn with_records(keep: usize, records: RecordWriter) -> LiveCalls {
        LiveCalls {
            records: Some(records),
            ..LiveCalls::new(keep)
        }
    }

    /// A receiver that sees a new version after every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn with<R>(&self, call_id: &str, f: impl FnOnce(&mut CallView) -> R) -> Option<R> {
        let mut calls = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let r = calls.iter_mut().find(|c| c.call_id == call_id).map(f);
        self.changed.send_modify(|v| *v += 1);
        r
    }

    /// Adds a call and returns its key, the name it goes by here, in call records and
    /// on the switchboard: its Call-ID, or if a call kept here already has that
    /// Call-ID (a peer that repeats them, or a crafted one), the Call-ID with `#2`,
    /// `#3`, … so neither call's view or record overwrites the other's.
    pub fn start(
        &self,
        call_id: &str,
        started: i64,
        called: &str,
        caller: &str,
        language: &str,
    ) -> String {
        let mut calls = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let taken = |key: &str| calls.iter().any(|c| c.call_id == key);
        let key = (1..)
            .map(|n| match n {
                1 => call_id.to_string(),
                n => format!("{call_id}#{n}"),
            })
            .find(|k| !taken(k))
            .unwrap_or_default();
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
            call_id: key.clone(),
            started,
            called: called.into(),
            caller: caller.into(),
            language: language.into(),
            channel: "sip".into(),
            tenant: crate::tenant::DEFAULT_TENANT.into(),
            topic: None,
            intent: None,
            lines: Vec::new(),
            transfer: None,
            handed_over_at: None,
            outcome: None,
            ended: None,
            sms_sent: false,
            reply_pending: None,
        });
        drop(calls);
        self.changed.send_modify(|v| *v += 1);
        self.checkpoint(&key);
        key
    }

    /// Hands the call as it stands to the call records, unless it is over (its end
    /// wrote it) or there are none.
    fn checkpoint(&self, call_id: &str) {
        let Some(records) = &self.records else {
            return;
        };
        let calls = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let view = calls
            .iter()
            .find(|c| c.call_id == call_id && c.ended.is_none())
            .cloned();
        drop(calls);
        if let Some(view) = view {
            records.send(Write::Call(Box::new(view)));
        }
    }

    pub fn said(&self, call_id: &str, at_secs: f32, who: &'static str, text: &str) {
        let answering = self.with(call_id, |c| {
            let reply_secs = if who == "caller" {
                c.reply_pending.take()
            } else {
                None
            };
            c.lines.push(Line {
                at_secs,
                who,
                text: redact(text),
                intent: None,
                confidence: None,
                answered: false,
                reply_secs,
            });
            // A bot line after the caller's first is part of a turn's answer.
            who == "bot" && c.lines.iter().any(|l| l.who == "caller")
        });
        if answering == Some(true) {
            self.checkpoint(call_id);
        }
    }

    /// The call switched language (the caller spoke English, or pressed 9).
    pub fn language(&self, call_id: &str, language: &str) {
        self.with(call_id, |c| c.language = language.into());
    }

    /// The line the call came on (see `CallView::channel`).
    pub fn channel(&self, call_id: &str, channel: &str) {
        self.with(call_id, |c| c.channel = channel.into());
    }

    /// The tenant the call is for (see `CallView::tenant`).
    pub fn tenant(&self, call_id: &str, tenant: &str) {
        self.with(call_id, |c| c.tenant = tenant.into());
    }

    fn last_caller_line(c: &mut CallView) -> Option<&mut Line> {
        c.lines.iter_mut().rev().find(|l| l.who == "caller")
    }

    /// What the last thing the caller said was understood as.
    pub fn understood(&self, call_id: &str, r: &Resolution) {
        self.with(call_id, |c| {
            if let Some(line) = Self::last_caller_line(c) {
                line.intent = Some(r.intent_id.clone());
                line.confidence = Some(r.confidence);
                line.answered = !matches!(r.action, Action::Clarify | Action::Confirm)
                    && r.kind != Kind::OutOfScope;
            }
            if !r.topic.is_empty() {
                c.topic = Some(r.topic.clone());
                c.intent = Some(r.intent_id.clone());
            }
        });
        self.checkpoint(call_id);
    }

    /// The bot's first reply to what the caller just said took `secs`; the caller's
    /// line may not be transcribed yet.
    pub fn replied(&self, call_id: &str, secs: f32) {
        self.with(call_id, |c| match Self::last_caller_line(c) {
            Some(line) if line.reply_secs.is_none() => line.reply_secs = Some(secs),
            _ => c.reply_pending = Some(secs),
        });
    }

    pub fn transfer(&self, call_id: &str, t: TransferView) {
        self.with(call_id, |c| {
            c.handed_over_at.get_or_insert(c.lines.len());
            c.transfer = Some(t);
        });
        self.checkpoint(call_id);
    }

    /// The caller was sent an SMS (during or after the call). A call in progress
    /// carries the flag into its record; a finished one (even one no longer kept here)
    /// has its record updated.
    pub fn sms_sent(&self, call_id: &str) {
        let in_progress = self.with(call_id, |c| {
            c.sms_sent = true;
            c.ended.is_none()
        });
        if let (None | Some(false), Some(records)) = (in_progress, &self.records) {
            records.send(Write::SmsSent(call_id.into()));
        }
    }

    pub fn end(&self, call_id: &str, outcome: &str) {
        let ended = chrono::Utc::now().timestamp();
        let view = self.with(call_id, |c| {
            c.outcome = Some(outcome.into());
            c.ended = Some(ended);
            c.clone()
        });
        if let (Some(view), Some(records)) = (view, &self.records) {
            records.send(Write::Call(Box::new(view)));
        }
    }

    /// Waits until the call records have everything handed to them so far.
    pub async fn flush_records(&self) {
        if let Some(records) = &self.records {
            records.flush().await;
        }
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

/// A resolution as the matcher would give it, for tests of what staff see.
#[cfg(test)]
pub fn answer(intent: &str, topic: &str, confidence: f32) -> Resolution {
    Resolution {
        action: Action::Answer,
        intent_id: intent.into(),
        kind: Kind::Answer,
        topic: topic.into(),
        answer_text: String::new(),
        link_url: None,
        sms_text: None,
        confidence,
        candidates: Vec::new(),
        reason: String::new(),
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
        live.understood("c1", &answer("pas.nyt", "pas_koerekort", 0.8));
        let c = live.get("c1").unwrap();
        assert_eq!(c.lines.len(), 2);
        assert!(!c.lines[1].text.contains("010203"), "{}", c.lines[1].text);
        assert!(c.lines[1].text.contains("[CPR]"));
        assert_eq!(c.lines[1].intent.as_deref(), Some("pas.nyt"));
        assert_eq!(c.lines[0].intent, None);
        assert_eq!(c.topic.as_deref(), Some("pas_koerekort"));
    }

    #[test]
    fn a_reply_before_the_transcript_is_the_next_caller_lines_latency() {
        let live = LiveCalls::new(10);
        live.start("c1", 0, "70101010", "", "da");
        live.replied("c1", 1.5); // "Et øjeblik" before the words are known
        live.said("c1", 4.0, "caller", "nyt pas");
        live.said("c1", 6.0, "caller", "og kørekort");
        live.replied("c1", 0.8);
        let lines = live.get("c1").unwrap().lines;
        let secs: Vec<_> = lines.iter().map(|l| l.reply_secs).collect();
        assert_eq!(secs, [Some(1.5), Some(0.8)]);
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
