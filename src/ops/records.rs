//! Call records: one SQLite row per finished call and one per caller turn, so staff
//! can see afterwards what callers asked, what the bot made of it, and whether a bot
//! or a person answered. Only redacted text is stored, and no audio at all.
//!
//! Writes happen on one dedicated thread fed by a channel ([`RecordWriter`]), so a
//! slow disk never stalls the async runtime. Retention blanks the transcripts of calls
//! older than `[privacy] retention_days`; the call's facts (times, outcome, topic) stay
//! for statistics.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::live::CallView;

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("call records {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("call records: {0}")]
    Sql(#[from] rusqlite::Error),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY,
    started INTEGER NOT NULL,
    ended INTEGER NOT NULL,
    called TEXT NOT NULL,
    caller TEXT NOT NULL,
    language TEXT NOT NULL,
    topic TEXT,
    outcome TEXT NOT NULL,
    queue TEXT,
    sms_sent INTEGER NOT NULL,
    turns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_ended ON calls(ended);
CREATE TABLE IF NOT EXISTS turns (
    call_id TEXT NOT NULL REFERENCES calls(call_id),
    seq INTEGER NOT NULL,
    at_secs REAL NOT NULL,
    text TEXT,
    answer TEXT,
    intent TEXT,
    confidence REAL,
    answered INTEGER NOT NULL,
    reply_secs REAL,
    answered_by TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
";

/// `call_id`, unless a different call (another start time) is stored under it: then
/// the first free `call_id#n`.
fn free_key(db: &Connection, call_id: &str, started: i64) -> rusqlite::Result<String> {
    for n in 1u32.. {
        let key = match n {
            1 => call_id.to_string(),
            n => format!("{call_id}#{n}"),
        };
        let stored: Option<i64> = db
            .query_row(
                "SELECT started FROM calls WHERE call_id = ?1",
                [&key],
                |r| r.get(0),
            )
            .optional()?;
        if stored.is_none_or(|s| s == started) {
            return Ok(key);
        }
    }
    unreachable!("u32 keys run out before the database does")
}

/// The outcome of a call whose record is written while it goes on.
pub const IN_PROGRESS: &str = "in_progress";
/// The outcome of a call that was in progress when the gateway stopped without
/// ending it (a crash, kill -9, power loss): found at the next start.
pub const INTERRUPTED: &str = "interrupted";

/// The first `ended` time (unix seconds) whose transcripts are still kept.
pub fn expired(now_unix: i64, retention_days: u32) -> i64 {
    now_unix - i64::from(retention_days) * 86_400
}

/// One caller turn as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnRecord {
    /// Redacted; `None` once retention has blanked it (and for the handover row).
    pub text: Option<String>,
    pub intent: Option<String>,
    /// How sure the intent service was (absent for the handover row).
    pub confidence: Option<f32>,
    pub answered: bool,
    pub reply_secs: Option<f32>,
    /// "bot" or "person".
    pub answered_by: String,
}

/// One finished call with its turns, as the dashboard summarises it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub call_id: String,
    /// Unix seconds.
    pub started: i64,
    pub ended: i64,
    /// "da" or "en": the language the call ended in.
    pub language: String,
    pub topic: Option<String>,
    pub outcome: String,
    pub sms_sent: bool,
    pub turns: Vec<TurnRecord>,
}

pub struct Records {
    conn: Connection,
}

impl Records {
    pub fn open(path: &Path) -> Result<Records, RecordsError> {
        let open = || -> rusqlite::Result<Connection> {
            let conn = crate::db::open(path)?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        };
        open()
            .map(|conn| Records { conn })
            .map_err(|source| RecordsError::Open {
                path: path.into(),
                source,
            })
    }

    /// Stores a call as it stands (outcome `in_progress` until it has ended) and its
    /// caller turns; a handed-over call gets a last turn answered by a person.
    /// A record of another call under the same key (a Call-ID repeated across a
    /// restart) is kept: this one is stored as `key#2` (`#3`, …).
    pub fn save(&mut self, call: &CallView) -> Result<(), RecordsError> {
        let tx = self.conn.transaction()?;
        let key = free_key(&tx, &call.call_id, call.started)?;
        let turns = turns(call);
        tx.execute(
            "INSERT OR REPLACE INTO calls (call_id, started, ended, called, caller, language, \
             topic, outcome, queue, sms_sent, turns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                key,
                call.started,
                call.ended.unwrap_or(call.started),
                call.called,
                call.caller,
                call.language,
                call.topic,
                call.outcome.as_deref().unwrap_or(IN_PROGRESS),
                call.transfer.as_ref().map(|t| &t.queue),
                call.sms_sent,
                turns.len() as i64,
            ],
        )?;
        tx.execute("DELETE FROM turns WHERE call_id = ?1", [&key])?;
        for (seq, t) in turns.iter().enumerate() {
            tx.execute(
                "INSERT INTO turns (call_id, seq, at_secs, text, answer, intent, confidence, \
                 answered, reply_secs, answered_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    key,
                    seq as i64,
                    t.at_secs,
                    t.text,
                    t.answer,
                    t.intent,
                    t.confidence,
                    t.answered,
                    t.reply_secs,
                    t.answered_by,
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// At start: calls recorded as in progress were cut off by the last stop. They are
    /// marked `interrupted`, ending at their last turn. Returns how many.
    pub fn mark_interrupted(&self) -> Result<usize, RecordsError> {
        Ok(self.conn.execute(
            "UPDATE calls SET outcome = ?1, ended = started + COALESCE((SELECT CAST(MAX(at_secs) AS INTEGER) \
             + 1 FROM turns WHERE turns.call_id = calls.call_id), 0) WHERE outcome = ?2",
            [INTERRUPTED, IN_PROGRESS],
        )?)
    }

    pub fn sms_sent(&self, call_id: &str) -> Result<(), RecordsError> {
        self.conn.execute(
            "UPDATE calls SET sms_sent = 1 WHERE call_id = ?1",
            [call_id],
        )?;
        Ok(())
    }

    /// Blanks what callers said and the bot answered in calls that ended before the
    /// retention limit. Returns how many turns were blanked.
    pub fn apply_retention(
        &self,
        now_unix: i64,
        retention_days: u32,
    ) -> Result<usize, RecordsError> {
        Ok(self.conn.execute(
            "UPDATE turns SET text = NULL, answer = NULL \
             WHERE (text IS NOT NULL OR answer IS NOT NULL) \
             AND call_id IN (SELECT call_id FROM calls WHERE ended < ?1)",
            [expired(now_unix, retention_days)],
        )?)
    }

    /// Calls that ended at or after `since` (unix seconds), oldest first; calls in
    /// progress are not among them.
    pub fn since(&self, since: i64) -> Result<Vec<CallRecord>, RecordsError> {
        let mut calls = self.conn.prepare(
            "SELECT call_id, started, ended, language, topic, outcome, sms_sent FROM calls \
             WHERE ended >= ?1 AND outcome != ?2 ORDER BY ended",
        )?;
        let mut turns = self.conn.prepare(
            "SELECT text, intent, confidence, answered, reply_secs, answered_by FROM turns \
             WHERE call_id = ?1 ORDER BY seq",
        )?;
        let mut out: Vec<CallRecord> = calls
            .query_map(params![since, IN_PROGRESS], |r| {
                Ok(CallRecord {
                    call_id: r.get(0)?,
                    started: r.get(1)?,
                    ended: r.get(2)?,
                    language: r.get(3)?,
                    topic: r.get(4)?,
                    outcome: r.get(5)?,
                    sms_sent: r.get(6)?,
                    turns: Vec::new(),
                })
            })?
            .collect::<Result<_, _>>()?;
        for call in &mut out {
            call.turns = turns
                .query_map([&call.call_id], |r| {
                    Ok(TurnRecord {
                        text: r.get(0)?,
                        intent: r.get(1)?,
                        confidence: r.get(2)?,
                        answered: r.get(3)?,
                        reply_secs: r.get(4)?,
                        answered_by: r.get(5)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
        }
        Ok(out)
    }

    /// One call, if recorded.
    pub fn call(&self, call_id: &str) -> Result<Option<CallRecord>, RecordsError> {
        let ended: Option<i64> = self
            .conn
            .query_row(
                "SELECT ended FROM calls WHERE call_id = ?1",
                [call_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match ended {
            Some(ended) => self
                .since(ended)?
                .into_iter()
                .find(|c| c.call_id == call_id),
            None => None,
        })
    }
}

/// A caller turn about to be stored.
struct Turn<'a> {
    at_secs: f32,
    text: Option<&'a str>,
    answer: Option<String>,
    intent: Option<&'a str>,
    confidence: Option<f32>,
    answered: bool,
    reply_secs: Option<f32>,
    answered_by: &'static str,
}

/// The caller's lines, each with the bot lines that followed it as its answer; lines
/// after the handover were answered by a person, and the handover itself is a turn.
fn turns(call: &CallView) -> Vec<Turn<'_>> {
    let handover = call.handed_over_at.unwrap_or(usize::MAX);
    let mut out: Vec<Turn> = Vec::new();
    for (i, line) in call.lines.iter().enumerate() {
        if line.who != "caller" {
            if let Some(last) = out.last_mut() {
                let answer = last.answer.get_or_insert_with(String::new);
                if !answer.is_empty() {
                    answer.push(' ');
                }
                answer.push_str(&line.text);
            }
            continue;
        }
        out.push(Turn {
            at_secs: line.at_secs,
            text: Some(&line.text),
            answer: None,
            intent: line.intent.as_deref(),
            confidence: line.confidence,
            answered: line.answered,
            reply_secs: line.reply_secs,
            answered_by: if i >= handover { "person" } else { "bot" },
        });
    }
    if call.handed_over_at.is_some() {
        out.push(Turn {
            at_secs: call.lines.last().map_or(0.0, |l| l.at_secs),
            text: None,
            answer: None,
            intent: None,
            confidence: None,
            answered: true,
            reply_secs: None,
            answered_by: "person",
        });
    }
    out
}

/// What the writer thread is asked to do.
pub enum Write {
    Call(Box<CallView>),
    SmsSent(String),
    Retention {
        now_unix: i64,
        retention_days: u32,
    },
    /// Answered once every write sent before it is done.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Sends writes to the records thread; cheap to clone.
#[derive(Clone)]
pub struct RecordWriter(mpsc::Sender<Write>);

impl RecordWriter {
    /// Starts the thread that owns the write connection; it ends when every writer
    /// is dropped. Writes that fail are logged and counted in `failures`.
    pub fn spawn(mut records: Records, failures: Counter) -> RecordWriter {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("call-records".into())
            .spawn(move || {
                for write in rx {
                    let done = match write {
                        Write::Call(call) => records.save(&call),
                        Write::SmsSent(id) => records.sms_sent(&id),
                        Write::Retention {
                            now_unix,
                            retention_days,
                        } => records
                            .apply_retention(now_unix, retention_days)
                            .map(|n| tracing::info!(turns = n, "retention: transcripts blanked")),
                        Write::Flush(done) => {
                            done.send(()).ok();
                            Ok(())
                        }
                    };
                    if let Err(e) = done {
                        failures.inc();
                        tracing::error!(error = %e, "call record not written");
                    }
                }
            })
            .expect("spawn call-records thread");
        RecordWriter(tx)
    }

    pub fn send(&self, write: Write) {
        if self.0.send(write).is_err() {
            tracing::error!("call records thread is gone; record lost");
        }
    }

    /// Waits until every write sent so far is on disk (or has failed and been logged).
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Write::Flush(tx));
        rx.await.ok();
    }
}

/// Applies retention now and then every hour until `cancel`.
pub async fn retention_task(writer: RecordWriter, retention_days: u32, cancel: CancellationToken) {
    let mut hourly = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = hourly.tick() => writer.send(Write::Retention {
                now_unix: chrono::Utc::now().timestamp(),
                retention_days,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
