//! Strict RTP: once a call's media has latched on the caller, RTP sprayed at its port
//! from another address is ignored (counted in `voicebot_rtp_foreign_total`): the
//! outsider hears nothing, and the caller's question still reaches the recognizer.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;

/// The only RTP port the gateway may use, so the outsider knows where to aim.
const RTP_PORT: u16 = 41_000;

#[test]
fn rtp_from_a_second_address_is_ignored_and_the_caller_is_still_understood() {
    let gw = Gateway::start(&format!(
        "[stt]\nlanguage = \"en\"\n[rtp]\nports = \"{RTP_PORT}-{}\"\n",
        RTP_PORT + 1
    ));
    // "My passport runs out next month, how do I renew it?" after the greeting.
    let question = padded_fixture(gw.dir.path(), "en-passport", 12.0, 0.0);
    let rec = gw.dir.path().join("heard.wav");
    let uri = gw.uri();
    let caller = std::thread::spawn(move || {
        voicebot_call(&[
            &uri,
            "--play",
            question.to_str().unwrap(),
            "--record",
            rec.to_str().unwrap(),
            "--hangup-after",
            "24",
        ])
    });
    gw.wait_metric("voicebot_calls_active", 1.0, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    // From 127.0.0.5: loud noise in the call's codec (PCMA), a packet every 20 ms for
    // 18 s, the whole of the caller's question included.
    let outsider = UdpSocket::bind("127.0.0.5:0").unwrap();
    outsider.set_nonblocking(true).unwrap();
    let target = format!("127.0.0.1:{RTP_PORT}");
    let (mut seq, mut ts, ssrc) = (1u16, 0u32, 0x5eed_u32);
    let mut heard = 0;
    let mut buf = [0u8; 2048];
    let until = Instant::now() + Duration::from_secs(18);
    while Instant::now() < until {
        let mut packet = vec![0x80, 8];
        packet.extend(seq.to_be_bytes());
        packet.extend(ts.to_be_bytes());
        packet.extend(ssrc.to_be_bytes());
        packet.extend((0..160).map(|i| {
            if (seq as usize + i).is_multiple_of(2) {
                0xaa
            } else {
                0x2a
            }
        }));
        outsider.send_to(&packet, &target).unwrap();
        (seq, ts) = (seq.wrapping_add(1), ts.wrapping_add(160));
        while let Ok((n, _)) = outsider.recv_from(&mut buf) {
            heard += n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = caller.join().unwrap();
    assert_eq!(report["answered"], true, "{report}");
    assert_eq!(heard, 0, "the outsider was sent the call's audio");
    let foreign = gw.metric("voicebot_rtp_foreign_total").unwrap();
    assert!(foreign > 500.0, "only {foreign} foreign packets counted");
    let log = gw.wait_for_log("call over", Duration::from_secs(10));
    assert!(
        log.contains("resolved intent=pas_koerekort.nyt_pas"),
        "the caller's question was not understood:\n{log}"
    );
    assert!(
        log.contains("RTP from a source this call is not latched on: ignored from=127.0.0.5:"),
        "{log}"
    );
}
