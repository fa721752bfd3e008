//! A call's turn metrics (`voicebot_turn_*_seconds`, intent hits, calls by outcome),
//! shared by every call's driver and registered by the gateway.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::ops::metrics::latency_histogram;

/// Where a turn's time goes, as histograms (`voicebot_turn_*_seconds`).
#[derive(Clone)]
pub struct TurnMetrics {
    /// Caller's speech end detected → first reply audio queued.
    pub reply: Histogram,
    pub recognition: Histogram,
    pub recognizer_queue: Histogram,
    pub intent: Histogram,
    pub barge_ins: Counter,
    pub turns: Counter,
    /// `voicebot_calls_total{outcome}`, counted when a call ends.
    pub calls: CallCounters,
    /// `voicebot_intent_hits_total{intent,topic}`, per resolved turn.
    pub intent_hits: LabelledCounters,
    pub clarify: Counter,
    /// Turns understood as out of scope.
    pub no_match: Counter,
    pub intent_errors: Counter,
    pub dtmf: Counter,
}

/// A counter per label set, e.g. `{intent="pas.nyt",topic="pas"}`.
pub type LabelledCounters =
    prometheus_client::metrics::family::Family<Vec<(&'static str, String)>, Counter>;

pub type CallCounters =
    prometheus_client::metrics::family::Family<Vec<(&'static str, &'static str)>, Counter>;

impl Default for TurnMetrics {
    fn default() -> Self {
        TurnMetrics {
            reply: latency_histogram(),
            recognition: latency_histogram(),
            recognizer_queue: latency_histogram(),
            intent: latency_histogram(),
            barge_ins: Counter::default(),
            turns: Counter::default(),
            calls: CallCounters::default(),
            intent_hits: LabelledCounters::default(),
            clarify: Counter::default(),
            no_match: Counter::default(),
            intent_errors: Counter::default(),
            dtmf: Counter::default(),
        }
    }
}
