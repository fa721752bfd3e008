//! SRTP (RFC 3711) for a call whose keys came by SDES: one context that encrypts what
//! we send, one that authenticates and decrypts what arrives. The crypto is webrtc-rs's
//! `webrtc-srtp` (already built for web callers; reached through `webrtc`'s re-export).
//!
//! Sans-IO: packets in, packets out.

use webrtc::srtp::context::Context;
use webrtc::srtp::option::srtp_replay_protection;
use webrtc::srtp::protection_profile::ProtectionProfile;

use crate::sip::sdes::{MasterKey, Suite, KEY_LEN};
use crate::sip::sdp::Srtp;

/// Packets a replayed copy may lag behind the newest and still be recognised.
const REPLAY_WINDOW: usize = 128;
/// Inbound failures in a row, before any packet authenticated, after which the inbound
/// context starts afresh: it keeps state for every SSRC it is shown, and a sprayer
/// could otherwise grow it without bound before the caller's first packet.
const FAILURES_BEFORE_RESET: u32 = 1024;

#[derive(Debug, thiserror::Error)]
#[error("SRTP context: {0}")]
pub struct SrtpError(String);

pub struct SrtpSession {
    outbound: Context,
    inbound: Context,
    suite: Suite,
    theirs: MasterKey,
    authenticated_any: bool,
    failures: u32,
}

impl SrtpSession {
    pub fn new(keys: &Srtp) -> Result<SrtpSession, SrtpError> {
        Ok(SrtpSession {
            outbound: context(keys.suite, &keys.ours, false)?,
            inbound: context(keys.suite, &keys.theirs, true)?,
            suite: keys.suite,
            theirs: keys.theirs,
            authenticated_any: false,
            failures: 0,
        })
    }

    /// An RTP packet, encrypted and authenticated; None if it cannot be (never for the
    /// packets we build).
    pub fn protect(&mut self, rtp: &[u8]) -> Option<Vec<u8>> {
        self.outbound.encrypt_rtp(rtp).ok().map(|b| b.to_vec())
    }

    /// The RTP packet inside an SRTP one; None when it does not authenticate (forged,
    /// replayed, garbled or someone else's).
    pub fn unprotect(&mut self, srtp: &[u8]) -> Option<Vec<u8>> {
        match self.inbound.decrypt_rtp(srtp) {
            Ok(rtp) => {
                self.authenticated_any = true;
                self.failures = 0;
                Some(rtp.to_vec())
            }
            Err(_) => {
                self.failures += 1;
                if !self.authenticated_any && self.failures >= FAILURES_BEFORE_RESET {
                    if let Ok(fresh) = context(self.suite, &self.theirs, true) {
                        self.inbound = fresh;
                    }
                    self.failures = 0;
                }
                None
            }
        }
    }
}

fn context(suite: Suite, key: &MasterKey, inbound: bool) -> Result<Context, SrtpError> {
    let profile = match suite {
        Suite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        Suite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
    };
    let (master, salt) = key.0.split_at(KEY_LEN);
    let replay = inbound.then(|| srtp_replay_protection(REPLAY_WINDOW));
    Context::new(master, salt, profile, replay, None).map_err(|e| SrtpError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

    fn keys(suite: Suite) -> (Srtp, Srtp) {
        let (a, b) = (MasterKey::random(), MasterKey::random());
        let mine = Srtp {
            tag: 1,
            suite,
            theirs: b,
            ours: a,
            savp: true,
        };
        let other = Srtp {
            theirs: a,
            ours: b,
            ..mine
        };
        (mine, other)
    }

    fn packet(seq: u16, payload: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(8)
            .ssrc(0x1234)
            .sequence(Seq::from(seq))
            .timestamp(160 * u32::from(seq))
            .payload(payload)
            .build()
            .unwrap()
    }

    #[test]
    fn both_ways_round_trip_and_hide_the_payload() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let (a, b) = keys(suite);
            let (mut a, mut b) = (SrtpSession::new(&a).unwrap(), SrtpSession::new(&b).unwrap());
            let plain = packet(7, &[0x55; 160]);
            let sealed = a.protect(&plain).unwrap();
            let tag = if suite == Suite::AesCm128HmacSha1_80 {
                10
            } else {
                4
            };
            assert_eq!(sealed.len(), plain.len() + tag);
            assert!(!sealed.windows(16).any(|w| w == [0x55; 16]));
            assert_eq!(b.unprotect(&sealed).unwrap(), plain);
            let back = b.protect(&packet(9, &[1, 2, 3])).unwrap();
            let opened = a.unprotect(&back).unwrap();
            assert_eq!(RtpReader::new(&opened).unwrap().payload(), [1, 2, 3]);
        }
    }

    #[test]
    fn forged_replayed_and_garbage_packets_are_refused() {
        let (a, b) = keys(Suite::AesCm128HmacSha1_80);
        let (mut a, mut b) = (SrtpSession::new(&a).unwrap(), SrtpSession::new(&b).unwrap());
        let sealed = a.protect(&packet(1, &[9; 160])).unwrap();
        let mut forged = sealed.clone();
        forged[20] ^= 1;
        assert_eq!(b.unprotect(&forged), None);
        // Plain RTP with the same header is not SRTP.
        assert_eq!(b.unprotect(&packet(1, &[9; 170])), None);
        assert!(b.unprotect(&sealed).is_some());
        assert_eq!(b.unprotect(&sealed), None, "a replay");
        for junk in [&[][..], &[0x80], &[0x80; 11], &[0xff; 40]] {
            assert_eq!(b.unprotect(junk), None);
        }
    }

    #[test]
    fn a_sprayer_before_the_first_good_packet_does_not_break_the_call() {
        let (a, b) = keys(Suite::AesCm128HmacSha1_80);
        let (mut a, mut b) = (SrtpSession::new(&a).unwrap(), SrtpSession::new(&b).unwrap());
        let mut junk = packet(1, &[0; 170]);
        for ssrc in 0..3000u32 {
            junk[8..12].copy_from_slice(&ssrc.to_be_bytes());
            assert_eq!(b.unprotect(&junk), None);
        }
        let sealed = a.protect(&packet(2, &[3; 160])).unwrap();
        assert!(b.unprotect(&sealed).is_some());
    }
}
