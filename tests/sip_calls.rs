//! Calls from real SIP peers (sipp, our own caller) against `voicebot serve`.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn sipp_uac_pcap_plays_audio_and_dtmf_then_hangs_up() {
    let gw = Gateway::start("");
    sipp_ok(&gw, &["-sn", "uac_pcap", "-m", "1"]);
    let log = gw.wait_for_log("call ended", Duration::from_secs(10));
    assert_eq!(
        gw.metric("voicebot_dtmf_total"),
        Some(1.0),
        "the pcap's DTMF 1 was not heard"
    );
    // Counted, not logged at info: a caller holding keys must not flood the log.
    assert!(!log.contains("dtmf digit="), "{log}");
    assert!(log.contains("reason=UacBye"), "{log}");
    gw.wait_metric("voicebot_calls_active", 0.0, LAST_WORDS);
    assert!(gw.metric("voicebot_rtp_packets_received_total").unwrap() > 100.0);
}

#[test]
fn sipp_load_twenty_calls_ten_at_a_time() {
    let gw = Gateway::start("");
    sipp_ok(
        &gw,
        &[
            "-sn", "uac_pcap", "-r", "5", "-rp", "1000", "-l", "10", "-m", "20",
        ],
    );
    gw.wait_metric("voicebot_calls_active", 0.0, LAST_WORDS);
    assert_eq!(gw.log().matches("answered").count(), 20);
}

#[test]
fn sipp_over_tcp() {
    let gw = Gateway::start("");
    sipp_ok(&gw, &["-sn", "uac", "-t", "t1", "-m", "1"]);
    gw.wait_for_log("reason=UacBye", Duration::from_secs(10));
}

#[test]
fn cancel_while_ringing_gets_487() {
    let gw = Gateway::start("[call]\nanswer_delay_ms = 3000\n");
    sipp_ok(&gw, &["-sf", &scenario("cancel.xml"), "-m", "1"]);
    gw.wait_for_log("caller gave up while ringing", Duration::from_secs(5));
    gw.wait_metric("voicebot_calls_active", 0.0, Duration::from_secs(5));
}

#[test]
fn reinvite_hold_and_unhold_are_answered() {
    let gw = Gateway::start("");
    sipp_ok(&gw, &["-sf", &scenario("hold.xml"), "-m", "1"]);
    let log = gw.wait_for_log("direction=SendRecv", Duration::from_secs(5));
    assert!(log.contains("direction=RecvOnly"), "{log}");
}

#[test]
fn invite_without_sdp_gets_an_offer_and_takes_the_answer_from_ack() {
    let gw = Gateway::start("");
    sipp_ok(&gw, &["-sf", &scenario("late_offer.xml"), "-m", "1"]);
    gw.wait_for_log("reason=UacBye", Duration::from_secs(5));
    assert!(!gw.log().contains("ACK answer unusable"));
}

#[test]
fn g729_only_gets_488() {
    let gw = Gateway::start("");
    sipp_ok(&gw, &["-sf", &scenario("refuse_488.xml"), "-m", "1"]);
    assert_eq!(gw.metric("voicebot_calls_active"), Some(0.0));
}

#[test]
fn at_the_call_limit_gets_503_with_retry_after() {
    let gw = Gateway::start("[sip]\nmax_calls = 1\n");
    let silence = silence_wav(gw.dir.path(), 1.0);
    let uri = gw.uri();
    let first = std::thread::spawn(move || {
        voicebot_call(&[
            &uri,
            "--play",
            silence.to_str().unwrap(),
            "--hangup-after",
            "6",
        ])
    });
    gw.wait_metric("voicebot_calls_active", 1.0, Duration::from_secs(10));
    sipp_ok(&gw, &["-sf", &scenario("refuse_503.xml"), "-m", "1"]);
    let report = first.join().unwrap();
    assert_eq!(
        report["answered"], true,
        "the call in progress is unharmed: {report}"
    );
    gw.wait_metric("voicebot_calls_active", 0.0, Duration::from_secs(5));
}

#[test]
fn a_caller_whose_media_stops_is_hung_up() {
    let gw = Gateway::start("[rtp]\ntimeout_secs = 2\n");
    // silent.xml never sends RTP and waits for our BYE.
    sipp_ok(&gw, &["-sf", &scenario("silent.xml"), "-m", "1"]);
    gw.wait_for_log("no audio from the caller", Duration::from_secs(5));
}

#[test]
fn our_caller_hears_the_greeting() {
    let gw = Gateway::start("");
    let silence = silence_wav(gw.dir.path(), 2.0);
    let rec = gw.dir.path().join("heard.wav");
    let report = call_recording(&gw, &silence, &rec, &["--hangup-after", "14"]);
    assert_eq!(report["answered"], true);
    assert_eq!(report["sip_status"], 200);
    let heard = read_wav_8k(&rec);
    assert_heard_greeting(&heard, "our caller");
}

#[test]
fn both_codecs_are_answered() {
    let gw = Gateway::start("");
    let silence = silence_wav(gw.dir.path(), 1.0);
    for codec in ["PCMU", "PCMA"] {
        let rec = gw.dir.path().join(format!("{codec}.wav"));
        let report = call_recording(
            &gw,
            &silence,
            &rec,
            &["--codec", codec, "--hangup-after", "3"],
        );
        assert_eq!(report["answered"], true, "{codec}");
        let heard = read_wav_8k(&rec);
        let loud = envelope(&heard).iter().filter(|e| **e > 0.01).count();
        assert!(loud > 50, "{codec}: only {loud} loud frames heard");
    }
}

#[test]
fn sdp_aimed_at_a_multicast_group_gets_488() {
    let gw = Gateway::start("");
    sipp_ok(&gw, &["-sf", &scenario("refuse_multicast.xml"), "-m", "1"]);
    let log = gw.log();
    assert!(log.contains("media address 224.0.0.1 refused"), "{log}");
    assert!(!log.contains("answered"), "{log}");
    assert_eq!(gw.metric("voicebot_calls_active"), Some(0.0));
}
