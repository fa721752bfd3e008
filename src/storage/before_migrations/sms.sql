-- The schema gateways wrote before versioned migrations (kept to test upgrades).
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
