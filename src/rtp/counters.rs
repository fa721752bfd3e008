//! The RTP counters all calls share, and how late packets left their schedule. The
//! media tasks own the handles; `serve` registers them with the one registry via
//! [`RtpCounters::register`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use crate::ops::metrics::Metrics;

/// Counters shared across all calls; the same handles are registered as metrics.
#[derive(Debug)]
pub struct RtpCounters {
    pub received: Counter,
    pub sent: Counter,
    pub garbage: Counter,
    pub lost: Counter,
    pub late: Counter,
    /// Received frames dropped to shed a backlog (`rtp::jitter`).
    pub shed: Counter,
    /// Packets with the call's payload type from a source the call is not latched on.
    pub foreign: Counter,
    /// 20 ms frames muted as echo of our own audio.
    pub echo_muted: Counter,
    pub pacing: PacingHistogram,
    /// Each call's interarrival jitter (RFC 3550) when its media ends.
    pub jitter: Histogram,
}

impl Default for RtpCounters {
    fn default() -> Self {
        RtpCounters {
            received: Counter::default(),
            sent: Counter::default(),
            garbage: Counter::default(),
            lost: Counter::default(),
            late: Counter::default(),
            shed: Counter::default(),
            foreign: Counter::default(),
            echo_muted: Counter::default(),
            pacing: PacingHistogram::default(),
            // 0.5 ms to about 1 s.
            jitter: Histogram::new(exponential_buckets(0.0005, 2.0, 12)),
        }
    }
}

impl RtpCounters {
    pub fn register(&self, m: &mut Metrics) {
        m.counter(
            "voicebot_rtp_packets_received",
            "RTP packets received from callers",
            &self.received,
        );
        m.counter(
            "voicebot_rtp_packets_sent",
            "RTP packets sent to callers",
            &self.sent,
        );
        m.counter(
            "voicebot_rtp_packets_garbage",
            "Datagrams on RTP ports that were not our RTP",
            &self.garbage,
        );
        m.counter(
            "voicebot_rtp_echo_muted",
            "20 ms frames from callers muted as the bot's own voice coming back (echo)",
            &self.echo_muted,
        );
        m.counter(
            "voicebot_rtp_foreign",
            "RTP packets with a call's payload type from a source the call is not latched on",
            &self.foreign,
        );
        m.counter(
            "voicebot_rtp_packets_lost",
            "RTP packets never received (concealed)",
            &self.lost,
        );
        m.histogram(
            "voicebot_rtp_jitter_seconds",
            "Callers' interarrival jitter (RFC 3550), per call when its media ends",
            &self.jitter,
        );
        m.counter(
            "voicebot_rtp_frames_shed",
            "Received 20 ms frames dropped to shed a standing backlog after a network stall",
            &self.shed,
        );
        m.counter(
            "voicebot_rtp_packets_late",
            "RTP packets dropped as late or duplicate",
            &self.late,
        );
    }
}

/// How late each packet left against its schedule, in 50 µs buckets up to 50 ms.
#[derive(Debug)]
pub struct PacingHistogram {
    buckets: Vec<AtomicU64>,
}

const BUCKET_US: u64 = 50;

impl Default for PacingHistogram {
    fn default() -> Self {
        PacingHistogram {
            buckets: (0..=1000).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl PacingHistogram {
    pub fn record(&self, lateness: Duration) {
        let i = ((lateness.as_micros() as u64) / BUCKET_US).min(self.buckets.len() as u64 - 1);
        self.buckets[i as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The lateness below which a fraction `q` of packets left (bucket upper bound).
    pub fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let target = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target && total > 0 {
                return Duration::from_micros((i as u64 + 1) * BUCKET_US);
            }
        }
        Duration::ZERO
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}
