//! Call records: one row per finished call and one per caller turn, so staff
//! can see afterwards what callers asked, what the bot made of it, and whether a bot
//! or a person answered. Only redacted text is stored, and no audio at all.
//!
//! They live in SQLite, or in PostgreSQL shared by every gateway (`[storage]`).
//! Writes happen on one dedicated thread fed by a channel ([`RecordWriter`]), so a
//! slow disk or database never stalls the async runtime. Retention blanks the transcripts of calls
//! older than `[privacy] retention_days`; the call's facts (times, outcome, topic) stay
//! for statistics.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::live::CallView;
use crate::storage::migrate::{self, Migration};
use crate::storage::{Db, DbError, Store};

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("call records {backend}: {source}")]
    Open { backend: String, source: DbError },
    #[error("call records: {0}")]
    Db(#[from] DbError),
}

impl RecordsError {
    pub fn is_transient(&self) -> bool {
        match self {
            RecordsError::Db(e) | RecordsError::Open { source: e, .. } => e.is_transient(),
        }
    }
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY,
    started BIGINT NOT NULL,
    ended BIGINT NOT NULL,
    called TEXT NOT NULL,
    caller TEXT NOT NULL,
    language TEXT NOT NULL,
    topic TEXT,
    outcome TEXT NOT NULL,
    queue TEXT,
    sms_sent BOOLEAN NOT NULL,
    turns BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_ended ON calls(ended);
CREATE TABLE IF NOT EXISTS turns (
    call_id TEXT NOT NULL REFERENCES calls(call_id),
    seq BIGINT NOT NULL,
    at_secs DOUBLE PRECISION NOT NULL,
    text TEXT,
    answer TEXT,
    intent TEXT,
    confidence DOUBLE PRECISION,
    answered BOOLEAN NOT NULL,
    reply_secs DOUBLE PRECISION,
    answered_by TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);",
    },
    // How the caller reached us ('sip'; WebRTC callers will be 'webrtc'), and which
    // gateway took the call (a restarted gateway marks only its own cut-off calls).
    Migration {
        version: 2,
        sql: "ALTER TABLE calls ADD COLUMN channel TEXT NOT NULL DEFAULT 'sip';
              ALTER TABLE calls ADD COLUMN node TEXT NOT NULL DEFAULT ''",
    },
    // The municipality the call was for (`[[tenants]]`); calls from before tenants
    // were all the one implicit tenant's.
    Migration {
        version: 3,
        sql: "ALTER TABLE calls ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'",
    },
];

/// `call_id`, unless a different call (another start time) is stored under it: then
/// the first free `call_id#n`.
fn free_key(db: &mut Db, call_id: &str, started: i64) -> Result<String, DbError> {
    for n in 1u32.. {
        let key = match n {
            1 => call_id.to_string(),
            n => format!("{call_id}#{n}"),
        };
        let stored = db.query_opt(
            "SELECT started FROM calls WHERE call_id = ?1",
            &[(&key).into()],
        )?;
        if stored
            .map(|r| r.int(0))
            .transpose()?
            .is_none_or(|s| s == started)
        {
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
    /// The `[[tenants]]` name of the municipality called.
    pub tenant: String,
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
    db: Db,
    /// This gateway's name (`[storage] node`), on the calls it records.
    node: String,
}

impl Records {
    /// Opens the call records, bringing their schema up to date.
    pub fn open(store: &Store) -> Result<Records, RecordsError> {
        let err = |source| RecordsError::Open {
            backend: store.backend.to_string(),
            source,
        };
        let mut db = Db::open(&store.backend).map_err(err)?;
        migrate::run(&mut db, "records", MIGRATIONS).map_err(err)?;
        Ok(Records {
            db,
            node: store.node.clone(),
        })
    }

    /// Stores a call as it stands (outcome `in_progress` until it has ended) and its
    /// caller turns; a handed-over call gets a last turn answered by a person.
    /// A record of another call under the same key (a Call-ID repeated across a
    /// restart) is kept: this one is stored as `key#2` (`#3`, …).
    pub fn save(&mut self, call: &CallView) -> Result<(), RecordsError> {
        let node = self.node.clone();
        self.db.transaction(|db| {
            let key = free_key(db, &call.call_id, call.started)?;
            let turns = turns(call);
            db.execute(
                "INSERT INTO calls (call_id, started, ended, called, caller, language, topic, \
                 outcome, queue, sms_sent, turns, node, channel, tenant) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
                 ON CONFLICT (call_id) DO UPDATE SET started = excluded.started, \
                 ended = excluded.ended, called = excluded.called, caller = excluded.caller, \
                 language = excluded.language, topic = excluded.topic, \
                 outcome = excluded.outcome, queue = excluded.queue, \
                 sms_sent = excluded.sms_sent, turns = excluded.turns, node = excluded.node, \
                 channel = excluded.channel, tenant = excluded.tenant",
                &[
                    (&key).into(),
                    call.started.into(),
                    call.ended.unwrap_or(call.started).into(),
                    (&call.called).into(),
                    (&call.caller).into(),
                    (&call.language).into(),
                    call.topic.as_ref().into(),
                    call.outcome.as_deref().unwrap_or(IN_PROGRESS).into(),
                    call.transfer.as_ref().map(|t| &t.queue).into(),
                    call.sms_sent.into(),
                    (turns.len() as i64).into(),
                    node.as_str().into(),
                    (&call.channel).into(),
                    (&call.tenant).into(),
                ],
            )?;
            db.execute("DELETE FROM turns WHERE call_id = ?1", &[(&key).into()])?;
            for (seq, t) in turns.iter().enumerate() {
                db.execute(
                    "INSERT INTO turns (call_id, seq, at_secs, text, answer, intent, confidence, \
                     answered, reply_secs, answered_by) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    &[
                        (&key).into(),
                        (seq as i64).into(),
                        t.at_secs.into(),
                        t.text.into(),
                        t.answer.as_ref().into(),
                        t.intent.into(),
                        t.confidence.into(),
                        t.answered.into(),
                        t.reply_secs.into(),
                        t.answered_by.into(),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// At start: calls this gateway recorded as in progress were cut off by its last
    /// stop. They are marked `interrupted`, ending at their last turn. Returns how many.
    /// (Calls another gateway has in progress in a shared database are its own.)
    pub fn mark_interrupted(&mut self) -> Result<u64, RecordsError> {
        Ok(self.db.execute(
            "UPDATE calls SET outcome = ?1, ended = started + COALESCE((SELECT CAST(MAX(at_secs) AS BIGINT) \
             + 1 FROM turns WHERE turns.call_id = calls.call_id), 0) \
             WHERE outcome = ?2 AND (node = ?3 OR node = '')",
            &[INTERRUPTED.into(), IN_PROGRESS.into(), self.node.as_str().into()],
        )?)
    }

    pub fn sms_sent(&mut self, call_id: &str) -> Result<(), RecordsError> {
        self.db.execute(
            "UPDATE calls SET sms_sent = ?2 WHERE call_id = ?1",
            &[call_id.into(), true.into()],
        )?;
        Ok(())
    }

    /// Blanks what callers said and the bot answered in calls that ended before the
    /// retention limit. Returns how many turns were blanked.
    pub fn apply_retention(
        &mut self,
        now_unix: i64,
        retention_days: u32,
    ) -> Result<u64, RecordsError> {
        Ok(self.db.execute(
            "UPDATE turns SET text = NULL, answer = NULL \
             WHERE (text IS NOT NULL OR answer IS NOT NULL) \
             AND call_id IN (SELECT call_id FROM calls WHERE ended < ?1)",
            &[expired(now_unix, retention_days).into()],
        )?)
    }

    /// Calls that ended at or after `since` (unix seconds), oldest first, recorded by
    /// any gateway; calls in progress are not among them.
    pub fn since(&mut self, since: i64) -> Result<Vec<CallRecord>, RecordsError> {
        let params = [since.into(), IN_PROGRESS.into()];
        let mut out = Vec::new();
        let mut index = HashMap::new();
        for r in self.db.query(
            "SELECT call_id, started, ended, language, topic, outcome, sms_sent, tenant FROM calls \
             WHERE ended >= ?1 AND outcome != ?2 ORDER BY ended, call_id",
            &params,
        )? {
            index.insert(r.text(0)?, out.len());
            out.push(CallRecord {
                call_id: r.text(0)?,
                started: r.int(1)?,
                ended: r.int(2)?,
                language: r.text(3)?,
                topic: r.opt_text(4)?,
                outcome: r.text(5)?,
                sms_sent: r.bool(6)?,
                tenant: r.text(7)?,
                turns: Vec::new(),
            });
        }
        // One query for every call's turns: a shared database is a round trip away.
        for r in self.db.query(
            "SELECT t.call_id, t.text, t.intent, t.confidence, t.answered, t.reply_secs, t.answered_by \
             FROM turns t JOIN calls c ON c.call_id = t.call_id \
             WHERE c.ended >= ?1 AND c.outcome != ?2 ORDER BY t.call_id, t.seq",
            &params,
        )? {
            if let Some(&i) = index.get(&r.text(0)?) {
                out[i].turns.push(TurnRecord {
                    text: r.opt_text(1)?,
                    intent: r.opt_text(2)?,
                    confidence: r.opt_real(3)?.map(|v| v as f32),
                    answered: r.bool(4)?,
                    reply_secs: r.opt_real(5)?.map(|v| v as f32),
                    answered_by: r.text(6)?,
                });
            }
        }
        Ok(out)
    }

    /// One call, if recorded.
    pub fn call(&mut self, call_id: &str) -> Result<Option<CallRecord>, RecordsError> {
        let ended = self
            .db
            .query_opt(
                "SELECT ended FROM calls WHERE call_id = ?1",
                &[call_id.into()],
            )?
            .map(|r| r.int(0))
            .transpose()?;
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
mod writer;

pub use writer::{RecordWriter, Write};
