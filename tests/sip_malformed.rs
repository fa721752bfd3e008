//! Malformed SIP over UDP and TCP: each gets the right error (or is dropped with a log
//! line), the server never falls over, and calls still work afterwards.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::*;

/// The malformed requests both transports must refuse, with the expected status line.
fn cases(gw: &Gateway) -> Vec<(&'static str, String, &'static str)> {
    let good = request(gw, "OPTIONS", "m1", "", "");
    vec![
        (
            "missing Call-ID",
            good.replace("Call-ID: m1\r\n", ""),
            "SIP/2.0 400 Missing Call-ID Header",
        ),
        (
            "missing CSeq",
            good.replace("CSeq: 1 OPTIONS\r\n", ""),
            "SIP/2.0 400 Missing CSeq Header",
        ),
        (
            "wrong version",
            good.replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1),
            "SIP/2.0 505 Version Not Supported",
        ),
        (
            "CSeq method mismatch",
            good.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"),
            "SIP/2.0 400 CSeq Method Does Not Match Request",
        ),
        (
            "unsupported Require",
            good.replace(
                "Max-Forwards: 70\r\n",
                "Max-Forwards: 70\r\nRequire: foo\r\n",
            ),
            "SIP/2.0 420 Bad Extension",
        ),
        (
            // A lone CR splits no line here or in the stack: it would ride inside the
            // Call-ID into every header that repeats it.
            "bare CR in a header",
            good.replace("Call-ID: m1\r\n", "Call-ID: m1\rX-Evil: 1\r\n"),
            "SIP/2.0 400 Bare CR in Headers",
        ),
        (
            "huge header",
            good.replace(
                "Max-Forwards: 70\r\n",
                &format!("Max-Forwards: 70\r\nX-Huge: {}\r\n", "x".repeat(20000)),
            ),
            "SIP/2.0 513 Message Too Large",
        ),
    ]
}

#[test]
fn malformed_udp_requests_get_the_right_error_and_calls_still_work() {
    let gw = Gateway::start("");
    for (what, msg, want) in cases(&gw) {
        let resp = udp_exchange(&gw, msg.as_bytes()).unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(status_line(&resp), want, "{what}");
        // What the caller wrote is echoed without its CR: no header of its own.
        let lines: Vec<&str> = resp.split("\r\n").collect();
        assert!(
            !lines.iter().any(|l| l.contains(['\r', '\n', '\0'])),
            "{what}: {resp:?}"
        );
        assert!(
            !lines.iter().any(|l| l.starts_with("X-Evil")),
            "{what}: {resp:?}"
        );
        // Nothing names the product to a scanner.
        assert!(
            !resp.to_lowercase().contains("voicebot"),
            "{what}: {resp:?}"
        );
    }
    let good = request(&gw, "OPTIONS", "m2", "", "");
    let bad_length = good.replace("Content-Length: 0", "Content-Length: 500");
    assert_eq!(
        status_line(&udp_exchange(&gw, bad_length.as_bytes()).unwrap()),
        "SIP/2.0 400 Content-Length Exceeds Body"
    );
    // Truncated mid-header: still answerable, Call-ID was cut off.
    let truncated = &good[..good.find("Call-ID").unwrap()];
    assert_eq!(
        status_line(&udp_exchange(&gw, truncated.as_bytes()).unwrap()),
        "SIP/2.0 400 Missing Call-ID Header"
    );
    // No Via: nothing can be answered; dropped with a log line.
    let no_via = good.replace("Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-m2\r\n", "");
    assert_eq!(udp_exchange(&gw, no_via.as_bytes()), None);
    assert_eq!(udp_exchange(&gw, b"\x00\x01\x02 random bytes \xff"), None);
    gw.wait_for_log("dropped unanswerable SIP message", Duration::from_secs(3));
    // A non-UTF-8 header would make the stack drop the rest of the headers: refused instead.
    let mut binary = good.clone().into_bytes();
    let pos = good.find("Max-Forwards").unwrap();
    binary.splice(pos..pos, b"X-Bin: \xff\xfe\r\n".iter().copied());
    assert_eq!(udp_exchange(&gw, &binary), None);

    // Still serving: OPTIONS keepalive is answered with what we allow.
    let ok = udp_exchange(&gw, request(&gw, "OPTIONS", "m3", "", "").as_bytes()).unwrap();
    assert_eq!(status_line(&ok), "SIP/2.0 200 OK");
    assert!(!ok.to_lowercase().contains("voicebot"), "{ok}");
    assert!(
        ok.contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS"),
        "{ok}"
    );
    assert_calls_work(&gw);
    // Seven cases, bad length, truncated: answered. No Via, garbage, binary header: dropped.
    assert_eq!(gw.metric("voicebot_sip_rejected_total"), Some(9.0));
    assert_eq!(gw.metric("voicebot_sip_dropped_total"), Some(3.0));
}

fn tcp_exchange(gw: &Gateway, msg: &[u8]) -> (Option<String>, bool) {
    let mut s = TcpStream::connect(gw.sip).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    s.write_all(msg).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    let start = Instant::now();
    let mut closed = false;
    while start.elapsed() < Duration::from_millis(1500) {
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let text = (!got.is_empty()).then(|| String::from_utf8_lossy(&got).to_string());
    (text, closed)
}

#[test]
fn malformed_tcp_requests_get_the_right_error_and_calls_still_work() {
    let gw = Gateway::start("");
    for (what, msg, want) in cases(&gw) {
        let (resp, _) = tcp_exchange(&gw, msg.replace("SIP/2.0/UDP", "SIP/2.0/TCP").as_bytes());
        assert_eq!(
            status_line(&resp.unwrap_or_else(|| panic!("{what}: no answer"))),
            want,
            "{what}"
        );
    }
    let good = request(&gw, "OPTIONS", "t2", "", "").replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    // On a stream a bad Content-Length makes framing impossible: answer, then close.
    for (bad, want) in [
        (
            "Content-Length: 18446744073709551615",
            "SIP/2.0 513 Message Too Large",
        ),
        (
            "Content-Length: banana",
            "SIP/2.0 400 Malformed Content-Length",
        ),
    ] {
        let (resp, _) = tcp_exchange(&gw, good.replace("Content-Length: 0", bad).as_bytes());
        assert_eq!(status_line(&resp.unwrap()), want, "{bad}");
    }
    let (resp, _) = tcp_exchange(&gw, good.replace("Content-Length: 0\r\n", "").as_bytes());
    assert_eq!(
        status_line(&resp.unwrap()),
        "SIP/2.0 400 Missing Content-Length"
    );
    // A good OPTIONS over TCP is answered by the stack behind the guard.
    let (resp, _) = tcp_exchange(&gw, good.as_bytes());
    assert_eq!(status_line(&resp.unwrap()), "SIP/2.0 200 OK");
    assert_calls_work(&gw);
}

#[test]
fn unanswered_200_is_retransmitted_until_ack() {
    let gw = Gateway::start("");
    let sdp = "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\n";
    let invite = request(
        &gw,
        "INVITE",
        "rtx",
        "Content-Type: application/sdp\r\n",
        sdp,
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    sock.send_to(invite.as_bytes(), gw.sip).unwrap();
    let mut oks = 0;
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    // RFC 3261 §13.3.1.4: 200 re-sent at T1, 2·T1, ... (0.5 s, 1.5 s, 3.5 s after the first).
    while start.elapsed() < Duration::from_millis(2500) {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if buf[..n].starts_with(b"SIP/2.0 200") {
                oks += 1;
            }
        }
    }
    assert!(oks >= 3, "only {oks} copies of the 200 in 2.5 s");
}

fn assert_calls_work(gw: &Gateway) {
    let silence = silence_wav(gw.dir.path(), 1.0);
    let report = voicebot_call(&[
        &gw.uri(),
        "--play",
        silence.to_str().unwrap(),
        "--hangup-after",
        "1",
    ]);
    assert_eq!(report["answered"], true, "{report}");
}

#[test]
fn a_tcp_message_over_8_kb_is_taken_up_to_the_stream_limit() {
    let gw = Gateway::start("");
    let pad = format!("X-Pad: {}\r\n", "x".repeat(12_000));
    let big = request(&gw, "OPTIONS", "big1", &pad, "");
    // A datagram that large is still refused: it does not fit the stack's UDP reads.
    let resp = udp_exchange(&gw, big.as_bytes()).expect("an answer over UDP");
    assert_eq!(status_line(&resp), "SIP/2.0 513 Message Too Large");
    let (resp, _) = tcp_exchange(&gw, big.replace("SIP/2.0/UDP", "SIP/2.0/TCP").as_bytes());
    assert_eq!(
        status_line(&resp.expect("an answer over TCP")),
        "SIP/2.0 200 OK"
    );
    // Beyond what the stack's stream codec takes (65,535 bytes in all): refused as
    // soon as the header section says so.
    let pad = format!("X-Pad: {}\r\n", "x".repeat(1_000));
    let huge = request(&gw, "OPTIONS", "big2", &pad, "")
        .replace("Content-Length: 0", "Content-Length: 65000")
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let (resp, _) = tcp_exchange(&gw, huge.as_bytes());
    assert_eq!(
        status_line(&resp.expect("an answer over TCP")),
        "SIP/2.0 513 Message Too Large"
    );
}

/// Whether the server closed `s` within `within` (false: still open, or data came).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    matches!(s.read(&mut [0u8; 64]), Ok(0))
}

#[test]
fn sip_tcp_connections_are_capped_and_idle_ones_closed() {
    let gw = Gateway::start("[sip]\ntcp_max_connections = 2\ntcp_idle_secs = 2\n");
    let started = Instant::now();
    let mut first = TcpStream::connect(gw.sip).unwrap();
    let _second = TcpStream::connect(gw.sip).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(gw.sip).unwrap();
    assert!(
        closed_within(&mut third, Duration::from_millis(800)),
        "a connection over the cap stays open"
    );
    assert!(
        !closed_within(&mut first, Duration::from_millis(500)),
        "a connection under the cap was closed early"
    );
    assert!(
        closed_within(&mut first, Duration::from_secs(4)),
        "an idle connection stays open"
    );
    let idle_for = started.elapsed();
    assert!(idle_for >= Duration::from_millis(1800), "{idle_for:?}");
    // The slots are free again.
    let ok = request(&gw, "OPTIONS", "cap1", "", "").replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let (resp, _) = tcp_exchange(&gw, ok.as_bytes());
    assert_eq!(status_line(&resp.expect("an answer")), "SIP/2.0 200 OK");
    assert_calls_work(&gw);
}
