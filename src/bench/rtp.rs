//! `voicebot bench rtp`: N calls' worth of RTP on loopback, both directions paced, for
//! a fixed time: CPU per call, memory per call, and how late packets left their
//! schedule (p99). The gateway's side speaks (the greeting, over and over); the
//! caller's side is a line with echo, sending that back 40 ms later and 10 dB down, so
//! the gateway's echo gate and canceller do the work they do on such a call. Both ends
//! run in this process: the CPU figure is the two sides' together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::audio::g711::Law;
use crate::caller::{Echo, EchoingMic};
use crate::media::MediaEvent;
use crate::rtp::counters::RtpCounters;
use crate::rtp::session::{self, MediaParams};

/// What the gateway's side does about its own voice coming back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoHandling {
    Nothing,
    /// `[rtp] echo_suppression`
    Gate,
    /// `[rtp] echo_cancellation` too
    Cancel,
}

impl EchoHandling {
    pub const ALL: [EchoHandling; 3] = [Self::Nothing, Self::Gate, Self::Cancel];

    pub fn describe(self) -> &'static str {
        match self {
            Self::Nothing => "none",
            Self::Gate => "gate",
            Self::Cancel => "gate + canceller",
        }
    }
}

pub struct RtpReport {
    pub calls: usize,
    pub cpu_percent_per_call: f64,
    pub memory_kib_per_call: f64,
    pub pacing_p50: Duration,
    pub pacing_p99: Duration,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub lost: u64,
    /// Frames the gateway heard and muted as its own echo.
    pub echo_muted: u64,
}

/// Process CPU time (user + system) from /proc/self/stat, in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: utime is field 14, stime 15 (1-based) → 11, 12 here.
    (ticks(11) + ticks(12)) / 100.0
}

pub fn rss_kib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn params(remote: std::net::SocketAddr, echo: EchoHandling) -> MediaParams {
    MediaParams {
        law: Law::Alaw,
        payload_type: 8,
        dtmf_payload_type: Some(101),
        remote,
        ptime_ms: 20,
        jitter_ms: 60,
        timeout: Duration::from_secs(600),
        sending: true,
        srtp: None,
        echo_gate: echo != EchoHandling::Nothing,
        echo_cancel: echo == EchoHandling::Cancel,
    }
}

pub async fn run(calls: usize, secs: u64, echo: EchoHandling) -> anyhow::Result<RtpReport> {
    let speech = crate::audio::wav::read_at(&super::fixtures::dir().join("greeting-da.wav"), 8000)?;
    let rss_before = rss_kib();
    let cancel = CancellationToken::new();
    let gateway = Arc::new(RtpCounters::default());
    let callers = Arc::new(RtpCounters::default());
    let line = Echo {
        delay_ms: 40,
        gain_db: -10.0,
    };
    let mut handles = Vec::new();
    for _ in 0..calls {
        let a = UdpSocket::bind("127.0.0.1:0").await?;
        let b = UdpSocket::bind("127.0.0.1:0").await?;
        let (aa, ba) = (a.local_addr()?, b.local_addr()?);
        let (ga, mut gev) = session::start(a, params(ba, echo), gateway.clone(), cancel.clone())?;
        let (cb, mut cev) = session::start(
            b,
            params(aa, EchoHandling::Nothing),
            callers.clone(),
            cancel.clone(),
        )?;
        // Two frames ahead, as `voicebot call --echo-ms` does: a frame heard late does
        // not leave a gap in what the line sends back.
        cb.play(vec![0; 2 * 160]);
        let mut mic = EchoingMic::new(Vec::new(), line);
        // Drain the gateway's events as a call would (decoded audio is handed on every
        // tick); the caller's side sends back each frame it hears.
        let c = cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = c.cancelled() => return,
                    Some(_) = gev.recv() => {}
                    Some(ev) = cev.recv() => if let MediaEvent::Audio(pcm) = ev {
                        cb.play(mic.next(&pcm));
                    },
                }
            }
        });
        handles.push(ga);
    }
    // Memory of the sessions themselves, before any audio is queued on them.
    let rss_running = rss_kib();
    let seconds = speech.len() as u64 / 8000;
    for ga in &handles {
        for _ in 0..(secs + 2).div_ceil(seconds.max(1)) {
            ga.play(speech.clone());
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cpu = cpu_secs() - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    cancel.cancel();
    Ok(RtpReport {
        calls,
        cpu_percent_per_call: 100.0 * cpu / wall / calls as f64,
        memory_kib_per_call: (rss_running - rss_before) / calls as f64,
        pacing_p50: gateway.pacing.quantile(0.5),
        pacing_p99: gateway.pacing.quantile(0.99),
        packets_sent: gateway.sent.get(),
        packets_received: gateway.received.get(),
        lost: gateway.lost.get(),
        echo_muted: gateway.echo_muted.get(),
    })
}
