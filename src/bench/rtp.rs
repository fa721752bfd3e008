//! `voicebot bench rtp`: N calls' worth of RTP on loopback, both directions paced, for
//! a fixed time: CPU per call, memory per call, and how late packets left their
//! schedule (p99).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::audio::g711::Law;
use crate::media::MediaEvent;
use crate::rtp::session::{self, MediaParams, RtpCounters};

pub struct RtpReport {
    pub calls: usize,
    pub cpu_percent_per_call: f64,
    pub memory_kib_per_call: f64,
    pub pacing_p50: Duration,
    pub pacing_p99: Duration,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub lost: u64,
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

/// A leg's media; the gateway's side runs the echo gate, as a caller's leg does.
fn params(remote: std::net::SocketAddr, echo_gate: bool) -> MediaParams {
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
        echo_gate,
        echo_cancel: false,
    }
}

pub async fn run(calls: usize, secs: u64) -> std::io::Result<RtpReport> {
    let rss_before = rss_kib();
    let cancel = CancellationToken::new();
    let gateway = Arc::new(RtpCounters::default());
    let callers = Arc::new(RtpCounters::default());
    // A second of speech-like audio, queued over and over so every packet is real audio.
    let tone: Vec<i16> = (0..8000)
        .map(|i| ((i as f32 * 0.07).sin() * 6000.0) as i16)
        .collect();
    let mut handles = Vec::new();
    for _ in 0..calls {
        let a = UdpSocket::bind("127.0.0.1:0").await?;
        let b = UdpSocket::bind("127.0.0.1:0").await?;
        let (aa, ba) = (a.local_addr()?, b.local_addr()?);
        let (ga, mut gev) = session::start(a, params(ba, true), gateway.clone(), cancel.clone())?;
        let (cb, mut cev) = session::start(b, params(aa, false), callers.clone(), cancel.clone())?;
        handles.push((ga, cb));
        // Drain events as a call would (decoded audio is handed on every tick).
        let c = cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = c.cancelled() => return,
                    Some(MediaEvent::Audio(_)) | Some(_) = gev.recv() => {}
                    Some(_) = cev.recv() => {}
                }
            }
        });
    }
    // Memory of the sessions themselves, before any audio is queued on them.
    let rss_running = rss_kib();
    for (ga, cb) in &handles {
        for _ in 0..secs + 2 {
            ga.play(tone.clone());
            cb.play(tone.clone());
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
    })
}
