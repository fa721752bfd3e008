//! Strict RTP: whose packets a call accepts, and where (and how much) it sends.
//!
//! Without it any packet carrying the call's payload type re-points the media at its
//! sender, so whoever sprays the RTP port range hears the bot (and an agent on a
//! bridged call) and can speak or press keys in the call ("RTP bleed",
//! CVE-2017-14099). So the call latches on the first source that sends the negotiated
//! audio (its address and SSRC), or on the SDP's address, and from then on ignores
//! every other source; only a re-INVITE (new SDP) lets it latch again. A peer behind
//! NAT still works: its first packet is what latches.
//!
//! And a reflection guard: until the far end has shown it wants this media (its ACK,
//! or RTP from it), at most one second of audio goes to the address its SDP named, so
//! a spoofed INVITE cannot aim a call's audio at a victim.
//!
//! Sans-IO: the media task feeds it packets with `now` and asks it where to send.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Audio sent to an address that has neither ACKed nor sent RTP.
pub const UNPROVEN_BUDGET: Duration = Duration::from_secs(1);
/// A new SSRC from the latched address is taken once the old one has been quiet this
/// long (a PBX switching streams); sooner, it is someone spoofing the address.
pub const SSRC_QUIET: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Not the latched source: ignore and count.
    Foreign,
}

#[derive(Debug, Clone, Copy)]
struct Latched {
    addr: SocketAddr,
    /// None until the first audio packet (a DTMF packet from the SDP address may latch).
    ssrc: Option<u32>,
    last_audio: Option<Instant>,
}

#[derive(Debug, Clone)]
pub struct Latch {
    /// The SDP's address: where we send until latched.
    sdp: SocketAddr,
    latched: Option<Latched>,
    /// The dialog's ACK arrived (or we placed the call and were answered).
    acked: bool,
    /// Audio sent so far while nothing proved the far end wants it.
    unproven_sent: Duration,
}

impl Latch {
    pub fn new(sdp: SocketAddr) -> Self {
        Latch {
            sdp,
            latched: None,
            acked: false,
            unproven_sent: Duration::ZERO,
        }
    }

    /// A packet with one of the call's payload types: `audio` for the negotiated codec,
    /// false for telephone-event.
    pub fn on_packet(&mut self, now: Instant, from: SocketAddr, ssrc: u32, audio: bool) -> Verdict {
        let Some(l) = &mut self.latched else {
            if audio || from == self.sdp {
                self.latched = Some(Latched {
                    addr: from,
                    ssrc: audio.then_some(ssrc),
                    last_audio: audio.then_some(now),
                });
                return Verdict::Accept;
            }
            return Verdict::Foreign;
        };
        if from != l.addr {
            return Verdict::Foreign;
        }
        if !audio {
            // Some endpoints send telephone-event with an SSRC of its own.
            return Verdict::Accept;
        }
        let quiet = l
            .last_audio
            .is_none_or(|t| now.saturating_duration_since(t) >= SSRC_QUIET);
        match l.ssrc {
            Some(s) if s != ssrc && !quiet => Verdict::Foreign,
            _ => {
                l.ssrc = Some(ssrc);
                l.last_audio = Some(now);
                Verdict::Accept
            }
        }
    }

    /// A re-INVITE named a new media address: latch afresh.
    pub fn relatch(&mut self, sdp: SocketAddr) {
        self.sdp = sdp;
        self.latched = None;
        self.unproven_sent = Duration::ZERO;
    }

    /// The far end ACKed our answer (or answered our call).
    pub fn confirm(&mut self) {
        self.acked = true;
    }

    /// Where one packet of `duration` may go now; None: to nobody (the budget for an
    /// unproven address is spent).
    pub fn destination(&mut self, duration: Duration) -> Option<SocketAddr> {
        if let Some(l) = &self.latched {
            return Some(l.addr);
        }
        if self.acked {
            return Some(self.sdp);
        }
        if self.unproven_sent + duration > UNPROVEN_BUDGET {
            return None;
        }
        self.unproven_sent += duration;
        Some(self.sdp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const SDP: &str = "192.0.2.10:4000";
    const NAT: &str = "198.51.100.7:61000";
    const EVIL: &str = "203.0.113.66:4000";
    const MS20: Duration = Duration::from_millis(20);

    #[test]
    fn the_first_audio_source_latches_and_others_are_foreign() {
        let t0 = Instant::now();
        let mut l = Latch::new(addr(SDP));
        // Behind NAT the caller's packets come from elsewhere than its SDP said.
        assert_eq!(l.on_packet(t0, addr(NAT), 7, true), Verdict::Accept);
        assert_eq!(l.destination(MS20), Some(addr(NAT)));
        for i in 1..100u32 {
            let t = t0 + MS20 * i;
            assert_eq!(l.on_packet(t, addr(EVIL), 7, true), Verdict::Foreign);
            assert_eq!(l.on_packet(t, addr(EVIL), 9, false), Verdict::Foreign);
            assert_eq!(l.on_packet(t, addr(SDP), 7, true), Verdict::Foreign);
            assert_eq!(l.on_packet(t, addr(NAT), 7, true), Verdict::Accept);
        }
        assert_eq!(l.destination(MS20), Some(addr(NAT)), "never re-pointed");
    }

    #[test]
    fn a_second_ssrc_from_the_latched_address_waits_for_the_first_to_stop() {
        let t0 = Instant::now();
        let mut l = Latch::new(addr(SDP));
        assert_eq!(l.on_packet(t0, addr(SDP), 1, true), Verdict::Accept);
        assert_eq!(l.on_packet(t0 + MS20, addr(SDP), 2, true), Verdict::Foreign);
        // DTMF from the latched address is taken whatever its SSRC.
        assert_eq!(l.on_packet(t0 + MS20, addr(SDP), 3, false), Verdict::Accept);
        assert_eq!(
            l.on_packet(t0 + MS20 * 2, addr(SDP), 1, true),
            Verdict::Accept
        );
        // The first stream stopped: a new one from the same peer takes over.
        let later = t0 + MS20 * 2 + SSRC_QUIET;
        assert_eq!(l.on_packet(later, addr(SDP), 2, true), Verdict::Accept);
        assert_eq!(
            l.on_packet(later + MS20, addr(SDP), 1, true),
            Verdict::Foreign
        );
    }

    #[test]
    fn dtmf_latches_only_from_the_sdp_address() {
        let t0 = Instant::now();
        let mut l = Latch::new(addr(SDP));
        assert_eq!(l.on_packet(t0, addr(EVIL), 5, false), Verdict::Foreign);
        assert_eq!(l.on_packet(t0, addr(SDP), 5, false), Verdict::Accept);
        assert_eq!(l.on_packet(t0, addr(EVIL), 5, true), Verdict::Foreign);
        // The audio that follows, in its own SSRC, is the caller's.
        assert_eq!(l.on_packet(t0 + MS20, addr(SDP), 6, true), Verdict::Accept);
    }

    #[test]
    fn only_a_reinvite_latches_again() {
        let t0 = Instant::now();
        let mut l = Latch::new(addr(SDP));
        l.on_packet(t0, addr(SDP), 1, true);
        let moved = addr("192.0.2.20:5000");
        assert_eq!(l.on_packet(t0 + MS20, moved, 1, true), Verdict::Foreign);
        l.relatch(moved);
        assert_eq!(l.destination(MS20), Some(moved));
        assert_eq!(l.on_packet(t0 + MS20 * 2, moved, 1, true), Verdict::Accept);
        assert_eq!(
            l.on_packet(t0 + MS20 * 3, addr(SDP), 1, true),
            Verdict::Foreign
        );
    }

    #[test]
    fn an_unproven_address_gets_one_second_of_audio() {
        let t0 = Instant::now();
        let mut l = Latch::new(addr(SDP));
        let sent = (0..200).filter(|_| l.destination(MS20).is_some()).count();
        assert_eq!(sent, 50, "one second of 20 ms packets");
        // RTP from the far end proves it.
        l.on_packet(t0, addr(SDP), 1, true);
        assert_eq!(l.destination(MS20), Some(addr(SDP)));
        // So does an ACK, for a caller that never sends RTP.
        let mut quiet = Latch::new(addr(SDP));
        for _ in 0..60 {
            quiet.destination(MS20);
        }
        assert_eq!(quiet.destination(MS20), None);
        quiet.confirm();
        assert_eq!(quiet.destination(MS20), Some(addr(SDP)));
    }
}
