//! Call records against a real SQLite file.
use super::*;
use crate::ops::live::{answer, LiveCalls, TransferView};

const DAY: i64 = 86_400;

fn finished(live: &LiveCalls, id: &str) -> CallView {
    let mut c = live.get(id).unwrap();
    c.outcome = Some("transferred".into());
    c.ended = Some(c.started + 60);
    c
}

#[test]
fn a_call_is_stored_redacted_with_bot_and_person_turns() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = Records::open(&dir.path().join("r.sqlite")).unwrap();
    let live = LiveCalls::new(4);
    live.start("c1", 1_000, "70101010", "+45 20 ** ** 56", "da");
    live.said("c1", 1.0, "bot", "Goddag");
    live.said("c1", 4.0, "caller", "mit cpr er 010203-1234, nyt pas");
    live.understood("c1", &answer("pas.nyt", "pas_koerekort", 0.8));
    live.replied("c1", 0.9);
    live.said("c1", 5.0, "bot", "Pas bestilles på borger.dk.");
    live.transfer(
        "c1",
        TransferView {
            queue: "borgerservice".into(),
            reason: "caller_asked".into(),
            method: "refer".into(),
            result: "success".into(),
        },
    );
    live.said("c1", 9.0, "caller", "hallo, er det borgerservice?");
    records.save(&finished(&live, "c1")).unwrap();
    let stored = records.call("c1").unwrap().unwrap();
    assert_eq!(stored.outcome, "transferred");
    assert_eq!(stored.topic.as_deref(), Some("pas_koerekort"));
    let by: Vec<_> = stored
        .turns
        .iter()
        .map(|t| t.answered_by.as_str())
        .collect();
    assert_eq!(
        by,
        ["bot", "person", "person"],
        "the last row is the handover"
    );
    assert_eq!(stored.turns[2].text, None);
    let text = stored.turns[0].text.as_deref().unwrap();
    assert!(text.contains("[CPR]") && !text.contains("010203"), "{text}");
    assert_eq!(stored.turns[0].reply_secs, Some(0.9));
    let (queue, n): (String, i64) = records
        .conn
        .query_row("SELECT queue, turns FROM calls", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((queue.as_str(), n), ("borgerservice", 3));
    records.sms_sent("c1").unwrap();
    let sms: bool = records
        .conn
        .query_row("SELECT sms_sent FROM calls", [], |r| r.get(0))
        .unwrap();
    assert!(sms);
}

#[test]
fn a_repeated_call_id_keeps_both_calls() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = Records::open(&dir.path().join("r.sqlite")).unwrap();
    // In one run: the live view gives the second call its own key.
    let live = LiveCalls::new(4);
    assert_eq!(live.start("same", 1_000, "70101010", "", "da"), "same");
    live.said("same", 2.0, "caller", "nyt pas");
    records.save(&finished(&live, "same")).unwrap();
    let second = live.start("same", 1_100, "70101010", "", "da");
    assert_eq!(second, "same#2");
    live.said(&second, 2.0, "caller", "storskrald");
    records.save(&finished(&live, &second)).unwrap();
    assert_eq!(live.get("same").unwrap().lines[0].text, "nyt pas");
    // After a restart the live view is empty: the records keep both apart.
    let fresh = LiveCalls::new(4);
    let third = fresh.start("same", 1_200, "70101010", "", "da");
    fresh.said(&third, 2.0, "caller", "boligstøtte");
    records.save(&finished(&fresh, &third)).unwrap();
    // Saving the same call again replaces it rather than adding a fourth.
    records.save(&finished(&fresh, &third)).unwrap();
    let texts =
        |key: &str| -> Option<String> { records.call(key).unwrap().unwrap().turns[0].text.clone() };
    assert_eq!(texts("same").as_deref(), Some("nyt pas"));
    assert_eq!(texts("same#2").as_deref(), Some("storskrald"));
    assert_eq!(texts("same#3").as_deref(), Some("boligstøtte"));
    let n: i64 = records
        .conn
        .query_row("SELECT COUNT(*) FROM calls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
}

#[test]
fn live_calls_hand_finished_calls_and_later_sms_to_the_writer_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite");
    let writer = RecordWriter::spawn(Records::open(&path).unwrap(), Counter::default());
    let live = LiveCalls::with_records(1, writer);
    live.start("a", 1_000, "70101010", "", "da");
    live.said("a", 2.0, "caller", "nyt sundhedskort");
    live.end("a", "resolved");
    live.start("b", 1_000, "70101010", "", "da"); // pushes "a" out of memory
    assert!(live.get("a").is_none());
    live.sms_sent("a");
    let reader = Records::open(&path).unwrap();
    let sms = || -> Option<bool> {
        reader
            .conn
            .query_row("SELECT sms_sent FROM calls WHERE call_id = 'a'", [], |r| {
                r.get(0)
            })
            .optional()
            .unwrap()
    };
    let start = std::time::Instant::now();
    while sms() != Some(true) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "sms_sent {:?}",
            sms()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let a = reader.call("a").unwrap().unwrap();
    assert_eq!((a.outcome.as_str(), a.turns.len()), ("resolved", 1));
}

#[test]
fn a_call_is_written_turn_by_turn_and_one_cut_off_is_marked_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite");
    let writer = RecordWriter::spawn(Records::open(&path).unwrap(), Counter::default());
    let live = LiveCalls::with_records(4, writer.clone());
    live.start("a", 1_000, "70101010", "", "da");
    live.said("a", 1.0, "bot", "Goddag");
    live.said("a", 4.0, "caller", "nyt pas");
    live.understood("a", &answer("pas.nyt", "pas_koerekort", 0.8));
    live.said("a", 5.0, "bot", "Pas bestilles på borger.dk.");
    live.said("a", 12.0, "caller", "og kørekort");
    live.understood("a", &answer("koerekort.nyt", "pas_koerekort", 0.7));
    // Turn 2's answer is not out yet when the gateway dies.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(writer.flush());
    let reader = Records::open(&path).unwrap();
    assert!(
        reader.since(0).unwrap().is_empty(),
        "the dashboard counts finished calls only"
    );
    let stored: (String, i64) = reader
        .conn
        .query_row(
            "SELECT outcome, turns FROM calls WHERE call_id = 'a'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(stored, (IN_PROGRESS.to_string(), 2));
    // The next start.
    assert_eq!(reader.mark_interrupted().unwrap(), 1);
    let call = reader.call("a").unwrap().unwrap();
    assert_eq!((call.outcome.as_str(), call.ended), (INTERRUPTED, 1_013));
    let intents: Vec<_> = call.turns.iter().map(|t| t.intent.as_deref()).collect();
    assert_eq!(intents, [Some("pas.nyt"), Some("koerekort.nyt")]);
    let answer: String = reader
        .conn
        .query_row("SELECT answer FROM turns WHERE seq = 0", [], |r| r.get(0))
        .unwrap();
    assert_eq!(answer, "Pas bestilles på borger.dk.");
    assert_eq!(reader.mark_interrupted().unwrap(), 0);
}

#[test]
fn failed_writes_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let records = Records::open(&dir.path().join("r.sqlite")).unwrap();
    records.conn.execute_batch("DROP TABLE turns").unwrap();
    let failures = Counter::default();
    let live = LiveCalls::with_records(4, RecordWriter::spawn(records, failures.clone()));
    // Two writes: the call at its start, and at its end.
    live.start("a", 1_000, "70101010", "", "da");
    live.end("a", "abandoned");
    let start = std::time::Instant::now();
    while failures.get() != 2 {
        assert!(start.elapsed() < Duration::from_secs(5), "not counted");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn retention_blanks_transcripts_of_old_calls_only() {
    assert_eq!(expired(100 * DAY, 30), 70 * DAY);
    let dir = tempfile::tempdir().unwrap();
    let mut records = Records::open(&dir.path().join("r.sqlite")).unwrap();
    let live = LiveCalls::new(4);
    for (id, started) in [("old", 10 * DAY), ("new", 50 * DAY)] {
        live.start(id, started, "70101010", "", "da");
        live.said(id, 2.0, "caller", "hvornår kommer skraldebilen");
        live.said(id, 3.0, "bot", "På tirsdag.");
        records.save(&finished(&live, id)).unwrap();
    }
    // The fake clock: 41 days after the old call, 1 after the new one.
    let now = 51 * DAY;
    assert_eq!(records.apply_retention(now, 30).unwrap(), 1);
    assert_eq!(
        records.apply_retention(now, 30).unwrap(),
        0,
        "already blank"
    );
    let old = records.call("old").unwrap().unwrap();
    let new = records.call("new").unwrap().unwrap();
    assert_eq!(old.turns[0].text, None);
    assert_eq!(old.outcome, "transferred", "the call's facts stay");
    assert_eq!(
        new.turns[0].text.as_deref(),
        Some("hvornår kommer skraldebilen")
    );
    let answers: i64 = records
        .conn
        .query_row("SELECT COUNT(answer) FROM turns", [], |r| r.get(0))
        .unwrap();
    assert_eq!(answers, 1, "only the new call keeps the bot's answer");
}
