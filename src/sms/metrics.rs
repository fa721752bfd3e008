//! The SMS counters. The outbox task and [`super::Sms`] own the handles; `serve`
//! registers the same handles with the one registry via [`SmsMetrics::register`].

use prometheus_client::metrics::counter::Counter;

use crate::ops::metrics::Metrics;

#[derive(Debug, Clone, Default)]
pub struct SmsMetrics {
    pub enqueued: Counter,
    pub submitted: Counter,
    pub delivered: Counter,
    pub failed: Counter,
    pub retried: Counter,
    pub refused: Counter,
}

impl SmsMetrics {
    pub fn register(&self, m: &mut Metrics) {
        m.counter(
            "voicebot_sms_enqueued",
            "SMS queued after the caller consented",
            &self.enqueued,
        );
        m.counter(
            "voicebot_sms_submitted",
            "SMS accepted by the SMSC or provider",
            &self.submitted,
        );
        m.counter(
            "voicebot_sms_delivered",
            "SMS the SMSC reported delivered to the phone",
            &self.delivered,
        );
        m.counter(
            "voicebot_sms_failed",
            "SMS given up: refused, out of attempts, or reported undeliverable",
            &self.failed,
        );
        m.counter(
            "voicebot_sms_retried",
            "Submission attempts that failed and were scheduled again",
            &self.retried,
        );
        m.counter(
            "voicebot_sms_refused",
            "SMS not offered or not queued: not a mobile, or over the per-number limit",
            &self.refused,
        );
    }
}
