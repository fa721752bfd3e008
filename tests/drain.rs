//! Stopping without dropping a caller: SIGTERM while a real call is in progress. New
//! calls and OPTIONS get 503 + Retry-After and `/readyz` says not ready; the call in
//! progress goes on (and is answered) until it ends, or after `[sip] drain_secs` hears
//! a goodbye and a BYE; its record is in SQLite and the process exits 0.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use voicebot_gateway::call::prompts::Prompts;

/// (outcome, turns with their intents) of the one call recorded.
fn the_record(records: &Path) -> (String, Vec<Option<String>>) {
    let db = rusqlite::Connection::open(records).unwrap();
    let (call_id, outcome): (String, String) = db
        .query_row("SELECT call_id, outcome FROM calls", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("one call record");
    let mut turns = db
        .prepare("SELECT intent FROM turns WHERE call_id = ?1 ORDER BY seq")
        .unwrap();
    let intents = turns
        .query_map([&call_id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    (outcome, intents)
}

/// A caller in the background: `voicebot call` with `args`, its report at the end.
fn call_in_background(
    gw: &Gateway,
    play: &Path,
    args: &[&str],
) -> std::thread::JoinHandle<serde_json::Value> {
    let mut all = vec![gw.uri(), "--play".into(), play.display().to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    std::thread::spawn(move || {
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        voicebot_call(&all)
    })
}

#[test]
fn sigterm_refuses_new_calls_and_lets_the_call_in_progress_finish() {
    let mut gw = Gateway::start("[stt]\nlanguage = \"en\"\n[sip]\ndrain_secs = 60\n");
    // The question comes 12 s into the call, after the stop has begun.
    let question = padded_fixture(gw.dir.path(), "en-passport", 12.0, 0.0);
    let caller = call_in_background(&gw, &question, &["--hangup-after", "24"]);
    gw.wait_for_log("answered", Duration::from_secs(10));
    gw.signal("TERM");
    gw.wait_for_log("draining", Duration::from_secs(5));

    let (status, body) = gw.http_get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("draining"), "{body}");
    let options = request(&gw, "OPTIONS", "drain-options", "", "");
    let resp = udp_exchange(&gw, options.as_bytes()).expect("an answer to OPTIONS");
    assert!(status_line(&resp).starts_with("SIP/2.0 503"), "{resp}");
    assert!(resp.contains("Retry-After: 30"), "{resp}");
    // A new INVITE: 503 with Retry-After (the scenario checks both).
    sipp_ok(&gw, &["-sf", &scenario("refuse_503.xml"), "-m", "1"]);

    let report = caller.join().unwrap();
    assert_eq!(
        report["remote_hangup_secs"],
        serde_json::Value::Null,
        "the caller hung up, not the gateway: {report}"
    );
    let status = gw.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit {status:?}\n{}", gw.log());
    let log = gw.log();
    assert!(
        log.contains("resolved intent=pas_koerekort.nyt_pas"),
        "{log}"
    );
    assert!(!log.contains("drain time over"), "{log}");
    assert!(log.contains("drained"), "{log}");
    let (outcome, intents) = the_record(&gw.records());
    assert_eq!(outcome, "resolved");
    assert_eq!(intents, [Some("pas_koerekort.nyt_pas".to_string())]);
}

#[test]
fn after_drain_secs_the_caller_hears_a_goodbye_then_a_bye() {
    let mut gw = Gateway::start("[sip]\ndrain_secs = 2\n");
    // The goodbye then plays from the prompt cache, as the reference is synthesized
    // (whole, not sentence by sentence).
    gw.wait_for_log("prompt cache warmed", Duration::from_secs(60));
    let silence = silence_wav(gw.dir.path(), 40.0);
    let rec = gw.dir.path().join("goodbye.wav");
    let rec_arg = rec.display().to_string();
    let caller = call_in_background(
        &gw,
        &silence,
        &["--record", &rec_arg, "--hangup-after", "40"],
    );
    gw.wait_for_log("answered", Duration::from_secs(10));
    gw.signal("TERM");
    let report = caller.join().unwrap();
    let bye = report["remote_hangup_secs"]
        .as_f64()
        .expect("the gateway hangs up");
    // 2 s of drain, then the goodbye (about 8 s), then BYE.
    assert!((4.0..20.0).contains(&bye), "{report}");
    let goodbye = reference_speech(&Prompts::danish().shutdown, "da");
    let heard = read_wav_8k(&rec);
    // The goodbye's last three quarters, each where it follows the one before. (Its
    // first 80 ms can be lost where the greeting is stopped for it, so the first
    // quarter is not compared.)
    let quarter = goodbye.len() / 4;
    let mut at = Vec::new();
    for q in 1..4 {
        let (score, secs) = envelope_find(&heard, &goodbye[q * quarter..(q + 1) * quarter]);
        assert!(
            score > 0.95,
            "quarter {q} of the goodbye not heard (match {score})"
        );
        at.push(secs);
    }
    let step = quarter as f64 / 8000.0;
    assert!(
        at.windows(2).all(|w| (w[1] - w[0] - step).abs() < 0.1),
        "goodbye quarters at {at:?}, {step} s apart"
    );
    assert!(at[0] - step > 1.5, "goodbye before the drain time: {at:?}");
    assert!(
        at[2] + step < bye + 0.1,
        "BYE at {bye} s before the goodbye ended: {at:?}"
    );
    let status = gw.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit {status:?}\n{}", gw.log());
    assert!(gw.log().contains("drain time over"), "{}", gw.log());
    assert_eq!(the_record(&gw.records()).0, "shutdown");
}
