//! A call's turn metrics (`voicebot_turn_*_seconds`, intent hits, calls by outcome),
//! shared by every call's driver and registered by this module.
//!
//! The headline is the answer time: from the caller's last voiced frame to the first
//! packet of the answer itself (not a filler) on the wire, split into the parts that
//! add up to it: endpointing (silence until the turn is taken as over, plus the jitter
//! buffer), waiting for the transcript after that, intent, and answer audio to the wire.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::ops::metrics::{latency_histogram, Metrics};

/// Turns kept for `recent` (the bench reads them; a few hundred KB at most).
const RECENT_TURNS: usize = 10_000;

/// Where a turn's time goes, as histograms (`voicebot_turn_*_seconds`).
#[derive(Clone)]
pub struct TurnMetrics {
    /// Caller's speech end detected → first reply audio queued.
    pub reply: Histogram,
    pub answer: Histogram,
    pub endpointing: Histogram,
    pub recognition_wait: Histogram,
    pub first_packet: Histogram,
    pub recognition: Histogram,
    pub recognizer_queue: Histogram,
    pub intent: Histogram,
    /// Turns whose transcript came from a decode started at a pause.
    pub partial_used: Counter,
    pub barge_ins: Counter,
    pub turns: Counter,
    /// `voicebot_calls_total{outcome,tenant}`, counted when a call ends.
    pub calls: CallCounters,
    /// `voicebot_intent_hits_total{intent,topic,tenant}`, per resolved turn.
    pub intent_hits: LabelledCounters,
    pub clarify: Counter,
    /// Turns understood as out of scope.
    pub no_match: Counter,
    pub intent_errors: Counter,
    pub dtmf: Counter,
    recent: Arc<Mutex<VecDeque<TurnTiming>>>,
}

/// A counter per label set, e.g. `{intent="pas.nyt",topic="pas"}`.
pub type LabelledCounters =
    prometheus_client::metrics::family::Family<Vec<(&'static str, String)>, Counter>;

/// `{outcome="resolved",tenant="default"}`: the tenant is a name from the config.
pub type CallCounters = LabelledCounters;

/// One answered turn, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnTiming {
    pub answer: f64,
    pub endpointing: f64,
    pub recognition_wait: f64,
    pub intent: f64,
    pub first_packet: f64,
    pub partial: bool,
}

/// One turn in progress, from the utterance's end until its answer is on the wire.
#[derive(Debug, Clone)]
pub struct TurnClock {
    last_voice: Instant,
    ended: Instant,
    heard: Option<Instant>,
    resolved: Option<Instant>,
    intent: Duration,
    partial: bool,
    /// The playback item that answers this turn, once queued.
    pub answer_item: Option<u64>,
}

impl TurnClock {
    /// The utterance was taken as over at `now`, after `endpointing` of silence and
    /// buffering since the caller's last voiced frame.
    pub fn start(now: Instant, endpointing: Duration) -> Self {
        TurnClock {
            last_voice: now.checked_sub(endpointing).unwrap_or(now),
            ended: now,
            heard: None,
            resolved: None,
            intent: Duration::ZERO,
            partial: false,
            answer_item: None,
        }
    }

    pub fn heard(&mut self, now: Instant, from_partial: bool) {
        self.heard.get_or_insert(now);
        self.partial = from_partial;
    }

    pub fn resolved(&mut self, now: Instant, took: Duration) {
        self.resolved.get_or_insert(now);
        self.intent = took;
    }

    /// The answer's first packet left at `now`.
    pub fn finish(&self, now: Instant) -> TurnTiming {
        let secs = |d: Duration| d.as_secs_f64();
        let heard = self.heard.unwrap_or(self.ended);
        let decided = self.resolved.unwrap_or(heard);
        TurnTiming {
            answer: secs(now.saturating_duration_since(self.last_voice)),
            endpointing: secs(self.ended - self.last_voice),
            recognition_wait: secs(heard.saturating_duration_since(self.ended)),
            intent: secs(self.intent),
            first_packet: secs(now.saturating_duration_since(decided)),
            partial: self.partial,
        }
    }
}

impl TurnMetrics {
    pub fn observe(&self, t: &TurnTiming) {
        self.answer.observe(t.answer);
        self.endpointing.observe(t.endpointing);
        self.recognition_wait.observe(t.recognition_wait);
        self.first_packet.observe(t.first_packet);
        if t.partial {
            self.partial_used.inc();
        }
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_TURNS {
            recent.pop_front();
        }
        recent.push_back(*t);
    }

    /// The last answered turns, oldest first.
    pub fn recent(&self) -> Vec<TurnTiming> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().copied().collect()
    }

    pub fn register(&self, m: &mut Metrics) {
        let histograms = [
            (
                "voicebot_turn_answer_seconds",
                "Caller's last voiced frame to the first packet of the answer on the wire",
                &self.answer,
            ),
            (
                "voicebot_turn_endpointing_seconds",
                "Caller's last voiced frame to the turn taken as over (silence + jitter buffer)",
                &self.endpointing,
            ),
            (
                "voicebot_turn_recognition_wait_seconds",
                "Turn taken as over to its transcript (0 when a decode at a pause was ready)",
                &self.recognition_wait,
            ),
            (
                "voicebot_turn_first_packet_seconds",
                "Reply decided to the answer's first packet on the wire (synthesis, queue)",
                &self.first_packet,
            ),
            (
                "voicebot_turn_reply_seconds",
                "Caller's speech end detected to first reply audio queued",
                &self.reply,
            ),
            (
                "voicebot_turn_recognition_seconds",
                "Whisper decoding time per utterance",
                &self.recognition,
            ),
            (
                "voicebot_turn_recognizer_queue_seconds",
                "Time an utterance waited for a recognizer worker",
                &self.recognizer_queue,
            ),
            (
                "voicebot_turn_intent_seconds",
                "Intent resolution time",
                &self.intent,
            ),
        ];
        for (name, help, h) in histograms {
            m.histogram(name, help, h);
        }
        let counters = [
            (
                "voicebot_turn_partial_used",
                "Turns whose transcript came from a decode started at a pause",
                &self.partial_used,
            ),
            (
                "voicebot_barge_ins",
                "Times a caller interrupted the bot",
                &self.barge_ins,
            ),
            (
                "voicebot_turns",
                "Caller utterances taken as turns",
                &self.turns,
            ),
            (
                "voicebot_intent_clarify",
                "Turns answered with a clarifying or confirming question",
                &self.clarify,
            ),
            (
                "voicebot_intent_no_match",
                "Turns the intent service found out of scope",
                &self.no_match,
            ),
            (
                "voicebot_intent_errors",
                "Intent resolutions that failed (service down, deadline passed)",
                &self.intent_errors,
            ),
            ("voicebot_dtmf", "DTMF keys pressed by callers", &self.dtmf),
        ];
        for (name, help, c) in counters {
            m.counter(name, help, c);
        }
        m.register(
            "voicebot_calls",
            "Calls ended, by outcome and tenant",
            self.calls.clone(),
        );
        m.register(
            "voicebot_intent_hits",
            "Turns resolved, by intent, topic and tenant",
            self.intent_hits.clone(),
        );
    }
}

impl Default for TurnMetrics {
    fn default() -> Self {
        TurnMetrics {
            reply: latency_histogram(),
            answer: latency_histogram(),
            endpointing: latency_histogram(),
            recognition_wait: latency_histogram(),
            first_packet: latency_histogram(),
            recognition: latency_histogram(),
            recognizer_queue: latency_histogram(),
            intent: latency_histogram(),
            partial_used: Counter::default(),
            barge_ins: Counter::default(),
            turns: Counter::default(),
            calls: CallCounters::default(),
            intent_hits: LabelledCounters::default(),
            clarify: Counter::default(),
            no_match: Counter::default(),
            intent_errors: Counter::default(),
            dtmf: Counter::default(),
            recent: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_of_a_turn_add_up_to_its_answer_time() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut clock = TurnClock::start(t0 + ms(460), ms(460));
        clock.heard(t0 + ms(1200), false);
        clock.resolved(t0 + ms(1210), ms(10));
        let t = clock.finish(t0 + ms(1250));
        assert!((t.answer - 1.25).abs() < 1e-9, "{t:?}");
        assert!((t.endpointing - 0.46).abs() < 1e-9);
        assert!((t.recognition_wait - 0.74).abs() < 1e-9);
        assert!((t.first_packet - 0.04).abs() < 1e-9);
        let parts = t.endpointing + t.recognition_wait + t.intent + t.first_packet;
        assert!((parts - t.answer).abs() < 1e-9, "{t:?}");

        let metrics = TurnMetrics::default();
        metrics.observe(&t);
        assert_eq!(metrics.recent(), vec![t]);
    }

    #[test]
    fn a_transcript_ready_at_the_end_waits_nothing() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut clock = TurnClock::start(t0, ms(260));
        // Heard from a partial the moment the turn ended.
        clock.heard(t0, true);
        let t = clock.finish(t0 + ms(5));
        assert_eq!(t.recognition_wait, 0.0);
        assert!(t.partial);
    }
}
