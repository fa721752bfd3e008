//! Chaos with real processes, each killed with SIGKILL mid-work: the gateway itself in
//! the middle of a call (every turn the caller finished is in the call records after
//! the restart, and the call is marked as cut off rather than left "in progress" or
//! lost); the intent service between two turns of a call (the caller hears an apology
//! and is put through, never dead air); the SMSC with a message queued (delivered
//! exactly once after it returns).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `lead` s of silence, then each fixture question followed by its gap (s).
fn questions(dir: &Path, lead: f32, parts: &[(&str, f32)]) -> std::path::PathBuf {
    let mut pcm = vec![0i16; (8000.0 * lead) as usize];
    for (id, gap) in parts {
        pcm.extend(read_wav_8k(
            &repo().join(format!("audio-fixtures/questions/{id}.tel.wav")),
        ));
        pcm.extend(vec![0i16; (8000.0 * gap) as usize]);
    }
    let path = dir.join("questions.wav");
    voicebot_gateway::audio::wav::write_i16(&path, &pcm, 8000).unwrap();
    path
}

/// Waits until `needle` shows `n` times in the gateway's log.
fn wait_for_count(gw: &Gateway, needle: &str, n: usize, limit: Duration) {
    let start = Instant::now();
    while gw.log().matches(needle).count() < n {
        assert!(
            start.elapsed() < limit,
            "{needle:?} not {n} times:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kill_9_mid_call_keeps_every_finished_turn_in_the_records() {
    let gw = Gateway::start("[stt]\nlanguage = \"en\"\n");
    // The first question interrupts the greeting; the second follows the answer.
    let audio = questions(
        gw.dir.path(),
        2.0,
        &[("en-passport", 12.0), ("en-opening-hours", 30.0)],
    );
    let mut caller = Command::new(bin())
        .args(["call", &gw.uri(), "--play"])
        .arg(&audio)
        .args(["--hangup-after", "60"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start voicebot call");
    // Two turns understood (each written as it is), and the second's reply started.
    wait_for_count(&gw, "resolved intent=", 2, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let resolved: Vec<String> = gw
        .log()
        .lines()
        .filter_map(|l| l.split("resolved intent=").nth(1))
        .map(|rest| rest.split(' ').next().unwrap_or_default().to_string())
        .collect();
    gw.signal("KILL");
    caller.kill().ok();
    caller.wait().ok();

    let records = gw.records();
    let restarted = Gateway::start(&format!(
        "[stt]\nlanguage = \"en\"\n[privacy]\nrecord_path = {records:?}\n"
    ));
    assert!(
        restarted.log().contains("recorded as interrupted calls=1"),
        "{}",
        restarted.log()
    );
    let db = rusqlite::Connection::open(&records).unwrap();
    let (call_id, outcome, started, ended): (String, String, i64, i64) = db
        .query_row(
            "SELECT call_id, outcome, started, ended FROM calls",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(outcome, "interrupted");
    assert!(
        ended > started,
        "ended at the last turn: {started} → {ended}"
    );
    let mut turns = db
        .prepare("SELECT intent, answer FROM turns WHERE call_id = ?1 ORDER BY seq")
        .unwrap();
    let turns: Vec<(Option<String>, Option<String>)> = turns
        .query_map([&call_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let intents: Vec<String> = turns
        .iter()
        .map(|t| t.0.clone().unwrap_or_default())
        .collect();
    assert_eq!(resolved[0], "pas_koerekort.nyt_pas");
    assert_eq!(
        intents,
        resolved[..2],
        "turns as the gateway understood them"
    );
    // The first answer is stored whole with what followed it; the second as far as
    // it was said.
    let first = turns[0].1.as_deref().unwrap_or_default();
    assert!(first.contains("passport"), "{first:?}");
    assert!(turns[1].1.is_some(), "{turns:?}");
    // The dashboard counts the cut-off call among the finished ones.
    let (status, body) = restarted.http_get("/api/summary");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"calls\":1"), "{body}");
}

#[test]
fn kill_9_of_the_intent_service_between_turns_means_an_apology_and_a_transfer() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let mut intents = Peer::start(
        &["intents", "serve", "--listen", &listen],
        dir.path().join("intents.log"),
        "intent service listening",
    );
    // Its one queue is open but down, so the transfer ends in a polite goodbye.
    let gw = Gateway::start(&format!(
        "[stt]\nlanguage = \"en\"\n[intent]\nendpoint = \"http://{listen}\"\n\
         [transfer]\nring_timeout_secs = 4\n{}",
        always_open_queue(&format!("sip:queue@127.0.0.1:{}", free_port()))
    ));
    let (q1, gap) = (4.6f64, 12.0f64);
    let audio = questions(
        gw.dir.path(),
        2.0,
        &[("en-passport", gap as f32), ("en-opening-hours", 30.0)],
    );
    let second_ends = 2.0 + q1 + gap + 4.2;
    let rec = gw.dir.path().join("heard.wav");
    let rec_arg = rec.display().to_string();
    let audio_arg = audio.display().to_string();
    let uri = gw.uri();
    let caller = std::thread::spawn(move || {
        voicebot_call(&[
            &uri,
            "--play",
            &audio_arg,
            "--record",
            &rec_arg,
            // Room for the slowest path: the second turn is the gateway's first unsure
            // one, which also scores the phrasings' priors on silence (~1.3 s on a
            // slow core), then an apology, a REFER refused, 4 s of ringing, a goodbye.
            "--hangup-after",
            "60",
        ])
    });
    // The first turn is answered by the service; then it dies.
    wait_for_count(
        &gw,
        "resolved intent=pas_koerekort.nyt_pas",
        1,
        Duration::from_secs(30),
    );
    intents.kill_9();
    let report = caller.join().unwrap();
    let log = gw.log();
    assert!(log.contains("intent service failed"), "{log}");
    assert!(log.contains("transfer over"), "{log}");
    assert_eq!(gw.metric("voicebot_intent_errors_total"), Some(1.0));
    let bye = report["remote_hangup_secs"]
        .as_f64()
        .expect("the bot ends the call politely");
    assert!(bye > second_ends, "{report}");
    // No dead air: the bot speaks (the apology) within 3 s of the second question's end.
    let heard = read_wav_8k(&rec);
    let speaking = envelope(slice(&heard, second_ends + 0.3, second_ends + 3.0));
    assert!(
        speaking.iter().filter(|e| **e > 0.01).count() > 25,
        "silence after the second question"
    );
}

#[tokio::test]
async fn kill_9_of_the_smsc_with_a_message_queued_delivers_it_once_after_it_returns() {
    use voicebot_gateway::sms::outbox::Status;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let smsc = |n: u32| {
        Peer::start(
            &["smsc", "--listen", &listen],
            dir.path().join(format!("smsc-{n}.log")),
            "test SMSC listening",
        )
    };
    let mut first = smsc(1);
    let config = voicebot_gateway::config::Config::parse(&format!(
        "[sms]\nsender = \"smpp\"\noutbox = {:?}\nretry_initial_ms = 200\nretry_max_ms = 400\n\
         [sms.smpp]\nport = {port}\n",
        dir.path().join("sms.sqlite")
    ))
    .unwrap();
    let store = config.storage.store(config.sms.outbox_path());
    let sms = voicebot_gateway::sms::Sms::start(
        &config.sms,
        store,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap()
    .expect("an SMPP sender");
    let anna = voicebot_gateway::sms::number::E164::parse("+4520123456").unwrap();
    let before = sms.enqueue("chaos-1", "a", &anna, "Et").await.unwrap();
    wait_sms_status(&sms, before, Status::Delivered).await;

    first.kill_9();
    let id = sms.enqueue("chaos-1", "b", &anna, "To").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sms.message(id).await.unwrap().unwrap().attempts < 2 {
        assert!(
            Instant::now() < deadline,
            "not tried while the SMSC was gone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = smsc(2);
    wait_sms_status(&sms, id, Status::Delivered).await;
    // A little longer, in case anything would be sent twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let submits = |p: &Peer| p.log().matches("test SMSC: submit_sm").count();
    assert_eq!((submits(&first), submits(&second)), (1, 1));
    sms.shutdown().await;
}
