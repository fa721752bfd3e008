//! SMS end to end: a caller whose Danish mobile number a trusted peer asserts asks an
//! English question whose answer has a page, presses 1 at the offer, and the SMSC
//! receives the link for that number; a caller without a number, and one whose number
//! only an untrusted source asserts, is never offered an SMS.

mod common;

use std::time::Duration;

use common::*;
use voicebot_gateway::sms::smsc::TestSmsc;

/// A test SMSC and an English-line gateway sending to it; keep the runtime, the SMSC
/// and the outbox folder alive for the test.
fn gateway_with_smsc(
    extra: &str,
) -> (
    tokio::runtime::Runtime,
    TestSmsc,
    tempfile::TempDir,
    Gateway,
) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let smsc = rt
        .block_on(TestSmsc::start("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let outbox = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&format!(
        "[stt]\nlanguage = \"en\"\n[sms]\nsender = \"smpp\"\noutbox = \"{}\"\n\
         [sms.smpp]\nhost = \"127.0.0.1\"\nport = {}\nsystem_id = \"voicebot\"\npassword = \"secret\"\n{extra}",
        outbox.path().join("sms.sqlite").display(),
        smsc.addr().port()
    ));
    (rt, smsc, outbox, gw)
}

#[test]
fn pressing_1_at_the_offer_texts_the_answers_link_to_the_callers_mobile() {
    let (_rt, smsc, _outbox, gw) = gateway_with_smsc("");
    // "My passport runs out next month, how do I renew it?" after the greeting; the
    // answer (pas_koerekort.nyt_pas) has a page, so the bot offers it by SMS; 1 at 26 s
    // lands during the answer or the offer, both of which accept it.
    let question = padded_fixture(gw.dir.path(), "en-passport", 12.0, 0.0);
    let rec = gw.dir.path().join("sms.wav");
    call_recording(
        &gw,
        &question,
        &rec,
        &[
            "--pai",
            "+4520123456",
            "--dtmf",
            "1@26",
            "--hangup-after",
            "34",
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let received = loop {
        let r = smsc.received();
        if !r.is_empty() || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = gw.log();
    assert_eq!(received.len(), 1, "SMSC got {received:?}\n{log}");
    let sms = &received[0];
    assert!(sms.to.ends_with("4520123456"), "{sms:?}");
    // GSM-7 unpacked: these characters have their ASCII codes.
    let text = String::from_utf8_lossy(&sms.short_message);
    assert!(
        text.contains("https://kommune.example.org/borgerservice/pas"),
        "{text:?}"
    );
    assert!(
        text.contains("passport"),
        "the KB's sms_text leads: {text:?}"
    );
    assert!(log.contains("SMS queued"), "{log}");
    assert!(
        !log.contains("4520123456"),
        "the full number was logged: {log}"
    );
    gw.wait_metric("voicebot_sms_enqueued_total", 1.0, Duration::from_secs(5));
    // The call's record says an SMS was sent (written when the call ends).
    gw.wait_for_log("call over", Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let sent: i64 = loop {
        let db = rusqlite::Connection::open(gw.records()).unwrap();
        let finished = "SELECT sms_sent FROM calls WHERE outcome != 'in_progress'";
        let row = db.query_row(finished, [], |r| r.get(0));
        match row {
            Ok(v) => break v,
            Err(e) => assert!(std::time::Instant::now() < deadline, "no call record: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(sent, 1);
}

#[test]
fn a_caller_without_a_number_is_not_offered_an_sms() {
    let (_rt, smsc, _outbox, gw) = gateway_with_smsc("");
    let question = padded_fixture(gw.dir.path(), "en-passport", 12.0, 0.0);
    let rec = gw.dir.path().join("anon.wav");
    call_recording(
        &gw,
        &question,
        &rec,
        &[
            "--from",
            "anonymous",
            "--dtmf",
            "1@26",
            "--hangup-after",
            "30",
        ],
    );
    let log = gw.wait_for_log("call over", Duration::from_secs(10));
    assert!(log.contains("no SMS: caller's number unknown"), "{log}");
    assert!(
        log.contains("resolved intent=pas_koerekort.nyt_pas"),
        "{log}"
    );
    assert!(smsc.received().is_empty());
    assert!(!log.contains("SMS queued"), "{log}");
}

#[test]
fn a_number_only_an_untrusted_source_asserts_never_gets_an_sms() {
    // The gateway is open to the public, but only 127.0.0.1 is a trusted peer; the
    // call comes from 127.0.0.2 with the victim's number in PAI and From alike.
    let (_rt, smsc, _outbox, gw) = gateway_with_smsc(
        "[sip]\ntrusted = [\"127.0.0.1/32\"]\nopen = true\n[sms]\ntrust_from = true\n",
    );
    let question = padded_fixture(gw.dir.path(), "en-passport", 12.0, 0.0);
    let rec = gw.dir.path().join("untrusted.wav");
    call_recording(
        &gw,
        &question,
        &rec,
        &[
            "--local-ip",
            "127.0.0.2",
            "--pai",
            "+4520123456",
            "--from",
            "+4520123456",
            "--dtmf",
            "1@26",
            "--hangup-after",
            "30",
        ],
    );
    let log = gw.wait_for_log("call over", Duration::from_secs(10));
    assert!(
        log.contains("no SMS: caller's number unknown reason=caller's identity is not asserted by a trusted peer"),
        "{log}"
    );
    assert!(
        log.contains("resolved intent=pas_koerekort.nyt_pas"),
        "{log}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(smsc.received().is_empty(), "{:?}", smsc.received());
    assert!(!log.contains("SMS queued"), "{log}");
}
