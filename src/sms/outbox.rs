//! The durable outbox: every SMS a caller consented to, in SQLite, from the moment the
//! bot says "Du får en SMS om lidt" until the SMSC reports it delivered or we give up.
//!
//! Sans-IO in the sense that matters: every method takes `now` and nothing here sleeps
//! or sends; the sender task (`sms::Sms`) decides when to call what. Times are stored as
//! Unix milliseconds because they must survive a restart.
//!
//! Delivery is at-least-once. A message is marked `sending` before it is handed to the
//! SMSC and `sent` after; if the gateway dies in between, [`Outbox::recover`] puts it
//! back to `queued` and it is sent again, because losing a promised SMS is worse than a
//! rare duplicate. The idempotency key (call id + intent id, UNIQUE) keeps one
//! conversation from queueing the same link twice, and is passed to the HTTP provider
//! as its `reference` so it can drop the resend; SMPP has no such field.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row as SqlRow, TransactionBehavior};

use super::number::E164;
use super::receipt::{Receipt, ReceiptState};
use super::retry::{Next, RetryPolicy};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sms (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    to_number TEXT NOT NULL,
    text TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    smsc_message_id TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sms_due ON sms (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS sms_recent ON sms (to_number, created_at);
-- One row per part the SMSC accepted, to match its delivery receipts.
CREATE TABLE IF NOT EXISTS sms_part (
    smsc_message_id TEXT PRIMARY KEY,
    sms_id INTEGER NOT NULL REFERENCES sms (id),
    state TEXT
);
PRAGMA user_version = 1;
";

/// The window of the per-number limit.
pub const RATE_WINDOW: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("SMS outbox {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("SMS outbox: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("SMS outbox task: {0}")]
    Task(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    Sending,
    /// Accepted by the SMSC or provider; a receipt may follow.
    Sent,
    Delivered,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "queued" => Status::Queued,
            "sending" => Status::Sending,
            "sent" => Status::Sent,
            "delivered" => Status::Delivered,
            // The CHECK constraint admits nothing else.
            _ => Status::Failed,
        }
    }
}

/// One message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub idempotency_key: String,
    pub to: E164,
    pub text: String,
    pub status: Status,
    pub attempts: u32,
    pub next_attempt_at: SystemTime,
    /// The SMSC's ids of the accepted parts, space separated.
    pub smsc_message_id: Option<String>,
    pub last_error: Option<String>,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    New(i64),
    /// The key was queued before; nothing was added.
    Duplicate(i64),
    /// The number already had `recent` messages in the last 24 hours.
    Limited {
        recent: u32,
    },
}

/// What [`Outbox::recover`] did with the messages caught mid-submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Back in the queue, due now.
    pub requeued: usize,
    /// Had used all their attempts: failed.
    pub failed: usize,
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(SystemTime),
    Failed,
}

pub struct Outbox {
    db: Connection,
}

impl Outbox {
    /// Opens (creating if need be) the outbox file and its directory.
    pub fn open(path: &Path) -> Result<Outbox, OutboxError> {
        let err = |source| OutboxError::Open {
            path: path.display().to_string(),
            source,
        };
        // WAL lets a second process (ops, a test) read while we write.
        let db = crate::db::open(path).map_err(err)?;
        Outbox::init(db).map_err(err)
    }

    pub fn open_in_memory() -> Result<Outbox, OutboxError> {
        let db = Connection::open_in_memory()?;
        crate::db::configure(&db)?;
        Ok(Outbox::init(db)?)
    }

    fn init(db: Connection) -> Result<Outbox, rusqlite::Error> {
        // FULL syncs each commit, so an enqueue that returned survives a power cut.
        db.pragma_update(None, "synchronous", "FULL")?;
        db.execute_batch(SCHEMA)?;
        Ok(Outbox { db })
    }

    /// Queues a message unless its key is known or the number reached `limit` in the
    /// last 24 hours; committed to disk before it returns.
    pub fn enqueue(
        &mut self,
        key: &str,
        to: &E164,
        text: &str,
        limit: u32,
        now: SystemTime,
    ) -> Result<Enqueued, OutboxError> {
        // IMMEDIATE takes the write lock first, so two calls cannot both pass the limit.
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(id) = tx
            .query_row(
                "SELECT id FROM sms WHERE idempotency_key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?
        {
            return Ok(Enqueued::Duplicate(id));
        }
        let recent = recent(&tx, to, now)?;
        if recent >= limit {
            return Ok(Enqueued::Limited { recent });
        }
        let t = millis(now);
        tx.execute(
            "INSERT INTO sms (idempotency_key, to_number, text, status, next_attempt_at,
                              created_at, updated_at)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?4, ?4)",
            params![key, to.as_str(), text, t],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(Enqueued::New(id))
    }

    /// Messages queued for `to` in the 24 hours before `now`, failed ones included: the
    /// limit guards the citizen's phone and our bill, not the success rate.
    pub fn recent_count(&self, to: &E164, now: SystemTime) -> Result<u32, OutboxError> {
        Ok(recent(&self.db, to, now)?)
    }

    /// After a restart: messages caught mid-submission go back to the queue, due now,
    /// unless they have had `max_attempts` already: one whose submission keeps
    /// crashing the gateway is then failed instead of retried forever.
    pub fn recover(
        &mut self,
        max_attempts: u32,
        now: SystemTime,
    ) -> Result<Recovered, OutboxError> {
        let tx = self.db.transaction()?;
        let failed = tx.execute(
            "UPDATE sms SET status = 'failed', updated_at = ?1,
                            last_error = 'interrupted on its last attempt (gateway stopped)'
             WHERE status = 'sending' AND attempts >= ?2",
            params![millis(now), max_attempts],
        )?;
        let requeued = tx.execute(
            "UPDATE sms SET status = 'queued', next_attempt_at = ?1, updated_at = ?1
             WHERE status = 'sending'",
            [millis(now)],
        )?;
        tx.commit()?;
        Ok(Recovered { requeued, failed })
    }

    /// Deletes messages finished (sent, delivered or failed) before `before`, with the
    /// numbers and texts they hold. Returns how many went.
    pub fn purge(&mut self, before: SystemTime) -> Result<usize, OutboxError> {
        let tx = self.db.transaction()?;
        let old = "SELECT id FROM sms WHERE status IN ('sent', 'delivered', 'failed')
                   AND updated_at < ?1";
        tx.execute(
            &format!("DELETE FROM sms_part WHERE sms_id IN ({old})"),
            [millis(before)],
        )?;
        let n = tx.execute(
            &format!("DELETE FROM sms WHERE id IN ({old})"),
            [millis(before)],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Takes the most overdue queued message, marking it `sending` and counting the
    /// attempt (so one that crashes the gateway is not retried forever).
    pub fn claim_due(&mut self, now: SystemTime) -> Result<Option<Message>, OutboxError> {
        let t = millis(now);
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id: Option<i64> = tx
            .query_row(
                "SELECT id FROM sms WHERE status = 'queued' AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at, id LIMIT 1",
                [t],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE sms SET status = 'sending', attempts = attempts + 1, updated_at = ?2
             WHERE id = ?1",
            params![id, t],
        )?;
        tx.commit()?;
        self.get(id)
    }

    /// When the next queued message falls due, if any is queued.
    pub fn next_due(&self) -> Result<Option<SystemTime>, OutboxError> {
        let t: Option<i64> = self.db.query_row(
            "SELECT MIN(next_attempt_at) FROM sms WHERE status = 'queued'",
            [],
            |r| r.get(0),
        )?;
        Ok(t.map(time))
    }

    /// The SMSC or provider accepted the message; `ids` are its ids for the parts.
    pub fn mark_sent(
        &mut self,
        id: i64,
        ids: &[String],
        now: SystemTime,
    ) -> Result<(), OutboxError> {
        let tx = self.db.transaction()?;
        let joined = (!ids.is_empty()).then(|| ids.join(" "));
        tx.execute(
            "UPDATE sms SET status = 'sent', smsc_message_id = ?2, last_error = NULL,
                            updated_at = ?3
             WHERE id = ?1",
            params![id, joined, millis(now)],
        )?;
        for part in ids {
            // A resend after a crash may get an id reused by the SMSC; the newest wins.
            tx.execute(
                "INSERT OR REPLACE INTO sms_part (smsc_message_id, sms_id) VALUES (?1, ?2)",
                params![part, id],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A temporary failure: back to the queue per `policy`, or failed for good.
    pub fn mark_retry(
        &mut self,
        id: i64,
        error: &str,
        policy: &RetryPolicy,
        now: SystemTime,
    ) -> Result<AfterFailure, OutboxError> {
        let attempts: u32 =
            self.db
                .query_row("SELECT attempts FROM sms WHERE id = ?1", [id], |r| r.get(0))?;
        match policy.after_failure(attempts, now) {
            Next::GiveUp => {
                self.mark_failed(id, error, now)?;
                Ok(AfterFailure::Failed)
            }
            Next::RetryAt(at) => {
                self.db.execute(
                    "UPDATE sms SET status = 'queued', next_attempt_at = ?2, last_error = ?3,
                                    updated_at = ?4
                     WHERE id = ?1",
                    params![id, millis(at), error, millis(now)],
                )?;
                Ok(AfterFailure::RetryAt(at))
            }
        }
    }

    /// A permanent failure (rejected number, bad request): no more attempts.
    pub fn mark_failed(
        &mut self,
        id: i64,
        error: &str,
        now: SystemTime,
    ) -> Result<(), OutboxError> {
        self.db.execute(
            "UPDATE sms SET status = 'failed', last_error = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, error, millis(now)],
        )?;
        Ok(())
    }

    /// Records a part's receipt. The message is delivered once every part is, failed
    /// as soon as one part fails. Returns the message and its new status if it changed;
    /// `None` for an unknown id or a receipt that decides nothing yet.
    pub fn apply_receipt(
        &mut self,
        receipt: &Receipt,
        now: SystemTime,
    ) -> Result<Option<(i64, Status)>, OutboxError> {
        if receipt.state == ReceiptState::Pending {
            return Ok(None);
        }
        let tx = self.db.transaction()?;
        let sms_id: Option<i64> = tx
            .query_row(
                "SELECT sms_id FROM sms_part WHERE smsc_message_id = ?1",
                [&receipt.message_id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(sms_id) = sms_id else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE sms_part SET state = ?2 WHERE smsc_message_id = ?1",
            params![receipt.message_id, receipt.stat],
        )?;
        let (parts, delivered, failed): (u32, u32, u32) = tx.query_row(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 'DELIVRD'),
                    COUNT(*) FILTER (WHERE state IS NOT NULL AND state != 'DELIVRD')
             FROM sms_part WHERE sms_id = ?1",
            [sms_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let status = if failed > 0 {
            Status::Failed
        } else if delivered == parts {
            Status::Delivered
        } else {
            tx.commit()?;
            return Ok(None);
        };
        // Only a sent message moves on: a late receipt must not undo a final state.
        let changed = tx.execute(
            "UPDATE sms SET status = ?2, updated_at = ?3,
                            last_error = CASE WHEN ?2 = 'failed' THEN 'receipt: ' || ?4
                                              ELSE last_error END
             WHERE id = ?1 AND status = 'sent'",
            params![sms_id, status.as_str(), millis(now), receipt.stat],
        )?;
        tx.commit()?;
        Ok((changed > 0).then_some((sms_id, status)))
    }

    /// When each message created at or after `since_unix` (seconds) was created
    /// (unix seconds) and where it stands: for the dashboard's SMS chart.
    pub fn created_since(&self, since_unix: i64) -> Result<Vec<(i64, &'static str)>, OutboxError> {
        let mut q = self.db.prepare(
            "SELECT created_at, status FROM sms WHERE created_at >= ?1 ORDER BY created_at",
        )?;
        let rows = q.query_map([since_unix.saturating_mul(1000)], |r| {
            let status: String = r.get(1)?;
            Ok((r.get::<_, i64>(0)? / 1000, Status::parse(&status).as_str()))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn get(&self, id: i64) -> Result<Option<Message>, OutboxError> {
        Ok(self
            .db
            .query_row("SELECT * FROM sms WHERE id = ?1", [id], message)
            .optional()?)
    }
}

fn recent(db: &Connection, to: &E164, now: SystemTime) -> rusqlite::Result<u32> {
    db.query_row(
        "SELECT COUNT(*) FROM sms WHERE to_number = ?1 AND created_at > ?2",
        params![to.as_str(), millis(now) - RATE_WINDOW.as_millis() as i64],
        |r| r.get(0),
    )
}

impl FromSql for E164 {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        E164::parse(value.as_str()?)
            .ok_or_else(|| FromSqlError::Other("not an E.164 number".into()))
    }
}

fn message(r: &SqlRow) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get("id")?,
        idempotency_key: r.get("idempotency_key")?,
        to: r.get("to_number")?,
        text: r.get("text")?,
        status: Status::parse(&r.get::<_, String>("status")?),
        attempts: r.get("attempts")?,
        next_attempt_at: time(r.get("next_attempt_at")?),
        smsc_message_id: r.get("smsc_message_id")?,
        last_error: r.get("last_error")?,
        created_at: time(r.get("created_at")?),
        updated_at: time(r.get("updated_at")?),
    })
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

#[cfg(test)]
mod tests;
