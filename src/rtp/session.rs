//! One call's media: a UDP socket, the jitter buffer, G.711, DTMF, and a paced sender.
//!
//! A single task per call wakes on each packet and on a drift-free packet clock
//! (`interval_at`: tick n is due at start + n·ptime, however late tick n−1 ran). Each
//! tick plays one packet's worth of received audio out of the jitter buffer to the
//! call, and sends one packet of whatever the call queued (or silence, which keeps
//! NAT bindings and the far end's media timers alive). Whose packets count and where
//! we send is `latch`'s (strict RTP): the first source of the call's audio, which may
//! be another address than the SDP said (NAT), and nobody else.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

use super::arrival::ArrivalJitter;
use super::counters::RtpCounters;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::dtmf::{digit_to_event, DtmfDetector, EventPayload};
use super::jitter::{JitterBuffer, Playout};
use super::latch::{Latch, Verdict};
use super::srtp::SrtpSession;
use crate::audio::echo::EchoGate;
use crate::audio::g711::Law;
use crate::audio::wav;
use crate::media::{self, Command, Held, LineEcho, MediaEvent, MediaHandle, Outgoing};
use crate::sip::sdp::Srtp;

#[derive(Debug, Clone, Copy)]
pub struct MediaParams {
    pub law: Law,
    pub payload_type: u8,
    pub dtmf_payload_type: Option<u8>,
    pub remote: SocketAddr,
    /// Packet time we send with.
    pub ptime_ms: u32,
    pub jitter_ms: u32,
    pub timeout: Duration,
    pub sending: bool,
    /// SDES keys: the call's packets are SRTP both ways.
    pub srtp: Option<Srtp>,
    /// Mute what is only our own audio coming back (`audio::echo`): on a caller's leg
    /// the bot's voice must not barge in on itself.
    pub echo_gate: bool,
    /// With the gate: subtract the echo first (`audio::echo::canceller`).
    pub echo_cancel: bool,
}

/// Binds a UDP socket on the first free port of the range (even ports, RTP convention).
pub async fn bind_in_range(ip: std::net::IpAddr, range: (u16, u16)) -> std::io::Result<UdpSocket> {
    let span = (range.1 - range.0) as u32 + 1;
    let offset = rand::random::<u32>() % span;
    for i in 0..span {
        let port = range.0 as u32 + (offset + i) % span;
        if port % 2 == 1 {
            continue;
        }
        if let Ok(sock) = UdpSocket::bind(SocketAddr::new(ip, port as u16)).await {
            return Ok(sock);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free RTP port in {}-{}", range.0, range.1),
    ))
}

pub fn start(
    socket: UdpSocket,
    params: MediaParams,
    counters: Arc<RtpCounters>,
    cancel: CancellationToken,
) -> std::io::Result<(MediaHandle, mpsc::UnboundedReceiver<MediaEvent>)> {
    let local = socket.local_addr()?;
    let srtp = params
        .srtp
        .map(|keys| SrtpSession::new(&keys))
        .transpose()
        .map_err(std::io::Error::other)?;
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (handle, ends) = media::handle(local, ev_tx.clone());
    let mut task = MediaTask::new(socket, params, counters, ev_tx, ends.outgoing);
    task.srtp = srtp;
    task.held = ends.held;
    tokio::spawn(task.run(ends.commands, cancel));
    Ok((handle, ev_rx))
}

struct MediaTask {
    socket: UdpSocket,
    p: MediaParams,
    counters: Arc<RtpCounters>,
    events: mpsc::UnboundedSender<MediaEvent>,
    jitter: JitterBuffer,
    dtmf_in: DtmfDetector,
    outgoing: Outgoing,
    dtmf_out: VecDeque<(char, u32)>,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    talkspurt: bool,
    last_rx: Instant,
    arrival: ArrivalJitter,
    latch: Latch,
    srtp: Option<SrtpSession>,
    /// A foreign source was logged for this call (once is enough).
    foreign_logged: bool,
    timed_out: bool,
    owed_samples: i64,
    last_frame_len: usize,
    echo: Option<EchoGate>,
    /// The call was told the echo gate judged the line (`LineEcho`).
    echo_judged: bool,
    held: Held,
}

const SAMPLES_PER_MS: usize = 8;
/// A received frame quieter than this (RMS, about −40 dBFS, under the caller's
/// speech) may be shed unheard when the jitter buffer holds a backlog.
const QUIET_LEVEL: f32 = 0.01;
/// A sent DTMF digit lasts this many packets, then three end packets.
const DTMF_PACKETS: u32 = 5;

impl MediaTask {
    fn new(
        socket: UdpSocket,
        p: MediaParams,
        counters: Arc<RtpCounters>,
        events: mpsc::UnboundedSender<MediaEvent>,
        outgoing: Outgoing,
    ) -> Self {
        let depth = (p.jitter_ms / p.ptime_ms.max(10)).max(1) as usize;
        MediaTask {
            socket,
            p,
            counters,
            events,
            jitter: JitterBuffer::new(depth, 8000),
            dtmf_in: DtmfDetector::default(),
            outgoing,
            dtmf_out: VecDeque::new(),
            ssrc: rand::random(),
            seq: rand::random(),
            timestamp: rand::random(),
            talkspurt: true,
            last_rx: Instant::now(),
            arrival: ArrivalJitter::default(),
            latch: Latch::new(p.remote),
            srtp: None,
            foreign_logged: false,
            timed_out: false,
            owed_samples: 0,
            last_frame_len: 160,
            echo: p
                .echo_gate
                .then(|| EchoGate::new(p.ptime_ms as usize * SAMPLES_PER_MS, p.echo_cancel)),
            echo_judged: false,
            held: Held::default(),
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        cancel: CancellationToken,
    ) {
        let period = Duration::from_millis(self.p.ptime_ms as u64);
        let mut clock = interval_at(Instant::now() + period, period);
        // Burst: a late tick is followed by catch-up ticks, so the send rate never drifts.
        clock.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut buf = vec![0u8; 2048];
        self.tell_echo_judging();
        self.forward(&mut commands, &cancel, &mut clock, &mut buf)
            .await;
        if let Some(secs) = self.arrival.seconds() {
            self.counters.jitter.observe(secs);
        }
    }

    async fn forward(
        &mut self,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        cancel: &CancellationToken,
        clock: &mut tokio::time::Interval,
        buf: &mut [u8],
    ) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                due = clock.tick() => {
                    self.counters.pacing.record(Instant::now().saturating_duration_since(due));
                    self.on_tick(due).await;
                }
                cmd = commands.recv() => match cmd {
                    Some(c) => self.on_command(c),
                    None => return,
                },
                r = self.socket.recv_from(buf) => match r {
                    Ok((n, from)) => self.on_datagram(&buf[..n], from),
                    Err(e) => tracing::debug!(error = %e, "rtp recv error"),
                },
            }
        }
    }

    /// A new echo gate has yet to judge the line.
    fn tell_echo_judging(&mut self) {
        self.echo_judged = false;
        if self.echo.is_some() {
            self.events.send(MediaEvent::Echo(LineEcho::Judging)).ok();
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Play(pcm, mark) => self.outgoing.push(pcm, mark),
            Command::StopPlayback => self.outgoing.clear(),
            Command::Dtmf(d) => {
                if digit_to_event(d).is_some() {
                    self.dtmf_out.push_back((d, 0));
                }
            }
            Command::Update { remote, sending } => {
                if remote != self.p.remote {
                    self.latch.relatch(remote);
                }
                self.p.remote = remote;
                self.p.sending = sending;
            }
            Command::Confirm => self.latch.confirm(),
            Command::EchoGate(on) => {
                let frame = self.p.ptime_ms as usize * SAMPLES_PER_MS;
                self.echo =
                    (on && self.p.echo_gate).then(|| EchoGate::new(frame, self.p.echo_cancel));
                self.tell_echo_judging();
            }
        }
    }

    fn on_datagram(&mut self, data: &[u8], from: SocketAddr) {
        if self.srtp.is_none() {
            return self.on_packet(data, from, None);
        }
        // The header is in clear: the latch may refuse the packet before any crypto,
        // and only one that authenticates may latch or count.
        let Some(header) = RtpReader::new(data).ok().filter(|p| self.is_ours(p)) else {
            self.counters.garbage.inc();
            return;
        };
        let mut latch = self.latch.clone();
        let audio = header.payload_type() == self.p.payload_type;
        if latch.on_packet(Instant::now().into_std(), from, header.ssrc(), audio)
            == Verdict::Foreign
        {
            return self.foreign(from);
        }
        match self.srtp.as_mut().and_then(|s| s.unprotect(data)) {
            Some(plain) => self.on_packet(&plain, from, Some(latch)),
            None => {
                self.counters.garbage.inc();
            }
        }
    }

    fn is_ours(&self, pkt: &RtpReader) -> bool {
        let pt = pkt.payload_type();
        pt == self.p.payload_type || Some(pt) == self.p.dtmf_payload_type
    }

    fn foreign(&mut self, from: SocketAddr) {
        self.counters.foreign.inc();
        if !self.foreign_logged {
            self.foreign_logged = true;
            tracing::warn!(%from, sdp = %self.p.remote, "RTP from a source this call is not latched on: ignored");
        }
    }

    /// A plain RTP packet; `latched`: the latch as it is with this packet taken
    /// (SRTP, already checked), None to ask the latch now.
    fn on_packet(&mut self, data: &[u8], from: SocketAddr, latched: Option<Latch>) {
        let Some(pkt) = RtpReader::new(data).ok().filter(|p| self.is_ours(p)) else {
            self.counters.garbage.inc();
            return;
        };
        let pt = pkt.payload_type();
        let now = Instant::now();
        let audio = pt == self.p.payload_type;
        if let Some(latch) = latched {
            self.latch = latch;
        } else if self
            .latch
            .on_packet(now.into_std(), from, pkt.ssrc(), audio)
            == Verdict::Foreign
        {
            return self.foreign(from);
        }
        self.counters.received.inc();
        self.last_rx = now;
        self.timed_out = false;
        if Some(pt) == self.p.dtmf_payload_type {
            if let Some(d) = self.dtmf_in.on_packet(pkt.timestamp(), pkt.payload()) {
                self.events.send(MediaEvent::Dtmf(d)).ok();
            }
            return;
        }
        self.arrival
            .on_packet(self.last_rx.into_std(), pkt.timestamp());
        let before = self.jitter.stats();
        self.jitter.push(
            self.last_rx.into_std(),
            u16::from(pkt.sequence_number()),
            pkt.timestamp(),
            pkt.payload().to_vec(),
        );
        let after = self.jitter.stats();
        self.counters.late.inc_by(after.late - before.late);
    }

    async fn on_tick(&mut self, now: Instant) {
        self.play_out_received();
        self.send_one().await;
        if !self.timed_out && now.saturating_duration_since(self.last_rx) >= self.p.timeout {
            self.timed_out = true;
            self.events.send(MediaEvent::Timeout).ok();
        }
    }

    fn play_out_received(&mut self) {
        self.owed_samples += (self.p.ptime_ms as usize * SAMPLES_PER_MS) as i64;
        let mut pcm = Vec::new();
        let (shed, shedding) = (self.jitter.stats().shed, self.jitter.shedding());
        let law = self.p.law;
        let quiet = |payload: &[u8]| {
            let mut frame = Vec::with_capacity(payload.len());
            law.decode_into(payload, &mut frame);
            wav::level(&frame) < QUIET_LEVEL
        };
        while self.owed_samples > 0 {
            match self.jitter.pop(quiet) {
                Playout::Frame { payload, .. } => {
                    self.last_frame_len = payload.len().max(1);
                    self.owed_samples -= payload.len() as i64;
                    self.p.law.decode_into(&payload, &mut pcm);
                }
                Playout::Concealed { .. } => {
                    self.counters.lost.inc();
                    self.owed_samples -= self.last_frame_len as i64;
                    // Silence conceals without the buzz a repeated frame gives on speech.
                    pcm.extend(std::iter::repeat_n(0i16, self.last_frame_len));
                }
                Playout::Empty => {
                    self.owed_samples = 0;
                }
            }
        }
        if let Some(arrived) = self.jitter.take_played_arrival() {
            self.held
                .set(std::time::Instant::now().saturating_duration_since(arrived));
        }
        let shed_now = self.jitter.stats().shed - shed;
        self.counters.shed.inc_by(shed_now);
        if shedding == 0 && self.jitter.shedding() > 0 {
            tracing::info!(
                frames = self.jitter.shedding() + shed_now,
                "received audio held a backlog (a network stall's burst): shedding it"
            );
        }
        if let Some(gate) = self.echo.as_mut() {
            let (before, knew) = (gate.muted(), gate.path().is_some());
            if pcm.is_empty() {
                gate.heard_nothing();
            } else {
                pcm = gate.heard(&pcm);
            }
            self.counters.echo_muted.inc_by(gate.muted() - before);
            if !knew && gate.path().is_some() {
                self.events.send(MediaEvent::Echo(LineEcho::Learnt)).ok();
                self.echo_judged = true;
            } else if gate.judged() && !self.echo_judged {
                // (Judged when a frame went out: told with the next heard.)
                self.events.send(MediaEvent::Echo(LineEcho::None)).ok();
                self.echo_judged = true;
            }
        }
        if !pcm.is_empty() {
            self.events.send(MediaEvent::Audio(pcm)).ok();
        }
    }

    async fn send_one(&mut self) {
        let samples = self.p.ptime_ms as usize * SAMPLES_PER_MS;
        let step = samples as u32;
        if let (Some((digit, sent)), Some(pt)) =
            (self.dtmf_out.front().copied(), self.p.dtmf_payload_type)
        {
            let end = sent >= DTMF_PACKETS;
            let ev = EventPayload {
                event: digit_to_event(digit).unwrap_or(0),
                end,
                volume: 10,
                duration: ((sent.min(DTMF_PACKETS) + 1) * step) as u16,
            };
            if let Some(gate) = self.echo.as_mut() {
                // A digit goes out as events, not audio: silence on the line.
                gate.sent(&[]);
            }
            let packet = self.build(pt, sent == 0, &ev.to_bytes());
            self.transmit(packet).await;
            if sent >= DTMF_PACKETS + 2 {
                self.dtmf_out.pop_front();
                self.timestamp = self.timestamp.wrapping_add(step * (DTMF_PACKETS + 1));
            } else if let Some(front) = self.dtmf_out.front_mut() {
                front.1 += 1;
            }
            return;
        }
        let (frame, had_audio) = self.outgoing.next_frame(samples);
        if let Some(gate) = self.echo.as_mut() {
            gate.sent(&frame);
        }
        let mut payload = Vec::with_capacity(samples);
        self.p.law.encode_into(&frame, &mut payload);
        let marker = self.talkspurt && had_audio;
        // The next audio after a gap starts a new talk spurt (marker bit).
        self.talkspurt = !had_audio;
        let packet = self.build(self.p.payload_type, marker, &payload);
        self.transmit(packet).await;
        self.timestamp = self.timestamp.wrapping_add(step);
    }

    fn build(&mut self, pt: u8, marker: bool, payload: &[u8]) -> Option<Vec<u8>> {
        let packet = RtpPacketBuilder::new()
            .payload_type(pt)
            .ssrc(self.ssrc)
            .sequence(Seq::from(self.seq))
            .timestamp(self.timestamp)
            .marked(marker)
            .payload(payload)
            .build()
            .ok();
        self.seq = self.seq.wrapping_add(1);
        packet
    }

    async fn transmit(&mut self, packet: Option<Vec<u8>>) {
        let Some(mut packet) = packet else { return };
        if !self.p.sending {
            return;
        }
        if let Some(srtp) = &mut self.srtp {
            let Some(sealed) = srtp.protect(&packet) else {
                return;
            };
            packet = sealed;
        }
        let ptime = Duration::from_millis(self.p.ptime_ms.into());
        let Some(to) = self.latch.destination(ptime) else {
            return;
        };
        if to.ip().is_unspecified() {
            return;
        }
        if self.socket.send_to(&packet, to).await.is_ok() {
            self.counters.sent.inc();
        }
    }
}

#[cfg(test)]
mod tests;
