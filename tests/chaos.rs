//! Chaos with real processes: kill -9 the gateway itself in the middle of a call. Every
//! turn the caller finished is in the call records after the restart, and the call is
//! marked as cut off rather than left "in progress" or lost.

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
