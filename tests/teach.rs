//! Staff teach the bot, end to end: a real call the bot cannot answer, the teach page
//! in headless Chromium (log in, see the question, attach it to the right intent,
//! preview, publish), a new call that now gets the answer, a roll-back that takes it
//! away again, and the dashboard's charts drawn from those calls.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

const ENGLISH_LINE: &str = "[stt]\nlanguage = \"en\"\n";
const TOKEN: &str = "t0k3n-for-staff";
/// The knowledge base has weddings at the town hall, but not in these words, nor any
/// its audio scoring can find ("I want to tie the knot at the town hall" it now
/// answers): the bot asks back about something else.
const QUESTION: &str = "My sweetheart and I want to tie the knot.";
const INTENT: &str = "borgerservice.vielse";

/// The question as a caller says it: espeak-ng English (the voice of the English
/// fixtures), 8 kHz, after the greeting.
fn question_wav(dir: &Path) -> PathBuf {
    let speech = reference_speech(QUESTION, "en");
    let mut pcm = vec![0i16; 8000 * 8];
    pcm.extend(speech);
    pcm.extend(vec![0i16; 8000 * 4]);
    let path = dir.join("tie-the-knot.wav");
    voicebot_gateway::audio::wav::write_i16(&path, &pcm, 8000).unwrap();
    path
}

/// The first caller turn of a stored call: (text, intent, answered).
type Turn = (String, Option<String>, bool);

/// Calls the gateway with the question and waits for the call to be recorded as
/// finished; its id and first caller turn.
fn ask(gw: &Gateway, wav: &Path) -> (String, Turn) {
    let before = finished_calls(&gw.records()).len();
    let rec = gw.dir.path().join("reply.wav");
    // Room for a slow transcript on a busy machine: a call hung up before its
    // transcript is ready is recorded without the caller's turn.
    call_recording(gw, wav, &rec, &["--hangup-after", "30"]);
    let start = Instant::now();
    loop {
        let calls = finished_calls(&gw.records());
        if calls.len() > before {
            let id = calls.last().unwrap().clone();
            let db = rusqlite::Connection::open(gw.records()).unwrap();
            let turn = db
                .query_row(
                    "SELECT text, intent, answered FROM turns WHERE call_id = ?1 \
                     AND answered_by = 'bot' AND text IS NOT NULL ORDER BY seq LIMIT 1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap_or_else(|e| panic!("call {id} has no caller turn: {e}"));
            return (id, turn);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "call not recorded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn finished_calls(records: &Path) -> Vec<String> {
    let Ok(db) = rusqlite::Connection::open(records) else {
        return Vec::new();
    };
    let Ok(mut q) =
        db.prepare("SELECT call_id FROM calls WHERE outcome != 'in_progress' ORDER BY started")
    else {
        return Vec::new();
    };
    q.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn api(gw: &Gateway, method: &str, path: &str, json: Option<&str>) -> (u16, serde_json::Value) {
    let (status, body) = http_request(
        gw.http,
        method,
        path,
        Some(&format!("Bearer {TOKEN}")),
        json,
    );
    let value = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    (status, value)
}

/// Bad input gets a clear 4xx naming the problem, and the draft stays empty.
fn bad_input_is_refused(gw: &Gateway) {
    let example = |intent: &str, body: &str| {
        api(
            gw,
            "POST",
            &format!("/api/kb/intents/{intent}/examples"),
            Some(body),
        )
    };
    let cases = [
        (
            example("affald.nope", r#"{"lang":"en","text":"x"}"#),
            404,
            "affald.nope",
        ),
        (
            example(INTENT, r#"{"lang":"en","text":"  "}"#),
            422,
            "text is empty",
        ),
        (example(INTENT, r#"{"lang":"sv","text":"x"}"#), 422, "lang"),
        (
            example(
                INTENT,
                &format!(r#"{{"lang":"en","text":"{}"}}"#, "a".repeat(201)),
            ),
            422,
            "too long",
        ),
        (example(INTENT, "{oops"), 400, "JSON"),
        (
            api(
                gw,
                "POST",
                "/api/kb/publish",
                Some(r#"{"author":"A","why":"B"}"#),
            ),
            409,
            "empty",
        ),
        (
            api(
                gw,
                "POST",
                "/api/kb/rollback/x",
                Some(r#"{"author":"A","why":"B"}"#),
            ),
            400,
            "number",
        ),
        (
            api(
                gw,
                "POST",
                "/api/kb/rollback/9",
                Some(r#"{"author":"A","why":"B"}"#),
            ),
            404,
            "9",
        ),
    ];
    for ((status, body), want, says) in cases {
        assert_eq!(status, want, "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(says),
            "{want}: {error:?} does not say {says:?}"
        );
    }
    let huge = format!(r#"{{"lang":"en","text":"{}"}}"#, "a".repeat(70_000));
    assert_eq!(example(INTENT, &huge).0, 413);
    let (status, draft) = api(gw, "GET", "/api/kb/draft", None);
    assert_eq!((status, draft["what"].as_array().unwrap().len()), (200, 0));
    let (status, doc) = api(gw, "GET", "/api/openapi.json", None);
    assert_eq!(status, 200);
    assert!(doc["paths"]["/api/kb/rollback/{version}"].is_object());
    let (status, _) = http_get(gw.http, "/api/unresolved", None);
    assert_eq!(status, 401, "staff only");
}

#[test]
fn staff_teach_the_bot_a_missed_question_in_the_browser_and_roll_it_back() {
    let kb_dir = tempfile::tempdir().unwrap();
    let kb = kb_dir.path().join("kommune.toml");
    std::fs::write(&kb, voicebot_gateway::intent::kb::EMBEDDED).unwrap();
    let gw = Gateway::start(&format!(
        "{ENGLISH_LINE}[intent]\nkb = {kb:?}\n[http]\ndashboard_token = \"{TOKEN}\"\n"
    ));
    bad_input_is_refused(&gw);
    let wav = question_wav(gw.dir.path());

    let (missed, (heard, intent, answered)) = ask(&gw, &wav);
    assert!(
        !answered && intent.as_deref() != Some(INTENT),
        "the bot already knows {heard:?} ({intent:?}): the test proves nothing"
    );

    let mut page = Browser::open(gw.dir.path(), &format!("http://{}/login", gw.http), &[]);
    page.login(TOKEN, "/teach");
    let row = format!("document.querySelector('.question[data-call-id=\"{missed}\"]')");
    page.wait_for(&format!("!!{row}"), Duration::from_secs(20));
    let shown = page.eval(&format!("{row}.querySelector('input.example').value"));
    assert_eq!(shown.as_str(), Some(heard.as_str()));

    // Attach it to the right intent as an English example.
    page.eval(&format!(
        "{row}.querySelector('select.intent').value = '{INTENT}';\
         {row}.querySelector('select.lang').value = 'en';\
         {row}.querySelector('button.attach').click()"
    ));
    page.wait_for(
        &format!("document.getElementById('draft-what').textContent.includes('{INTENT}')"),
        Duration::from_secs(10),
    );

    // The preview lists the call as answered differently: by the intent, now.
    page.eval("document.getElementById('preview-button').click()");
    let changed = format!("document.querySelector('#preview-rows tr[data-call-id=\"{missed}\"]')");
    page.wait_for(&format!("!!{changed}"), Duration::from_secs(20));
    let after = page.eval(&format!("{changed}.querySelector('td.added').textContent"));
    let after = after.as_str().unwrap();
    assert!(after.starts_with(&format!("ANSWER {INTENT}")), "{after}");
    let shot = repo().join("target/teach.png");
    page.screenshot("html", &shot);
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    page.eval(
        "document.getElementById('author').value = 'Anne';\
         document.getElementById('why').value = 'Callers say tie the knot';\
         document.getElementById('publish-button').click()",
    );
    page.wait_for(
        "document.getElementById('message').textContent.includes('Udgivet som version 1')",
        Duration::from_secs(20),
    );
    let overlay = std::fs::read_to_string(kb_dir.path().join("kommune.overlay.toml")).unwrap();
    assert!(
        overlay.contains(&heard) && overlay.contains(INTENT),
        "{overlay}"
    );
    assert_eq!(
        std::fs::read_to_string(&kb).unwrap(),
        voicebot_gateway::intent::kb::EMBEDDED,
        "the knowledge base file stays as it was"
    );

    // A new call asking the same gets the answer.
    let (_, (heard_again, intent, answered)) = ask(&gw, &wav);
    assert!(
        answered && intent.as_deref() == Some(INTENT),
        "after publishing, {heard_again:?} was taken as {intent:?} (answered: {answered})"
    );

    // Roll back to version 0 from the history (the page lists it since the publish):
    // the bot asks back again.
    let rollback = "document.querySelector('button.rollback[data-version=\"0\"]')";
    page.wait_for(&format!("!!{rollback}"), Duration::from_secs(20));
    page.eval(&format!(
        "document.getElementById('author').value = 'Bo';\
         document.getElementById('why').value = 'checking the roll-back';\
         {rollback}.click()"
    ));
    page.wait_for(
        "document.getElementById('message').textContent.includes('Rullet tilbage til version 0')",
        Duration::from_secs(20),
    );
    let (_, (_, intent, answered)) = ask(&gw, &wav);
    assert!(
        !answered && intent.as_deref() != Some(INTENT),
        "after the roll-back the bot still answers {intent:?}"
    );
    let (_, history) = api(&gw, "GET", "/api/kb/history", None);
    let versions: Vec<(u64, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["author"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [(2, "Bo"), (1, "Anne"), (0, "")]);
    drop(page);

    // The dashboard's charts count the three calls.
    let mut dash = Browser::open(gw.dir.path(), &format!("http://{}/login", gw.http), &[]);
    dash.login(TOKEN, "/");
    let calls_drawn = "[...document.querySelectorAll('#calls-chart rect[data-series]')]\
                       .reduce((n, r) => n + Number(r.dataset.value), 0)";
    dash.wait_for(&format!("{calls_drawn} === 3"), Duration::from_secs(20));
    dash.wait_for(
        "document.querySelectorAll('#latency-chart rect[data-series]').length > 0 && \
         document.querySelectorAll('#resolution-chart circle').length > 0 && \
         !!document.querySelector('#sms-chart svg')",
        Duration::from_secs(20),
    );
    let shot = repo().join("target/charts.png");
    dash.screenshot("#charts", &shot);
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    // The range selector redraws for a month: the same three calls.
    dash.eval("document.querySelector('#range button[data-range=\"month\"]').click()");
    dash.wait_for(
        &format!(
            "document.querySelectorAll('#calls-chart text').length > 12 && \
             [...document.querySelectorAll('#calls-chart rect[data-series]')].every((r) => r.dataset.bin.includes('/')) && \
             {calls_drawn} === 3"
        ),
        Duration::from_secs(20),
    );
}
