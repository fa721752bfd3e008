//! `[sms]`: the SMS sender (SMPP or HTTP) and the outbox's retries and retention.

use std::path::PathBuf;

use serde::Deserialize;

use super::data_dir;

/// `[sms]`: the answer's link by SMS, after the caller consents (see `sms`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// How messages leave the gateway. `none` (the default) turns SMS off: the bot never
    /// offers a link, because an SMS promised to a caller must be sendable.
    pub sender: SmsSenderKind,
    /// The outbox (SQLite); default: `$XDG_DATA_HOME/voicebot/sms.sqlite`, i.e.
    /// `~/.local/share/voicebot/sms.sqlite`.
    pub outbox: Option<PathBuf>,
    /// Sender shown on the phone: up to 11 letters/digits ("EksKommune") or a number.
    pub from: String,
    /// Country code for callers' numbers that arrive without one.
    pub default_country_code: String,
    /// Other country codes whose numbers may get an SMS. Only Danish numbers are known
    /// to be mobile or not; numbers in these countries are taken as mobile.
    pub foreign_country_codes: Vec<String>,
    /// SMS to one number within 24 hours, beyond which the bot stops offering them.
    pub per_number_limit: u32,
    /// Take the caller's number from `From` when a trusted peer sent no usable
    /// P-Asserted-Identity (a PBX that only sets From). False: only an identity a
    /// trusted peer asserts gets an SMS; From is whatever the caller wrote.
    pub trust_from: bool,
    /// Submission attempts before a message is given up as failed.
    pub max_attempts: u32,
    /// Finished messages (sent, delivered, failed) are deleted, number and text
    /// included, this many days after their last update.
    pub retention_days: u32,
    /// Wait after the first failed attempt; it doubles per attempt up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    pub smpp: SmppConfig,
    pub http: SmsHttpConfig,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            sender: SmsSenderKind::None,
            outbox: None,
            from: "EksKommune".into(),
            default_country_code: "45".into(),
            foreign_country_codes: Vec::new(),
            per_number_limit: 5,
            trust_from: false,
            max_attempts: 10,
            retention_days: 30,
            retry_initial_ms: 10_000,
            retry_max_ms: 900_000,
            smpp: SmppConfig::default(),
            http: SmsHttpConfig::default(),
        }
    }
}

impl SmsConfig {
    /// `outbox`, or the platform's data directory.
    pub fn outbox_path(&self) -> PathBuf {
        self.outbox
            .clone()
            .unwrap_or_else(|| data_dir().join("voicebot/sms.sqlite"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsSenderKind {
    None,
    Smpp,
    Http,
}

/// `[sms.smpp]`: an SMSC spoken to as an SMPP 3.4 transceiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmppConfig {
    pub host: String,
    pub port: u16,
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    /// Keepalive; a link that does not answer is dropped and bound again.
    pub enquire_link_secs: u64,
    /// Wait for a response to bind or submit_sm before it counts as failed.
    pub response_timeout_ms: u64,
}

impl Default for SmppConfig {
    fn default() -> Self {
        SmppConfig {
            host: "127.0.0.1".into(),
            port: 2775,
            system_id: "voicebot".into(),
            password: String::new(),
            system_type: String::new(),
            enquire_link_secs: 30,
            response_timeout_ms: 5_000,
        }
    }
}

/// `[sms.http]`: a provider's HTTP API taking one JSON message per POST.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsHttpConfig {
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`; empty sends no such header.
    pub token: String,
    pub timeout_ms: u64,
}

impl Default for SmsHttpConfig {
    fn default() -> Self {
        SmsHttpConfig {
            url: "http://127.0.0.1:8025/sms".into(),
            token: String::new(),
            timeout_ms: 5_000,
        }
    }
}
