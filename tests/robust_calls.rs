//! Calls that must never be dropped or leak: crafted input from the network ends in a
//! proper transfer or BYE with a call record, and every finished call leaves nothing
//! behind in the SIP stack.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// The outcome stored for `call_id`, waiting up to 20 s for the record of the finished
/// call (it is written from its start, as `in_progress`).
fn recorded_outcome(records: &Path, call_id: &str) -> String {
    let start = Instant::now();
    loop {
        let found = rusqlite::Connection::open(records).ok().and_then(|db| {
            db.query_row(
                "SELECT outcome FROM calls WHERE call_id = ?1 AND outcome != 'in_progress'",
                [call_id],
                |r| r.get::<_, String>(0),
            )
            .ok()
        });
        if let Some(outcome) = found {
            return outcome;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no call record for {call_id:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_call_id_of_multibyte_characters_is_transferred_and_recorded() {
    let gw = Gateway::start(&format!(
        "[stt]\nlanguage = \"en\"\n{}",
        always_open_queue("sip:queue@127.0.0.1:9")
    ));
    let dir = tempfile::tempdir().unwrap();
    let target = gw.sip.to_string();
    // Byte 128 of the transfer context's UUI payload falls inside an "é".
    let call_id = format!("a{}", "é".repeat(100));
    // The caller presses 0 (RFC 4733), accepts the REFER, reports success, hangs up.
    let out = sipp(
        dir.path(),
        &[
            "-sf",
            &scenario("press0_accept_refer.xml"),
            "-cid_str",
            &call_id,
            "-i",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
            "-mp",
            &free_port().to_string(),
            "-s",
            "bot",
            &target,
            "-m",
            "1",
        ],
        60,
    );
    assert!(out.status.success(), "{}", sipp_report(dir.path(), &out));
    assert_eq!(recorded_outcome(&gw.records(), &call_id), "transferred");
    assert_eq!(
        gw.metric("voicebot_transfers_total{method=\"refer\",result=\"success\"}"),
        Some(1.0)
    );
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
    gw.wait_metric("voicebot_sip_dialogs", 0.0, Duration::from_secs(10));
}

#[test]
fn every_finished_call_leaves_the_sip_stack_with_no_dialog() {
    // Ring 1 s (so a CANCEL finds the call ringing); hang up when RTP stops for 2 s.
    let gw = Gateway::start("[call]\nanswer_delay_ms = 1000\n[rtp]\ntimeout_secs = 2\n");
    // The caller hangs up (audio, DTMF, BYE), five at a time.
    sipp_ok(&gw, &["-sn", "uac_pcap", "-r", "5", "-m", "5"]);
    // The gateway hangs up: the caller sends no RTP.
    sipp_ok(&gw, &["-sf", &scenario("silent.xml"), "-m", "1"]);
    // The caller gives up while it rings: CANCEL, 487.
    sipp_ok(&gw, &["-sf", &scenario("cancel.xml"), "-m", "1"]);
    // Over TCP, the caller hangs up.
    sipp_ok(&gw, &["-sn", "uac", "-t", "t1", "-m", "1"]);
    gw.wait_metric("voicebot_calls_active", 0.0, LAST_WORDS);
    // Seven were answered and ended; the cancelled one never was.
    assert_eq!(gw.log().matches("call over").count(), 7, "{}", gw.log());
    gw.wait_metric("voicebot_sip_dialogs", 0.0, Duration::from_secs(10));
}
