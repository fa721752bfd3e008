//! What ops staff see, end to end: call records in SQLite (redacted), the metrics a
//! Prometheus scrape gets (checked by promtool), and the dashboard as a real browser
//! (headless Chromium) renders it while a call runs and after it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const ENGLISH_LINE: &str = "[stt]\nlanguage = \"en\"\n";

/// One stored call: (call id, outcome, turns count) and its turns (text, answered_by).
type Stored = ((String, String, i64), Vec<(Option<String>, String)>);

/// Waits for the one call in the records file to be recorded as finished (a call is
/// written from its start, as `in_progress`).
fn stored_call(records: &Path) -> Stored {
    let start = Instant::now();
    loop {
        if let Some(found) = read_call(records) {
            return found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no call record in {}",
            records.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn read_call(records: &Path) -> Option<Stored> {
    let db = rusqlite::Connection::open(records).ok()?;
    let call: (String, String, i64) = db
        .query_row(
            "SELECT call_id, outcome, turns FROM calls WHERE outcome != 'in_progress'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .ok()?;
    let mut q = db
        .prepare("SELECT text, answered_by FROM turns WHERE call_id = ?1 ORDER BY seq")
        .ok()?;
    let turns = q
        .query_map([&call.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .ok()?
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some((call, turns))
}

/// The redacted transcript the gateway logged for the caller's utterance.
fn logged_transcript(gw: &Gateway) -> String {
    const NEEDLE: &str = ": transcript text=";
    let log = gw.wait_for_log(NEEDLE, Duration::from_secs(60));
    let line = log
        .lines()
        .find(|l| l.contains(NEEDLE))
        .expect("a transcript line");
    line.split("text=")
        .nth(1)
        .and_then(|rest| rest.split(" confidence=").next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_call_is_recorded_redacted_counted_and_the_metrics_pass_promtool() {
    let gw = Gateway::start(ENGLISH_LINE);
    // "... my CPR number is one two zero three four five, one two three four."
    let question = padded_fixture(gw.dir.path(), "en-cpr-case-status", 11.0, 4.0);
    let rec = gw.dir.path().join("reply.wav");
    call_recording(&gw, &question, &rec, &["--hangup-after", "30"]);
    let transcript = logged_transcript(&gw);
    let ((call_id, outcome, turns), stored) = stored_call(&gw.records());
    assert!(!call_id.is_empty());
    assert_eq!(turns, stored.len() as i64);
    let caller_text: Vec<&str> = stored.iter().filter_map(|(t, _)| t.as_deref()).collect();
    assert!(!caller_text.is_empty(), "no caller turn stored: {stored:?}");
    let cpr = regex::Regex::new(r"\d{6}[- ]?\d{4}|\d{10}").unwrap();
    for text in &caller_text {
        assert!(!cpr.is_match(text), "CPR number stored: {text:?}");
        assert!(!text.contains("120345"), "CPR digits stored: {text:?}");
    }
    if transcript.contains("[CPR]") {
        assert!(
            caller_text.iter().any(|t| t.contains("[CPR]")),
            "whisper wrote digits ({transcript:?}) but the record has no [CPR]: {caller_text:?}"
        );
    }
    assert!(
        stored.iter().all(|(_, by)| by == "bot" || by == "person"),
        "{stored:?}"
    );
    assert_eq!(
        gw.metric(&format!(
            "voicebot_calls_total{{outcome=\"{outcome}\",tenant=\"default\"}}"
        )),
        Some(1.0),
        "the stored outcome {outcome} is counted once"
    );
    assert_eq!(gw.metric("voicebot_call_record_failures_total"), Some(0.0));

    let (status, scraped) = gw.http_get("/metrics");
    assert_eq!(status, 200);
    let path = gw.dir.path().join("metrics.txt");
    std::fs::write(&path, &scraped).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < {}", path.display()))
        .output()
        .expect("run promtool (Debian package prometheus)");
    assert!(
        out.status.success(),
        "promtool: {}{}\n{scraped}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = gw.http_get("/readyz");
    assert_eq!((status, body.as_str()), (200, "ready"));
}

/// Where the last word of `en-bulky-waste` ends (its file goes on in near silence to 5.17 s).
const LAST_WORD_ENDS: f32 = 4.14;

/// "Can you collect a broken washing machine and an old wardrobe?" on a call that
/// hangs up `after` seconds into it; the gateway and the transcript it logged.
fn hang_up_into_the_bulky_waste_question(after: f32) -> (Gateway, String) {
    let gw = Gateway::start(ENGLISH_LINE);
    let lead = 10.0;
    let question = padded_fixture(gw.dir.path(), "en-bulky-waste", lead, 2.0);
    let hangup = format!("{:.2}", lead + after);
    let rec = gw.dir.path().join("reply.wav");
    call_recording(&gw, &question, &rec, &["--hangup-after", &hangup]);
    let transcript = logged_transcript(&gw);
    (gw, transcript)
}

/// The call is recorded as abandoned, with the caller's words as its one turn.
fn assert_abandoned_with_the_words(gw: &Gateway, transcript: &str) {
    let ((_, outcome, _), stored) = stored_call(&gw.records());
    assert_eq!(outcome, "abandoned");
    let caller: Vec<&str> = stored.iter().filter_map(|(t, _)| t.as_deref()).collect();
    assert_eq!(caller, vec![transcript.trim()], "{stored:?}");
    assert!(
        transcript.to_lowercase().contains("washing machine"),
        "{transcript:?}"
    );
}

#[test]
fn a_caller_who_hangs_up_before_the_answer_is_recorded_with_their_words() {
    // Hang up 0.6 s after the last word: its utterance has ended (0.4 s of silence),
    // and its recognition (about a second here) is still under way. (At 0.6 s after
    // the file's end, 1.6 s after the last word, a partial decode sometimes answered
    // first.)
    let (gw, transcript) = hang_up_into_the_bulky_waste_question(LAST_WORD_ENDS + 0.6);
    let log = gw.log();
    let (ended, heard) = (log.find("call ended"), log.find(": transcript text="));
    assert!(
        ended.is_some() && ended < heard,
        "the words must be recognised after the hang-up for this test to mean anything:\n{log}"
    );
    assert_abandoned_with_the_words(&gw, &transcript);
}

#[test]
fn a_caller_who_hangs_up_mid_sentence_is_recorded_with_what_they_said() {
    // The line closes in the last words: no silence ever ends the utterance.
    let (gw, transcript) = hang_up_into_the_bulky_waste_question(LAST_WORD_ENDS - 0.6);
    assert_abandoned_with_the_words(&gw, &transcript);
}

/// Headless Chromium on a page (see `common::browser`): the page runs `settle` in
/// real time, then its DOM is read and, if asked, a screenshot is written. With
/// `login`, the page (`/login`) first posts that token to `/login` and goes to `/`
/// with the session cookie it got.
fn chromium(
    dir: &Path,
    url: &str,
    settle: Duration,
    screenshot: Option<&Path>,
    login: Option<&str>,
) -> String {
    let mut browser = Browser::open(dir, url, &[]);
    std::thread::sleep(settle);
    if let Some(token) = login {
        browser.login(token, "/");
        std::thread::sleep(settle);
    }
    let dom = browser.dom();
    if let Some(path) = screenshot {
        browser.screenshot("html", path);
    }
    dom
}

#[test]
fn the_dashboard_shows_the_live_call_and_then_the_totals() {
    let token = "t0k3n-for-staff";
    let gw = Gateway::start(&format!(
        "{ENGLISH_LINE}[http]\ndashboard_token = \"{token}\"\n"
    ));
    let (status, _) = gw.http_get("/");
    assert_eq!(status, 401, "no token");
    let (status, _) = http_get(gw.http, "/api/summary", Some("Bearer wrong"));
    assert_eq!(status, 401, "wrong token");
    let (status, _) = gw.http_get("/metrics");
    assert_eq!(status, 200, "metrics stay open");

    let question = padded_fixture(gw.dir.path(), "en-cpr-case-status", 8.0, 0.0);
    let rec = gw.dir.path().join("reply.wav");
    let caller = {
        let (uri, question, rec) = (gw.uri(), question.clone(), rec.clone());
        std::thread::spawn(move || {
            voicebot_call(&[
                &uri,
                "--play",
                &question.display().to_string(),
                "--record",
                &rec.display().to_string(),
                "--hangup-after",
                "35",
            ])
        })
    };
    // While the call runs: the caller's words are on the page.
    let transcript = logged_transcript(&gw);
    let url = format!("http://{}/login", gw.http);
    let during = chromium(
        gw.dir.path(),
        &url,
        Duration::from_secs(2),
        None,
        Some(token),
    );
    assert!(
        !caller.is_finished(),
        "the call ended before the page was read"
    );
    assert!(
        during.contains("i gang"),
        "no live call on the page:\n{during}"
    );
    let first_words: String = transcript.chars().take(20).collect();
    assert!(
        during.contains(first_words.trim()),
        "the live transcript {transcript:?} is not on the page:\n{during}"
    );
    caller.join().expect("the call");
    let ((call_id, outcome, _), _) = stored_call(&gw.records());
    assert_eq!(recorded_channels(&gw.records()), ["sip"]);
    assert!(during.contains(&call_id), "call {call_id} not on the page");

    // After the call: the 24-hour totals count it.
    let shot = repo().join("target/dashboard.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let after = chromium(
        gw.dir.path(),
        &url,
        Duration::from_secs(2),
        Some(&shot),
        Some(token),
    );
    assert!(after.contains("id=\"calls\">1<"), "totals:\n{after}");
    assert!(after.contains(&outcome), "outcome {outcome}:\n{after}");
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "screenshot"
    );
}

#[test]
fn json_logs_a_metrics_listener_and_not_ready_while_the_remote_intent_service_is_down() {
    let dead = free_port();
    let metrics: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let gw = Gateway::start(&format!(
        "[log]\nformat = \"json\"\n[intent]\nendpoint = \"http://127.0.0.1:{dead}\"\n[http]\nmetrics_listen = \"{metrics}\"\n"
    ));
    let (status, body) = http_get(metrics, "/metrics", None);
    assert_eq!(status, 200);
    assert!(body.contains("voicebot_calls_active"), "{body}");
    let (status, _) = http_get(metrics, "/", None);
    assert_eq!(status, 404, "the metrics listener serves no staff pages");
    let log = gw.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    let (status, reason) = gw.http_get("/readyz");
    assert_eq!(status, 503, "{reason}");
    assert!(reason.contains("intent service"), "{reason}");
    let (status, _) = gw.http_get("/healthz");
    assert_eq!(status, 200, "alive, just not ready");
}

#[test]
fn metrics_can_require_the_token() {
    let gw =
        Gateway::start("[http]\ndashboard_token = \"scrape-me\"\nmetrics_token_required = true\n");
    let (status, _) = gw.http_get("/metrics");
    assert_eq!(status, 401, "no token");
    let (status, _) = http_get(gw.http, "/metrics", Some("Bearer wrong"));
    assert_eq!(status, 401, "wrong token");
    let (status, body) = http_get(gw.http, "/metrics", Some("Bearer scrape-me"));
    assert_eq!(status, 200);
    assert!(body.contains("voicebot_calls_active"), "{body}");
    let (status, _) = gw.http_get("/healthz");
    assert_eq!(status, 200, "health checks stay open");
}

/// Reads until the server closes the connection (or `limit` passes): what it sent.
fn read_until_closed(s: &mut std::net::TcpStream, limit: Duration) -> Option<String> {
    use std::io::Read;
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&got).into_owned())
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn slow_and_idle_http_clients_are_cut_off_and_connections_are_capped() {
    use std::io::Write;
    use std::net::TcpStream;
    let gw = Gateway::start("[http]\nheader_timeout_secs = 1\nmax_connections = 3\n");
    // Headers that never end (slowloris): closed after the header timeout.
    let mut slow = TcpStream::connect(gw.http).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
        .unwrap();
    let t0 = std::time::Instant::now();
    let got = read_until_closed(&mut slow, Duration::from_secs(5));
    assert!(got.is_some(), "still open after 5 s");
    assert!(!got.unwrap().contains("200 OK"));
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    // A keep-alive connection is answered, then closed once idle that long.
    let mut idle = TcpStream::connect(gw.http).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let t0 = std::time::Instant::now();
    let got = read_until_closed(&mut idle, Duration::from_secs(5)).expect("closed when idle");
    assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    // Three connections open: a fourth is closed at once, answered nothing.
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(gw.http).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fourth = TcpStream::connect(gw.http).unwrap();
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok();
    let got = read_until_closed(&mut fourth, Duration::from_millis(800));
    assert_eq!(got.as_deref(), Some(""), "the fourth connection was served");
    // Once the idle ones are cut off, there is room again.
    drop(held);
    std::thread::sleep(Duration::from_millis(1500));
    let (status, _) = gw.http_get("/healthz");
    assert_eq!(status, 200);
}

/// One raw HTTP/1.1 exchange: the whole response (status line, headers, body).
fn http_raw(addr: std::net::SocketAddr, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok();
    resp
}

#[test]
fn staff_pages_need_a_session_from_login_never_a_token_in_the_url() {
    let token = "t0k3n-for-staff";
    let gw = Gateway::start(&format!("[http]\ndashboard_token = \"{token}\"\n"));
    let get = |path: &str, cookie: &str| {
        http_raw(
            gw.http,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{cookie}Connection: close\r\n\r\n"),
        )
    };
    let status = |resp: &str| resp.split(' ').nth(1).unwrap_or("").to_string();
    assert_eq!(status(&get("/", "")), "401", "no session");
    assert_eq!(status(&get("/switchboard", "")), "401", "no session");
    assert_eq!(
        status(&get(&format!("/?token={token}"), "")),
        "401",
        "a token in the URL is not taken"
    );
    let login_page = get("/login", "");
    assert_eq!(status(&login_page), "200");
    assert!(login_page.contains("name=\"token\""), "{login_page}");
    let login = |given: &str| {
        let body = format!("token={given}");
        http_raw(
            gw.http,
            &format!(
                "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    let wrong = login("guess");
    assert_eq!(status(&wrong), "401", "{wrong}");
    assert!(
        !wrong.to_ascii_lowercase().contains("set-cookie"),
        "{wrong}"
    );
    let ok = login(token);
    assert_eq!(status(&ok), "303", "{ok}");
    let cookie = ok
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(token),
        "the cookie is not the token: {cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let with = |c: &str| format!("Cookie: {c}\r\n");
    assert_eq!(status(&get("/", &with(pair))), "200");
    assert_eq!(status(&get("/api/summary", &with(pair))), "200");
    let forged = format!("voicebot_session={}", "ab".repeat(32));
    assert_eq!(
        status(&get("/", &with(&forged))),
        "401",
        "a made-up session"
    );
    let (code, _) = http_get(gw.http, "/", Some(&format!("Bearer {token}")));
    assert_eq!(code, 200, "scripts still send the token in a header");
}

#[test]
fn with_a_certificate_the_staff_pages_are_served_over_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let gw = Gateway::start(&format!(
        "[http]\ntls_cert = \"{}\"\ntls_key = \"{}\"\ndashboard_token = \"staff\"\n",
        cert.display(),
        key.display()
    ));
    let curl = |url: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .arg("--cacert")
            .arg(&cert)
            .arg(url)
            .output()
            .expect("curl (apt package curl)");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // The certificate is checked (not skipped) and the pages answer over TLS.
    assert_eq!(
        curl(&format!("https://127.0.0.1:{}/healthz", gw.http.port())),
        "200"
    );
    assert_eq!(
        curl(&format!("https://127.0.0.1:{}/login", gw.http.port())),
        "200"
    );
    // Plain HTTP on the same port gets no page.
    assert_eq!(
        curl(&format!("http://127.0.0.1:{}/healthz", gw.http.port())),
        "000"
    );
    // The session cookie of a login over HTTPS is never sent over plain HTTP.
    let login = std::process::Command::new("curl")
        .args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "--cacert",
        ])
        .arg(&cert)
        .args(["--data", "token=staff"])
        .arg(format!("https://127.0.0.1:{}/login", gw.http.port()))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&login.stdout).to_lowercase();
    let cookie = headers
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("{headers}"));
    assert!(
        cookie.contains("secure") && cookie.contains("httponly"),
        "{cookie}"
    );
}

#[test]
fn repeated_wrong_logins_lock_the_address_out_with_a_fail2ban_line() {
    let token = "t0k3n-for-staff";
    let gw = Gateway::start(&format!("[http]\ndashboard_token = \"{token}\"\n"));
    // curl from a chosen loopback address; the status code and headers come back.
    let login = |from: &str, given: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", "--interface", from])
            .args(["--data", &format!("token={given}")])
            .arg(format!("http://{}/login", gw.http))
            .output()
            .expect("curl (apt package curl)");
        String::from_utf8_lossy(&out.stdout).to_lowercase()
    };
    let status = |resp: &str| resp.split(' ').nth(1).unwrap_or("").to_string();
    for i in 0..5 {
        assert_eq!(status(&login("127.0.0.1", "guess")), "401", "guess {i}");
    }
    let locked = login("127.0.0.1", token);
    assert_eq!(status(&locked), "429", "even the right token: {locked}");
    assert!(locked.contains("retry-after: "), "{locked}");
    assert!(!locked.contains("set-cookie"), "{locked}");
    let log = gw.wait_for_log(
        "dashboard login refused: 127.0.0.1 (429, locked out)",
        Duration::from_secs(5),
    );
    // The shipped fail2ban filter (each of its failregex lines) finds the address.
    let filter = std::fs::read_to_string(repo().join("contrib/fail2ban/voicebot.conf")).unwrap();
    let mut lines = filter
        .lines()
        .skip_while(|l| !l.starts_with("failregex = "));
    let first = lines.next().unwrap().trim_start_matches("failregex = ");
    let more = lines.take_while(|l| l.starts_with(' '));
    let hosts: Vec<String> = std::iter::once(first)
        .chain(more)
        .map(|p| {
            regex::Regex::new(&p.trim().replace("<HOST>", r"(?P<host>[0-9A-Fa-f.:]+)")).unwrap()
        })
        .flat_map(|re| {
            log.lines()
                .filter_map(|l| re.captures(l).map(|c| c["host"].to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(hosts, ["127.0.0.1"], "one line per lockout:\n{log}");
    // Another address is not locked out.
    assert_eq!(status(&login("127.0.0.2", token)), "303");
}
