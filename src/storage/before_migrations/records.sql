-- The schema gateways wrote before versioned migrations (kept to test upgrades).
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
