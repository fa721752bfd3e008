//! Call records on both engines (`storage::scenarios`).
use super::*;
use crate::ops::live::{answer, LiveCalls, TransferView};
use crate::storage::scenarios::{file_from_before_migrations, on_sqlite_and_postgres};
use crate::storage::{Backend, Row};
use prometheus_client::metrics::counter::Counter;

/// Opens the scenario's records (again) as the gateway named.
type Open<'a> = &'a dyn Fn(&str) -> Records;

fn one(records: &mut Records, sql: &str) -> Row {
    records.db.query_one(sql, &[]).unwrap()
}

fn open(backend: &Backend, node: &str) -> Records {
    Records::open(&Store {
        backend: backend.clone(),
        node: node.into(),
    })
    .unwrap()
}

const DAY: i64 = 86_400;

fn finished(live: &LiveCalls, id: &str) -> CallView {
    let mut c = live.get(id).unwrap();
    c.outcome = Some("transferred".into());
    c.ended = Some(c.started + 60);
    c
}

fn a_call_is_stored_redacted_with_bot_and_person_turns(open: Open) {
    let mut records = open("a");
    let live = LiveCalls::new(4);
    live.start("c1", 1_000, "70101010", "+45 20 ** ** 56", "da");
    live.tenant("c1", "nordby");
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
    assert_eq!(stored.tenant, "nordby");
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
    let row = one(
        &mut records,
        "SELECT queue, turns, channel, node FROM calls",
    );
    assert_eq!(
        (row.text(0).unwrap(), row.int(1).unwrap()),
        ("borgerservice".into(), 3)
    );
    assert_eq!(
        (row.text(2).unwrap(), row.text(3).unwrap()),
        ("sip".into(), "a".into())
    );
    records.sms_sent("c1").unwrap();
    assert!(one(&mut records, "SELECT sms_sent FROM calls")
        .bool(0)
        .unwrap());
}

fn a_repeated_call_id_keeps_both_calls(open: Open) {
    let mut records = open("a");
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
    let mut texts =
        |key: &str| -> Option<String> { records.call(key).unwrap().unwrap().turns[0].text.clone() };
    assert_eq!(texts("same").as_deref(), Some("nyt pas"));
    assert_eq!(texts("same#2").as_deref(), Some("storskrald"));
    assert_eq!(texts("same#3").as_deref(), Some("boligstøtte"));
    let n = one(&mut records, "SELECT COUNT(*) FROM calls")
        .int(0)
        .unwrap();
    assert_eq!(n, 3);
}

fn live_calls_hand_finished_calls_and_later_sms_to_the_writer_thread(open: Open) {
    let writer = RecordWriter::spawn(open("a"), Counter::default());
    let live = LiveCalls::with_records(1, writer);
    live.start("a", 1_000, "70101010", "", "da");
    live.said("a", 2.0, "caller", "nyt sundhedskort");
    live.end("a", "resolved");
    live.start("b", 1_000, "70101010", "", "da"); // pushes "a" out of memory
    assert!(live.get("a").is_none());
    live.sms_sent("a");
    let mut reader = open("a");
    let start = std::time::Instant::now();
    loop {
        let sms = reader
            .db
            .query_opt("SELECT sms_sent FROM calls WHERE call_id = 'a'", &[])
            .unwrap()
            .map(|r| r.bool(0).unwrap());
        if sms == Some(true) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "sms_sent {sms:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let a = reader.call("a").unwrap().unwrap();
    assert_eq!((a.outcome.as_str(), a.turns.len()), ("resolved", 1));
}

fn a_call_is_written_turn_by_turn_and_one_cut_off_is_marked_interrupted(open: Open) {
    let writer = RecordWriter::spawn(open("a"), Counter::default());
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
    let mut reader = open("a");
    assert!(
        reader.since(0).unwrap().is_empty(),
        "the dashboard counts finished calls only"
    );
    let row = one(
        &mut reader,
        "SELECT outcome, turns FROM calls WHERE call_id = 'a'",
    );
    let stored = (row.text(0).unwrap(), row.int(1).unwrap());
    assert_eq!(stored, (IN_PROGRESS.to_string(), 2));
    // The next start.
    assert_eq!(reader.mark_interrupted().unwrap(), 1);
    let call = reader.call("a").unwrap().unwrap();
    assert_eq!((call.outcome.as_str(), call.ended), (INTERRUPTED, 1_013));
    let intents: Vec<_> = call.turns.iter().map(|t| t.intent.as_deref()).collect();
    assert_eq!(intents, [Some("pas.nyt"), Some("koerekort.nyt")]);
    let answer = one(&mut reader, "SELECT answer FROM turns WHERE seq = 0")
        .text(0)
        .unwrap();
    assert_eq!(answer, "Pas bestilles på borger.dk.");
    assert_eq!(reader.mark_interrupted().unwrap(), 0);
}

fn failed_writes_are_counted(open: Open) {
    let mut records = open("a");
    records.db.batch("DROP TABLE turns").unwrap();
    let failures = Counter::default();
    let live = LiveCalls::with_records(4, RecordWriter::spawn(records, failures.clone()));
    // Two writes: the call at its start, and at its end (after the first has been
    // tried: a view still waiting would be replaced by the newer one).
    let start = std::time::Instant::now();
    let counted = |n: u64| {
        while failures.get() != n {
            assert!(start.elapsed() < Duration::from_secs(5), "not counted");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    live.start("a", 1_000, "70101010", "", "da");
    counted(1);
    live.end("a", "abandoned");
    counted(2);
}

fn retention_blanks_transcripts_of_old_calls_only(open: Open) {
    assert_eq!(expired(100 * DAY, 30), 70 * DAY);
    let mut records = open("a");
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
    let answers = one(&mut records, "SELECT COUNT(answer) FROM turns")
        .int(0)
        .unwrap();
    assert_eq!(answers, 1, "only the new call keeps the bot's answer");
}

fn every_gateways_calls_are_summarised_and_each_marks_only_its_own(open: Open) {
    let (mut a, mut b) = (open("a"), open("b"));
    let live = LiveCalls::new(4);
    for (id, records) in [("on-a", &mut a), ("on-b", &mut b)] {
        live.start(id, 1_000, "70101010", "", "da");
        live.said(id, 2.0, "caller", "nyt pas");
        records.save(&finished(&live, id)).unwrap();
    }
    live.start("cut-on-b", 1_000, "70101010", "", "da");
    b.save(&live.get("cut-on-b").unwrap()).unwrap();
    let ids: Vec<String> = a.since(0).unwrap().into_iter().map(|c| c.call_id).collect();
    assert_eq!(ids, ["on-a", "on-b"], "finished calls of both gateways");
    // Gateway a restarts: b's call in progress is b's business.
    assert_eq!(open("a").mark_interrupted().unwrap(), 0);
    assert_eq!(open("b").mark_interrupted().unwrap(), 1);
}

on_sqlite_and_postgres!(
    open;
    a_call_is_stored_redacted_with_bot_and_person_turns,
    a_repeated_call_id_keeps_both_calls,
    live_calls_hand_finished_calls_and_later_sms_to_the_writer_thread,
    a_call_is_written_turn_by_turn_and_one_cut_off_is_marked_interrupted,
    failed_writes_are_counted,
    retention_blanks_transcripts_of_old_calls_only,
    every_gateways_calls_are_summarised_and_each_marks_only_its_own,
);

#[test]
fn a_file_from_before_migrations_is_upgraded_in_place() {
    let (_dir, file) = file_from_before_migrations(
        include_str!("../../storage/before_migrations/records.sql"),
        "INSERT INTO calls VALUES ('old', 1000, 1000, '70101010', '', 'da', NULL, 'in_progress', NULL, 0, 0)",
    );
    let mut records = open(&file, "a");
    let row = one(
        &mut records,
        "SELECT channel, node, tenant FROM calls WHERE call_id = 'old'",
    );
    assert_eq!(
        (row.text(0).unwrap(), row.text(1).unwrap()),
        ("sip".into(), String::new())
    );
    assert_eq!(row.text(2).unwrap(), "default", "the one tenant of before");
    assert_eq!(
        records.mark_interrupted().unwrap(),
        1,
        "a call of this file's own gateway"
    );
}

/// Another process holds the file's write lock past the busy timeout: the writes
/// wait and are written once it lets go, the newest view of each call.
#[test]
fn writes_wait_while_the_file_is_locked_and_none_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Sqlite(dir.path().join("db.sqlite"));
    let failures = Counter::default();
    let writer = RecordWriter::spawn(open(&backend, "a"), failures.clone());
    let mut locker = crate::storage::Db::open(&backend).unwrap();
    locker.batch("BEGIN EXCLUSIVE").unwrap();
    let live = LiveCalls::with_records(4, writer.clone());
    live.start("a", 1_000, "70101010", "", "da");
    live.said("a", 4.0, "caller", "nyt pas");
    live.end("a", "resolved");
    live.start("b", 1_000, "70101010", "", "da");
    live.end("b", "abandoned");
    // Past the 5 s busy timeout: the first write has failed once by now.
    std::thread::sleep(Duration::from_millis(5_500));
    locker.batch("COMMIT").unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(writer.flush());
    let mut reader = open(&backend, "a");
    let a = reader.call("a").unwrap().expect("call a written");
    assert_eq!((a.outcome.as_str(), a.turns.len()), ("resolved", 1));
    assert!(reader.call("b").unwrap().is_some(), "call b written");
    assert_eq!(failures.get(), 0, "nothing lost");
}
