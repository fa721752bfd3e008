//! The fuzzed parsers: everything that reads bytes from a caller, a carrier, an SMSC or
//! an operator's file. Each takes any bytes and says whether they were accepted.
//!
//! RTCP is not here: the gateway does not parse it (a datagram on an RTP port that is
//! not our RTP is counted as garbage and dropped), so the RTP target covers that path.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rtp_rs::RtpReader;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::Target;
use crate::audio::g711::Law;
use crate::rtp::dtmf::{DtmfDetector, EventPayload};
use crate::rtp::jitter::JitterBuffer;
use crate::sip::guard::{self, Framing, Verdict};
use crate::sip::identity::{self, Trust};
use crate::sip::sdes::SrtpPolicy;
use crate::sip::sdp;
use crate::transfer::refer::{self, ReferTracker};

pub const ALL: &[Target] = &[
    Target {
        name: "sip",
        run: sip,
    },
    Target {
        name: "sdp",
        run: sdp_offer,
    },
    Target {
        name: "rtp",
        run: rtp,
    },
    Target {
        name: "rfc4733",
        run: rfc4733,
    },
    Target {
        name: "sipfrag",
        run: sipfrag,
    },
    Target {
        name: "smpp",
        run: smpp,
    },
    Target {
        name: "kb",
        run: kb,
    },
    Target {
        name: "config",
        run: config,
    },
];

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A datagram or a TCP stream through the request guard; what passes is parsed by the
/// SIP stack, and a request's caller identity and SDP are read as the answering side
/// does.
fn sip(data: &[u8]) -> bool {
    let mut rest = data;
    loop {
        let len = match guard::frame(rest) {
            Framing::Message(len) => {
                guard::check_stream(&rest[..len.min(rest.len())]);
                len
            }
            Framing::Keepalive(len) => len,
            Framing::Incomplete | Framing::Broken(_) => break,
        };
        if len == 0 || len > rest.len() {
            break;
        }
        rest = &rest[len..];
    }
    if guard::check(data) != Verdict::Pass {
        return false;
    }
    if let Ok(rsipstack::sip::SipMessage::Request(request)) =
        rsipstack::sip::SipMessage::try_from(data)
    {
        let trust = Trust {
            peer: true,
            from: true,
        };
        identity::caller(&request, trust).ok();
        sdp::accept(
            &request.body,
            &[Law::Alaw, Law::Ulaw],
            LOOPBACK,
            SrtpPolicy::Optional,
        )
        .ok();
    }
    true
}

/// An SDP offer (INVITE or re-INVITE body), and our answer to it.
fn sdp_offer(data: &[u8]) -> bool {
    match sdp::accept(
        data,
        &[Law::Alaw, Law::Ulaw],
        LOOPBACK,
        SrtpPolicy::Optional,
    ) {
        Ok(n) => {
            sdp::answer(&n, SocketAddr::new(LOOPBACK, 40000), 1);
            true
        }
        Err(_) => false,
    }
}

/// One RTP packet as read, then the input cut into a stream of packets through the
/// jitter buffer and DTMF detector, 20 ms apart on a fake clock.
fn rtp(data: &[u8]) -> bool {
    let accepted = RtpReader::new(data).is_ok();
    let start = Instant::now();
    let mut jitter = JitterBuffer::new(3, 8000);
    let mut dtmf = DtmfDetector::default();
    let mut rest = data;
    let mut n = 0u32;
    while rest.len() >= 12 {
        let len = (usize::from(rest[0]) + 12).min(rest.len());
        let (packet, tail) = rest.split_at(len);
        rest = tail;
        n += 1;
        let Ok(pkt) = RtpReader::new(packet) else {
            continue;
        };
        let now = start + Duration::from_millis(20 * u64::from(n));
        if pkt.payload_type() == 101 {
            dtmf.on_packet(pkt.timestamp(), pkt.payload());
        } else {
            jitter.push(
                now,
                u16::from(pkt.sequence_number()),
                pkt.timestamp(),
                pkt.payload().to_vec(),
            );
            // The payload decides which frames count as quiet, so shedding runs too.
            jitter.pop(|frame| frame.first().is_some_and(|b| b % 2 == 0));
        }
    }
    accepted
}

/// RFC 4733 telephone-event payloads, one after another (4 bytes each, a timestamp
/// from every other one).
fn rfc4733(data: &[u8]) -> bool {
    let mut dtmf = DtmfDetector::default();
    let mut digits = 0;
    for (i, chunk) in data.chunks(4).enumerate() {
        EventPayload::parse(chunk);
        let ts = (i as u32 / 2).wrapping_mul(160);
        digits += usize::from(dtmf.on_packet(ts, chunk).is_some());
    }
    digits > 0
}

/// A NOTIFY body (message/sipfrag) as the REFER tracker reads it.
fn sipfrag(data: &[u8]) -> bool {
    let status = refer::sipfrag_status(data);
    let mut tracker = ReferTracker::new(Instant::now(), Duration::from_secs(10));
    tracker.on_refer_response(Some(202));
    let state = String::from_utf8_lossy(data);
    tracker.on_notify(data, state.lines().next());
    status.is_some()
}

/// SMPP PDUs from an SMSC, decoded as the SMPP link does, and a delivery receipt text.
fn smpp(data: &[u8]) -> bool {
    let mut codec = rusmpp::tokio_codec::CommandCodec::new();
    let mut buf = BytesMut::from(data);
    let mut decoded = false;
    while let Ok(Some(_command)) = codec.decode(&mut buf) {
        decoded = true;
    }
    crate::sms::receipt::Receipt::parse(&String::from_utf8_lossy(data));
    decoded
}

/// A knowledge-base file.
fn kb(data: &[u8]) -> bool {
    crate::intent::kb::Kb::parse(&String::from_utf8_lossy(data)).is_ok()
}

/// A config file.
fn config(data: &[u8]) -> bool {
    crate::config::Config::parse(&String::from_utf8_lossy(data)).is_ok()
}
