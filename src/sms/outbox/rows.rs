//! How the outbox is stored: its schema, versioned, and a row as a [`Message`]. Times
//! are Unix milliseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Message, OutboxError, Status, E164};
use crate::storage::migrate::Migration;
use crate::storage::Row;

pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "
CREATE TABLE IF NOT EXISTS sms (
    id {id},
    idempotency_key TEXT NOT NULL UNIQUE,
    to_number TEXT NOT NULL,
    text TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    smsc_message_id TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sms_due ON sms (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS sms_recent ON sms (to_number, created_at);
-- One row per part the SMSC accepted, to match its delivery receipts.
CREATE TABLE IF NOT EXISTS sms_part (
    smsc_message_id TEXT PRIMARY KEY,
    sms_id BIGINT NOT NULL REFERENCES sms (id),
    state TEXT
);",
    },
    // Which gateway is sending a message, so a restart takes back only its own.
    Migration {
        version: 2,
        sql: "ALTER TABLE sms ADD COLUMN claimed_by TEXT",
    },
    // The sender shown on the phone when it is a tenant's own (NULL: `[sms] from`).
    Migration {
        version: 3,
        sql: "ALTER TABLE sms ADD COLUMN sender TEXT",
    },
];

pub(super) const COLUMNS: &str =
    "id, idempotency_key, to_number, text, status, attempts, next_attempt_at, \
                       smsc_message_id, last_error, created_at, updated_at, sender";

/// A row selected with [`COLUMNS`].
pub(super) fn message(r: &Row) -> Result<Message, OutboxError> {
    let id = r.int(0)?;
    Ok(Message {
        id,
        idempotency_key: r.text(1)?,
        to: E164::parse(&r.text(2)?).ok_or(OutboxError::Corrupt { id })?,
        text: r.text(3)?,
        status: Status::parse(&r.text(4)?),
        attempts: r.count(5)?,
        next_attempt_at: time(r.int(6)?),
        smsc_message_id: r.opt_text(7)?,
        last_error: r.opt_text(8)?,
        created_at: time(r.int(9)?),
        updated_at: time(r.int(10)?),
        sender: r.opt_text(11)?,
    })
}

pub(super) fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(super) fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}
