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

use std::time::{Duration, SystemTime};

use super::number::E164;
use super::receipt::{Receipt, ReceiptState};
use super::retry::{Next, RetryPolicy};
use crate::storage::migrate;
use crate::storage::{Backend, Db, DbError};
use rows::{message, millis, time, COLUMNS, MIGRATIONS};

/// A message left `sending` this long by another gateway is taken to be orphaned
/// (that gateway died mid-submission and has not come back): any gateway requeues
/// it. A submission itself gives up after seconds.
pub const ORPHANED_AFTER: Duration = Duration::from_secs(600);

/// The window of the per-number limit.
pub const RATE_WINDOW: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("SMS outbox {backend}: {source}")]
    Open { backend: String, source: DbError },
    #[error("SMS outbox: {0}")]
    Db(#[from] DbError),
    #[error("SMS outbox: message {id} has a stored number that is not E.164")]
    Corrupt { id: i64 },
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
    /// The sender shown on the phone, when not the configured one (a tenant's own).
    pub sender: Option<String>,
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

/// Which messages left `sending` [`Outbox::recover`] takes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recover {
    /// This gateway's own and orphans.
    AtStart,
    /// Orphans only.
    Orphans,
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(SystemTime),
    Failed,
}

pub struct Outbox {
    db: Db,
    /// This gateway's name (`[storage] node`), on the messages it is sending.
    node: String,
}

impl Outbox {
    /// Opens (creating if need be) the outbox, bringing its schema up to date.
    pub fn open(backend: &Backend, node: &str) -> Result<Outbox, OutboxError> {
        let err = |source| OutboxError::Open {
            backend: backend.to_string(),
            source,
        };
        let db = Db::open(backend).map_err(err)?;
        Outbox::init(db, node).map_err(err)
    }

    fn init(mut db: Db, node: &str) -> Result<Outbox, DbError> {
        // An enqueue that returned survives a power cut.
        db.durable_commits()?;
        migrate::run(&mut db, "sms", MIGRATIONS)?;
        Ok(Outbox {
            db,
            node: node.to_string(),
        })
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
        self.enqueue_from(key, to, text, None, limit, now)
    }

    /// As [`Outbox::enqueue`], shown as from `sender` (a tenant's own; None: the
    /// configured `[sms] from`).
    pub fn enqueue_from(
        &mut self,
        key: &str,
        to: &E164,
        text: &str,
        sender: Option<&str>,
        limit: u32,
        now: SystemTime,
    ) -> Result<Enqueued, OutboxError> {
        self.db.transaction(|db| {
            // Two calls to one number, on any gateways, cannot both pass the limit.
            db.lock(&format!("sms-to:{}", to.as_str()))?;
            if let Some(row) = db.query_opt(
                "SELECT id FROM sms WHERE idempotency_key = ?1",
                &[key.into()],
            )? {
                return Ok(Enqueued::Duplicate(row.int(0)?));
            }
            let recent = recent(db, to, now)?;
            if recent >= limit {
                return Ok(Enqueued::Limited { recent });
            }
            let row = db.query_one(
                "INSERT INTO sms (idempotency_key, to_number, text, status, next_attempt_at,
                                  created_at, updated_at, sender)
                 VALUES (?1, ?2, ?3, 'queued', ?4, ?4, ?4, ?5) RETURNING id",
                &[
                    key.into(),
                    to.as_str().into(),
                    text.into(),
                    millis(now).into(),
                    sender.into(),
                ],
            )?;
            Ok(Enqueued::New(row.int(0)?))
        })
    }

    /// Messages queued for `to` in the 24 hours before `now`, failed ones included: the
    /// limit guards the citizen's phone and our bill, not the success rate.
    pub fn recent_count(&mut self, to: &E164, now: SystemTime) -> Result<u32, OutboxError> {
        Ok(recent(&mut self.db, to, now)?)
    }

    /// Puts messages left `sending` back in the queue, due now: at start, this
    /// gateway's own (caught mid-submission by its last stop) and orphans; later, only
    /// orphans of gateways that died ([`ORPHANED_AFTER`]), as this gateway's own are
    /// being sent right then. One that has had `max_attempts` is failed instead, so a
    /// message whose submission keeps crashing a gateway is not retried forever.
    pub fn recover(
        &mut self,
        which: Recover,
        max_attempts: u32,
        now: SystemTime,
    ) -> Result<Recovered, OutboxError> {
        self.requeue(which == Recover::AtStart, max_attempts, now)
    }

    fn requeue(
        &mut self,
        mine_too: bool,
        max_attempts: u32,
        now: SystemTime,
    ) -> Result<Recovered, OutboxError> {
        // Placeholders ?2, ?3, ?4 after the statement's own ?1 (and ?5).
        let whose = "status = 'sending' AND ((?2 AND (claimed_by IS NULL OR claimed_by = ?3))
                     OR updated_at < ?4)";
        let orphaned = millis(now) - ORPHANED_AFTER.as_millis() as i64;
        let params = [
            millis(now).into(),
            mine_too.into(),
            self.node.as_str().into(),
            orphaned.into(),
        ];
        self.db.transaction(|db| {
            let failed = db.execute(
                &format!(
                    "UPDATE sms SET status = 'failed', updated_at = ?1,
                            last_error = 'interrupted on its last attempt (gateway stopped)'
                     WHERE {whose} AND attempts >= ?5"
                ),
                &[params.as_slice(), &[max_attempts.into()]].concat(),
            )? as usize;
            let requeued = db.execute(
                &format!(
                    "UPDATE sms SET status = 'queued', next_attempt_at = ?1, updated_at = ?1,
                            claimed_by = NULL
                     WHERE {whose}"
                ),
                &params,
            )? as usize;
            Ok(Recovered { requeued, failed })
        })
    }

    /// Deletes messages finished (sent, delivered or failed) before `before`, with the
    /// numbers and texts they hold. Returns how many went.
    pub fn purge(&mut self, before: SystemTime) -> Result<usize, OutboxError> {
        let old = "SELECT id FROM sms WHERE status IN ('sent', 'delivered', 'failed')
                   AND updated_at < ?1";
        self.db.transaction(|db| {
            db.execute(
                &format!("DELETE FROM sms_part WHERE sms_id IN ({old})"),
                &[millis(before).into()],
            )?;
            Ok(db.execute(
                &format!("DELETE FROM sms WHERE id IN ({old})"),
                &[millis(before).into()],
            )? as usize)
        })
    }

    /// Takes the most overdue queued message, marking it `sending` by this gateway and
    /// counting the attempt (so one that crashes the gateway is not retried forever).
    /// Gateways sharing a database never take the same message: each passes over the
    /// rows another is taking.
    pub fn claim_due(&mut self, now: SystemTime) -> Result<Option<Message>, OutboxError> {
        let sql = format!(
            "UPDATE sms SET status = 'sending', attempts = attempts + 1, updated_at = ?1,
                            claimed_by = ?2
             WHERE id = (SELECT id FROM sms WHERE status = 'queued' AND next_attempt_at <= ?1
                         ORDER BY next_attempt_at, id LIMIT 1{})
             RETURNING {COLUMNS}",
            self.db.skip_locked()
        );
        let row = self
            .db
            .query_opt(&sql, &[millis(now).into(), self.node.as_str().into()])?;
        row.map(|r| message(&r)).transpose()
    }

    /// When the next queued message falls due, if any is queued.
    pub fn next_due(&mut self) -> Result<Option<SystemTime>, OutboxError> {
        let t = self
            .db
            .query_one(
                "SELECT MIN(next_attempt_at) FROM sms WHERE status = 'queued'",
                &[],
            )?
            .opt_int(0)?;
        Ok(t.map(time))
    }

    /// The SMSC or provider accepted the message; `ids` are its ids for the parts.
    pub fn mark_sent(
        &mut self,
        id: i64,
        ids: &[String],
        now: SystemTime,
    ) -> Result<(), OutboxError> {
        let joined = (!ids.is_empty()).then(|| ids.join(" "));
        self.db.transaction(|db| {
            db.execute(
                "UPDATE sms SET status = 'sent', smsc_message_id = ?2, last_error = NULL,
                                updated_at = ?3
                 WHERE id = ?1",
                &[id.into(), joined.into(), millis(now).into()],
            )?;
            for part in ids {
                // A resend after a crash may get an id reused by the SMSC; the newest wins.
                db.execute(
                    "INSERT INTO sms_part (smsc_message_id, sms_id, state) VALUES (?1, ?2, NULL)
                     ON CONFLICT (smsc_message_id) DO UPDATE SET sms_id = excluded.sms_id,
                                                               state = NULL",
                    &[part.into(), id.into()],
                )?;
            }
            Ok(())
        })
    }

    /// A temporary failure: back to the queue per `policy`, or failed for good.
    pub fn mark_retry(
        &mut self,
        id: i64,
        error: &str,
        policy: &RetryPolicy,
        now: SystemTime,
    ) -> Result<AfterFailure, OutboxError> {
        let attempts = self
            .db
            .query_one("SELECT attempts FROM sms WHERE id = ?1", &[id.into()])?
            .count(0)?;
        match policy.after_failure(attempts, now) {
            Next::GiveUp => {
                self.mark_failed(id, error, now)?;
                Ok(AfterFailure::Failed)
            }
            Next::RetryAt(at) => {
                self.db.execute(
                    "UPDATE sms SET status = 'queued', next_attempt_at = ?2, last_error = ?3,
                                    updated_at = ?4, claimed_by = NULL
                     WHERE id = ?1",
                    &[
                        id.into(),
                        millis(at).into(),
                        error.into(),
                        millis(now).into(),
                    ],
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
            &[id.into(), error.into(), millis(now).into()],
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
        self.db.transaction(|db| {
            let Some(part) = db.query_opt(
                "SELECT sms_id FROM sms_part WHERE smsc_message_id = ?1",
                &[receipt.message_id.as_str().into()],
            )?
            else {
                return Ok(None);
            };
            let sms_id = part.int(0)?;
            db.execute(
                "UPDATE sms_part SET state = ?2 WHERE smsc_message_id = ?1",
                &[
                    receipt.message_id.as_str().into(),
                    receipt.stat.as_str().into(),
                ],
            )?;
            let counts = db.query_one(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 'DELIVRD'),
                        COUNT(*) FILTER (WHERE state IS NOT NULL AND state != 'DELIVRD')
                 FROM sms_part WHERE sms_id = ?1",
                &[sms_id.into()],
            )?;
            let (parts, delivered, failed) = (counts.count(0)?, counts.count(1)?, counts.count(2)?);
            let status = if failed > 0 {
                Status::Failed
            } else if delivered == parts {
                Status::Delivered
            } else {
                return Ok(None);
            };
            // Only a sent message moves on: a late receipt must not undo a final state.
            let changed = db.execute(
                "UPDATE sms SET status = ?2, updated_at = ?3,
                                last_error = CASE WHEN ?2 = 'failed'
                                                  THEN 'receipt: ' || CAST(?4 AS TEXT)
                                                  ELSE last_error END
                 WHERE id = ?1 AND status = 'sent'",
                &[
                    sms_id.into(),
                    status.as_str().into(),
                    millis(now).into(),
                    receipt.stat.as_str().into(),
                ],
            )?;
            Ok((changed > 0).then_some((sms_id, status)))
        })
    }

    /// When each message created at or after `since_unix` (seconds) was created
    /// (unix seconds) and where it stands: for the dashboard's SMS chart.
    pub fn created_since(
        &mut self,
        since_unix: i64,
    ) -> Result<Vec<(i64, &'static str)>, OutboxError> {
        let rows = self.db.query(
            "SELECT created_at, status FROM sms WHERE created_at >= ?1 ORDER BY created_at",
            &[since_unix.saturating_mul(1000).into()],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((r.int(0)? / 1000, Status::parse(&r.text(1)?).as_str()));
        }
        Ok(out)
    }

    pub fn get(&mut self, id: i64) -> Result<Option<Message>, OutboxError> {
        let row = self.db.query_opt(
            &format!("SELECT {COLUMNS} FROM sms WHERE id = ?1"),
            &[id.into()],
        )?;
        row.map(|r| message(&r)).transpose()
    }
}

fn recent(db: &mut Db, to: &E164, now: SystemTime) -> Result<u32, DbError> {
    db.query_one(
        "SELECT COUNT(*) FROM sms WHERE to_number = ?1 AND created_at > ?2",
        &[
            to.as_str().into(),
            (millis(now) - RATE_WINDOW.as_millis() as i64).into(),
        ],
    )?
    .count(0)
}

mod rows;
#[cfg(test)]
mod tests;
