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
    pub answered: bool,
    pub reply_secs: Option<f32>,
    /// "bot" or "person".
    pub answered_by: String,
}

/// One finished call with its turns, as the dashboard summarises it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub call_id: String,
    pub ended: i64,
    pub topic: Option<String>,
    pub outcome: String,
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
            "SELECT call_id, ended, topic, outcome FROM calls WHERE ended >= ?1 AND outcome != ?2 \
             ORDER BY ended",
        )?;
        let mut turns = self.conn.prepare(
            "SELECT text, intent, answered, reply_secs, answered_by FROM turns \
             WHERE call_id = ?1 ORDER BY seq",
        )?;
        let mut out: Vec<CallRecord> = calls
            .query_map(params![since, IN_PROGRESS], |r| {
                Ok(CallRecord {
                    call_id: r.get(0)?,
                    ended: r.get(1)?,
                    topic: r.get(2)?,
                    outcome: r.get(3)?,
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
                        answered: r.get(2)?,
                        reply_secs: r.get(3)?,
                        answered_by: r.get(4)?,
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
mod tests {
    use super::*;
    use crate::ops::live::{answer, LiveCalls, TransferView};

    const DAY: i64 = 86_400;

    fn finished(live: &LiveCalls, id: &str) -> CallView {
        let mut c = live.get(id).unwrap();
        c.outcome = Some("transferred".into());
        c.ended = Some(c.started + 60);
        c
    }

    #[test]
    fn a_call_is_stored_redacted_with_bot_and_person_turns() {
        let dir = tempfile::tempdir().unwrap();
        let mut records = Records::open(&dir.path().join("r.sqlite")).unwrap();
        let live = LiveCalls::new(4);
        live.start("c1", 1_000, "70101010", "+45 20 ** ** 56", "da");
        live.said("c1", 1.0, "bot", "Goddag");
        live.said("c1", 4.0, "caller", "mit cpr er 010203-1234, nyt pas");
        live.understood("c1", &answer("pas.nyt", "pas_koerekort", 0.8));
        live.replied("c1", 0.9);
        live.said("c1", 5.0, "bot", "Pas bestilles på borger.dk.");
        live.transfer(
            "c1",
            TransferView {
                queue: "borgerservice".into(),
                reason: "caller_asked".into(),
                method: "refer".into(),
                result: "success".into(),
            },
        );
        live.said("c1", 9.0, "caller", "hallo, er det borgerservice?");
        records.save(&finished(&live, "c1")).unwrap();
        let stored = records.call("c1").unwrap().unwrap();
        assert_eq!(stored.outcome, "transferred");
        assert_eq!(stored.topic.as_deref(), Some("pas_koerekort"));
        let by: Vec<_> = stored
            .turns
            .iter()
            .map(|t| t.answered_by.as_str())
            .collect();
        assert_eq!(
            by,
            ["bot", "person", "person"],
            "the last row is the handover"
        );
        assert_eq!(stored.turns[2].text, None);
        let text = stored.turns[0].text.as_deref().unwrap();
        assert!(text.contains("[CPR]") && !text.contains("010203"), "{text}");
        assert_eq!(stored.turns[0].reply_secs, Some(0.9));
        let (queue, n): (String, i64) = records
            .conn
            .query_row("SELECT queue, turns FROM calls", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((queue.as_str(), n), ("borgerservice", 3));
        records.sms_sent("c1").unwrap();
        let sms: bool = records
            .conn
            .query_row("SELECT sms_sent FROM calls", [], |r| r.get(0))
            .unwrap();
        assert!(sms);
    }

    #[test]
    fn a_repeated_call_id_keeps_both_calls() {
        let dir = tempfile::tempdir().unwrap();
        let mut records = Records::open(&dir.path().join("r.sqlite")).unwrap();
        // In one run: the live view gives the second call its own key.
        let live = LiveCalls::new(4);
        assert_eq!(live.start("same", 1_000, "70101010", "", "da"), "same");
        live.said("same", 2.0, "caller", "nyt pas");
        records.save(&finished(&live, "same")).unwrap();
        let second = live.start("same", 1_100, "70101010", "", "da");
        assert_eq!(second, "same#2");
        live.said(&second, 2.0, "caller", "storskrald");
        records.save(&finished(&live, &second)).unwrap();
        assert_eq!(live.get("same").unwrap().lines[0].text, "nyt pas");
        // After a restart the live view is empty: the records keep both apart.
        let fresh = LiveCalls::new(4);
        let third = fresh.start("same", 1_200, "70101010", "", "da");
        fresh.said(&third, 2.0, "caller", "boligstøtte");
        records.save(&finished(&fresh, &third)).unwrap();
        // Saving the same call again replaces it rather than adding a fourth.
        records.save(&finished(&fresh, &third)).unwrap();
        let texts = |key: &str| -> Option<String> {
            records.call(key).unwrap().unwrap().turns[0].text.clone()
        };
        assert_eq!(texts("same").as_deref(), Some("nyt pas"));
        assert_eq!(texts("same#2").as_deref(), Some("storskrald"));
        assert_eq!(texts("same#3").as_deref(), Some("boligstøtte"));
        let n: i64 = records
            .conn
            .query_row("SELECT COUNT(*) FROM calls", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn live_calls_hand_finished_calls_and_later_sms_to_the_writer_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let writer = RecordWriter::spawn(Records::open(&path).unwrap(), Counter::default());
        let live = LiveCalls::with_records(1, writer);
        live.start("a", 1_000, "70101010", "", "da");
        live.said("a", 2.0, "caller", "nyt sundhedskort");
        live.end("a", "resolved");
        live.start("b", 1_000, "70101010", "", "da"); // pushes "a" out of memory
        assert!(live.get("a").is_none());
        live.sms_sent("a");
        let reader = Records::open(&path).unwrap();
        let sms = || -> Option<bool> {
            reader
                .conn
                .query_row("SELECT sms_sent FROM calls WHERE call_id = 'a'", [], |r| {
                    r.get(0)
                })
                .optional()
                .unwrap()
        };
        let start = std::time::Instant::now();
        while sms() != Some(true) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "sms_sent {:?}",
                sms()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let a = reader.call("a").unwrap().unwrap();
        assert_eq!((a.outcome.as_str(), a.turns.len()), ("resolved", 1));
    }

    #[test]
    fn a_call_is_written_turn_by_turn_and_one_cut_off_is_marked_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let writer = RecordWriter::spawn(Records::open(&path).unwrap(), Counter::default());
        let live = LiveCalls::with_records(4, writer.clone());
        live.start("a", 1_000, "70101010", "", "da");
        live.said("a", 1.0, "bot", "Goddag");
        live.said("a", 4.0, "caller", "nyt pas");
        live.understood("a", &answer("pas.nyt", "pas_koerekort", 0.8));
        live.said("a", 5.0, "bot", "Pas bestilles på borger.dk.");
        live.said("a", 12.0, "caller", "og kørekort");
        live.understood("a", &answer("koerekort.nyt", "pas_koerekort", 0.7));
        // Turn 2's answer is not out yet when the gateway dies.
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(writer.flush());
        let reader = Records::open(&path).unwrap();
        assert!(
            reader.since(0).unwrap().is_empty(),
            "the dashboard counts finished calls only"
        );
        let stored: (String, i64) = reader
            .conn
            .query_row(
                "SELECT outcome, turns FROM calls WHERE call_id = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(stored, (IN_PROGRESS.to_string(), 2));
        // The next start.
        assert_eq!(reader.mark_interrupted().unwrap(), 1);
        let call = reader.call("a").unwrap().unwrap();
        assert_eq!((call.outcome.as_str(), call.ended), (INTERRUPTED, 1_013));
        let intents: Vec<_> = call.turns.iter().map(|t| t.intent.as_deref()).collect();
        assert_eq!(intents, [Some("pas.nyt"), Some("koerekort.nyt")]);
        let answer: String = reader
            .conn
            .query_row("SELECT answer FROM turns WHERE seq = 0", [], |r| r.get(0))
            .unwrap();
        assert_eq!(answer, "Pas bestilles på borger.dk.");
        assert_eq!(reader.mark_interrupted().unwrap(), 0);
    }

    #[test]
    fn failed_writes_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::open(&dir.path().join("r.sqlite")).unwrap();
        records.conn.execute_batch("DROP TABLE turns").unwrap();
        let failures = Counter::default();
        let live = LiveCalls::with_records(4, RecordWriter::spawn(records, failures.clone()));
        // Two writes: the call at its start, and at its end.
        live.start("a", 1_000, "70101010", "", "da");
        live.end("a", "abandoned");
        let start = std::time::Instant::now();
        while failures.get() != 2 {
            assert!(start.elapsed() < Duration::from_secs(5), "not counted");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn retention_blanks_transcripts_of_old_calls_only() {
        assert_eq!(expired(100 * DAY, 30), 70 * DAY);
        let dir = tempfile::tempdir().unwrap();
        let mut records = Records::open(&dir.path().join("r.sqlite")).unwrap();
        let live = LiveCalls::new(4);
        for (id, started) in [("old", 10 * DAY), ("new", 50 * DAY)] {
            live.start(id, started, "70101010", "", "da");
            live.said(id, 2.0, "caller", "hvornår kommer skraldebilen");
            live.said(id, 3.0, "bot", "På tirsdag.");
            records.save(&finished(&live, id)).unwrap();
        }
        // The fake clock: 41 days after the old call, 1 after the new one.
        let now = 51 * DAY;
        assert_eq!(records.apply_retention(now, 30).unwrap(), 1);
        assert_eq!(
            records.apply_retention(now, 30).unwrap(),
            0,
            "already blank"
        );
        let old = records.call("old").unwrap().unwrap();
        let new = records.call("new").unwrap().unwrap();
        assert_eq!(old.turns[0].text, None);
        assert_eq!(old.outcome, "transferred", "the call's facts stay");
        assert_eq!(
            new.turns[0].text.as_deref(),
            Some("hvornår kommer skraldebilen")
        );
        let answers: i64 = records
            .conn
            .query_row("SELECT COUNT(answer) FROM turns", [], |r| r.get(0))
            .unwrap();
        assert_eq!(answers, 1, "only the new call keeps the bot's answer");
    }
}
