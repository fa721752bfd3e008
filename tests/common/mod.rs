//! Shared test harness: starts the real `voicebot` binary, runs real peers (sipp,
//! baresip), and reads what the gateway exposes. Every wait is bounded.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod browser;
mod envelope;
mod kamailio;
mod sip;
mod turn;
#[allow(unused_imports)] // not every test binary drives a browser
pub use browser::Browser;
#[allow(unused_imports)] // not every test binary listens to what was said
pub use envelope::*;
#[allow(unused_imports)] // only the scale-out tests put Kamailio in front
pub use kamailio::*;
#[allow(unused_imports)] // not every test binary speaks SIP itself
pub use sip::*;
#[allow(unused_imports)] // only a web call test relays through TURN
pub use turn::Coturn;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_voicebot")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A port free for both UDP and TCP on loopback.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

pub struct Gateway {
    child: Child,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Gateway {
    /// Starts `voicebot serve` with the given extra TOML appended to a config that
    /// puts SIP and HTTP on free loopback ports. English is spoken by espeak-ng (as the
    /// references below are) unless the test asks for `[tts.en] engine = "piper"`: warming
    /// every English answer in the neural voice costs a core for ~80 s per gateway.
    ///
    /// A free port can be taken by another test between our probe and the gateway's
    /// bind: then the gateway stops with "Address already in use", and is started
    /// again on other ports (at most three times).
    pub fn start(extra_toml: &str) -> Gateway {
        for _ in 0..2 {
            let gw = Gateway::spawn(free_port(), extra_toml);
            let (which, _) = gw.wait_for_any(
                &["voicebot listening", "Address already in use"],
                Duration::from_secs(120),
            );
            if which == 0 {
                return gw;
            }
            eprintln!("a port was taken before the gateway bound it: starting again");
        }
        Gateway::start_on(free_port(), extra_toml)
    }

    /// As [`Gateway::start`], with SIP on this port (a gateway started again where a
    /// SIP front expects it).
    pub fn start_on(sip_port: u16, extra_toml: &str) -> Gateway {
        let gw = Gateway::spawn(sip_port, extra_toml);
        gw.wait_for_log("voicebot listening", Duration::from_secs(120));
        gw
    }

    fn spawn(sip_port: u16, extra_toml: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let http_port = free_port();
        let records = dir.path().join("records.sqlite");
        let base = format!(
            "[sip]\nlisten = \"127.0.0.1:{sip_port}\"\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n[rtp]\nports = \"40000-49999\"\n[privacy]\nrecord_path = {records:?}\n[tts.en]\nengine = \"espeak\"\n"
        );
        let config = merge_toml(&base, extra_toml);
        let cfg_path = dir.path().join("voicebot.toml");
        std::fs::write(&cfg_path, config).unwrap();
        let log = dir.path().join("serve.log");
        let child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&cfg_path)
            // GATEWAY_LOG: another filter, to see one module's debug lines in a test.
            .env(
                "RUST_LOG",
                std::env::var("GATEWAY_LOG").unwrap_or("info,rsipstack=warn,webrtc=warn".into()),
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .current_dir(repo())
            .spawn()
            .expect("start voicebot serve");
        Gateway {
            child,
            sip: format!("127.0.0.1:{sip_port}").parse().unwrap(),
            http: format!("127.0.0.1:{http_port}").parse().unwrap(),
            dir,
            log,
        }
    }

    pub fn log(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        strip_ansi(&raw)
    }

    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> String {
        self.wait_for_any(&[needle], limit).1
    }

    /// Waits until the log shows one of `needles`; returns which, and the log.
    pub fn wait_for_any(&self, needles: &[&str], limit: Duration) -> (usize, String) {
        let start = Instant::now();
        loop {
            let log = self.log();
            if let Some(i) = needles.iter().position(|n| log.contains(n)) {
                return (i, log);
            }
            assert!(
                start.elapsed() < limit,
                "gateway log never showed {needles:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path, None)
    }

    /// The value of a metric line exactly named (with labels, if any).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.http_get("/metrics");
        body.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|v| v.strip_prefix(' '))
                .map(|v| v.trim().parse().unwrap())
        })
    }

    /// Waits until a metric reaches the given value.
    pub fn wait_metric(&self, name: &str, want: f64, limit: Duration) {
        let start = Instant::now();
        loop {
            let got = self.metric(name);
            if got == Some(want) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "{name} stayed at {got:?}, wanted {want}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The call records file (SQLite) this gateway writes.
    pub fn records(&self) -> PathBuf {
        self.dir.path().join("records.sqlite")
    }

    pub fn uri(&self) -> String {
        format!("sip:bot@{}", self.sip)
    }
}

impl Gateway {
    /// Sends a signal ("TERM", "INT", "KILL") to the gateway process.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits for the process to exit by itself (panics after `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "gateway still running after {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        if std::thread::panicking() {
            eprintln!("--- gateway log ---\n{}", self.log());
        }
    }
}

/// Joins two TOML texts table by table, so a test can add keys to a table the base
/// config already opened, or give a key of the base another value.
fn merge_toml(base: &str, extra: &str) -> String {
    let mut tables: Vec<(String, String)> = Vec::new();
    for text in [base, extra] {
        let mut current = String::new();
        // The group lines go to: a `[table]` given twice is one, but each `[[array]]`
        // header starts an element of its own (e.g. two `[[tenants]]`).
        let mut at: Option<usize> = None;
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with('[') {
                current = t.to_string();
                let same = tables.iter().position(|(h, _)| *h == current);
                at = match same {
                    Some(i) if !current.starts_with("[[") => Some(i),
                    _ => {
                        tables.push((current.clone(), String::new()));
                        Some(tables.len() - 1)
                    }
                };
            } else if !t.is_empty() {
                let i = *at.get_or_insert_with(|| {
                    tables
                        .iter()
                        .position(|(h, _)| *h == current)
                        .unwrap_or_else(|| {
                            tables.push((current.clone(), String::new()));
                            tables.len() - 1
                        })
                });
                let entry = &mut tables[i];
                let key = |l: &str| l.split('=').next().unwrap_or("").trim().to_string();
                if !current.starts_with("[[") && t.contains('=') {
                    let kept: Vec<&str> = entry.1.lines().filter(|l| key(l) != key(t)).collect();
                    entry.1 = kept.iter().map(|l| format!("{l}\n")).collect();
                }
                entry.1 += line;
                entry.1 += "\n";
            }
        }
    }
    tables
        .into_iter()
        .map(|(h, body)| format!("{h}\n{body}"))
        .collect()
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn http_get(addr: SocketAddr, path: &str, auth: Option<&str>) -> (u16, String) {
    http_request(addr, "GET", path, auth, None)
}

/// One HTTP/1.1 request, with a JSON body if given: (status, response body).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    json: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let body = json
        .map(|j| {
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{j}",
                j.len()
            )
        })
        .unwrap_or_else(|| "\r\n".into());
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n{body}"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok();
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Runs `voicebot call` and parses its JSON report.
pub fn voicebot_call(args: &[&str]) -> serde_json::Value {
    let out = Command::new("timeout")
        .arg("120")
        .arg(bin())
        .arg("call")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run voicebot call");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "voicebot call failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("bad JSON {stdout:?}: {e}"))
}

pub fn read_wav_8k(path: &Path) -> Vec<i16> {
    voicebot_gateway::audio::wav::read_at(path, 8000).expect("read wav")
}

/// Runs baresip headless: `mic` is its microphone, it dials `target` and records what
/// it hears; returns the recording (8 kHz) once it hung up at the end of `mic`.
pub fn baresip_call(dir: &Path, mic: &Path, target: &str, limit_secs: u32) -> Vec<i16> {
    baresip_call_with(dir, mic, target, limit_secs, &Baresip::default())
}

/// More of baresip's configuration than the plain call's.
#[derive(Default)]
pub struct Baresip {
    /// Lines added to its `config`, before the modules (a media encryption module
    /// must be loaded before the accounts that name it).
    pub config: String,
    /// Parameters added to its account (`;mediaenc=srtp-mand`).
    pub account: String,
}

/// As [`baresip_call`], configured further.
pub fn baresip_call_with(
    dir: &Path,
    mic: &Path,
    target: &str,
    limit_secs: u32,
    more: &Baresip,
) -> Vec<i16> {
    // baresip binds UDP+TCP on its port and TLS on the next one; another test may take
    // a port between our probe and baresip's bind, so a clash is retried on fresh ports.
    let mut out = None;
    for _ in 0..3 {
        let attempt = run_baresip(dir, mic, target, limit_secs, free_port_pair(), more);
        let clash = String::from_utf8_lossy(&attempt.stdout).contains("Address already in use");
        out = Some(attempt);
        if !clash {
            break;
        }
    }
    let out = out.expect("baresip ran");
    // After a transfer baresip has recorded two calls: ours is the longer one.
    let dump = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .ends_with("-dec.wav")
        })
        .max_by_key(|p| p.metadata().map_or(0, |m| m.len()))
        .unwrap_or_else(|| {
            panic!(
                "baresip recorded nothing:\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
    read_wav_8k(&dump)
}

fn run_baresip(
    dir: &Path,
    mic: &Path,
    target: &str,
    limit_secs: u32,
    port: u16,
    more: &Baresip,
) -> std::process::Output {
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{port}\naudio_source aufile,{mic}\naudio_player alsa,null\n\
         audio_alert alsa,null\nnet_interface 127.0.0.1\nmodule_path /usr/lib/baresip/modules\n\
         {more}module g711.so\nmodule aufile.so\nmodule alsa.so\nmodule sndfile.so\n\
         module account.so\nmodule menu.so\nmodule stdio.so\nsnd_path {dir}\n",
        mic = mic.display(),
        dir = dir.display(),
        more = more.config,
    );
    std::fs::write(dir.join("config"), config).unwrap();
    let account = format!("<sip:tester@127.0.0.1>;regint=0{}\n", more.account);
    std::fs::write(dir.join("accounts"), account).unwrap();
    Command::new("timeout")
        .arg(limit_secs.to_string())
        .args(["baresip", "-f"])
        .arg(dir)
        .args([
            "-t",
            &(limit_secs.saturating_sub(2)).to_string(),
            "-e",
            &format!("/dial {target}"),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run baresip (apt package baresip)")
}

/// A port free for UDP and TCP whose successor is free for TCP too (baresip's TLS).
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let port = free_port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair");
}

/// A WAV of `secs` of line silence.
pub fn silence_wav(dir: &Path, secs: f32) -> PathBuf {
    let path = dir.join(format!("silence-{secs}.wav"));
    voicebot_gateway::audio::wav::write_i16(&path, &vec![0; (8000.0 * secs) as usize], 8000)
        .unwrap();
    path
}

/// How long calls may take to end after sipp's pcap audio: sipp hangs up while that
/// audio is still heard as speech, and each call's last words are decoded for its
/// record (the gateway waits up to 30 s for them), several at once on two cores.
pub const LAST_WORDS: Duration = Duration::from_secs(40);

/// A fixture question with `lead` seconds of silence before it and `tail` after.
pub fn padded_fixture(dir: &Path, id: &str, lead: f32, tail: f32) -> PathBuf {
    let src = repo().join(format!("audio-fixtures/questions/{id}.tel.wav"));
    padded_wav(dir, &src, lead, tail)
}

/// `src` (a WAV at any rate) at 8 kHz with `lead` and `tail` seconds of silence around it.
pub fn padded_wav(dir: &Path, src: &Path, lead: f32, tail: f32) -> PathBuf {
    let speech = read_wav_8k(src);
    let mut pcm = vec![0i16; (8000.0 * lead) as usize];
    pcm.extend(speech);
    pcm.extend(vec![0i16; (8000.0 * tail) as usize]);
    let stem = src.file_stem().unwrap().to_string_lossy();
    let path = dir.join(format!("{stem}-padded.wav"));
    voicebot_gateway::audio::wav::write_i16(&path, &pcm, 8000).unwrap();
    path
}

/// What the bot's default Danish greeting sounds like, synthesized as the gateway does.
pub fn reference_speech(text: &str, lang: &str) -> Vec<i16> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tts = voicebot_gateway::tts::espeak::Espeak::shared().unwrap();
        let cache = voicebot_gateway::tts::cache::PromptCache::new(tts);
        let config = voicebot_gateway::config::Config::default();
        cache
            .warm(text, &config.tts.voice(lang).as_espeak())
            .await
            .unwrap()
            .as_ref()
            .clone()
    })
}

/// Transcribes 8 kHz audio with the real base model and no domain prompt (so the
/// prompt's words cannot leak into what we check). Each stretch of speech between
/// pauses is transcribed on its own: whisper tends to stop at a long pause.
pub fn transcribe(pcm: &[i16], lang: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let model = voicebot_gateway::stt::model_path("base");
        let opts = voicebot_gateway::stt::recognizer::SttOptions {
            workers: 1,
            queue: 1,
            max_tokens: 120,
            ..Default::default()
        };
        let stt = voicebot_gateway::stt::recognizer::Recognizer::load(&model, opts)
            .expect("models/fetch.sh base");
        let mut text = Vec::new();
        for island in speech_islands(pcm) {
            text.push(
                stt.transcribe_8k(island, lang, "")
                    .await
                    .unwrap()
                    .text
                    .to_lowercase(),
            );
        }
        text.join(" ")
    })
}

/// Asserts a transcribed reply has at least `at_least` of `words` (espeak through G.711
/// is hard for whisper base, so most, not all, of an answer's words are heard).
/// Words of the knowledge base's passport answer ("Book an appointment at Citizen
/// Service and bring your old passport. We take your photo and fingerprints. The
/// passport is ready in about two weeks.") that whisper should find in a reply.
pub const PASSPORT_ANSWER_WORDS: [&str; 6] = [
    "appointment",
    "service",
    "passport",
    "photo",
    "fingerprint",
    "weeks",
];

pub fn assert_hears(reply: &str, words: &[&str], at_least: usize) {
    let found: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| reply.contains(w))
        .collect();
    assert!(
        found.len() >= at_least,
        "reply {reply:?} has only {found:?}"
    );
}

/// Like `transcribe`, in 8 s windows starting every 2 s: whisper stops early on a
/// stretch that starts in another language (the Danish "Et øjeblik" before an English
/// answer), so some window must start close to where the answer does.
pub fn transcribe_windows(pcm: &[i16], lang: &str) -> String {
    let secs = pcm.len() as f64 / 8000.0;
    let mut text = Vec::new();
    let mut from = 0.0;
    while from < secs {
        text.push(transcribe(slice(pcm, from, from + 8.0), lang));
        from += 2.0;
    }
    text.join(" ")
}

/// Stretches of speech separated by at least 600 ms of silence.
pub fn speech_islands(pcm: &[i16]) -> Vec<&[i16]> {
    let env = envelope(pcm);
    let mut islands = Vec::new();
    let mut start: Option<usize> = None;
    let mut quiet = 0;
    for (i, e) in env.iter().enumerate() {
        if *e > 0.01 {
            start.get_or_insert(i);
            quiet = 0;
        } else if let Some(s) = start {
            quiet += 1;
            if quiet >= 30 {
                islands.push(&pcm[s * 160..((i + 1 - quiet) * 160).min(pcm.len())]);
                start = None;
            }
        }
    }
    if let Some(s) = start {
        islands.push(&pcm[s * 160..]);
    }
    islands.into_iter().filter(|i| i.len() >= 2400).collect()
}

/// Seconds → sample index at 8 kHz, clamped to the recording.
pub fn slice(pcm: &[i16], from_secs: f64, to_secs: f64) -> &[i16] {
    let a = ((from_secs * 8000.0) as usize).min(pcm.len());
    let b = ((to_secs * 8000.0) as usize).clamp(a, pcm.len());
    &pcm[a..b]
}

/// Asserts a recording contains the bot's default Danish greeting.
pub fn assert_heard_greeting(heard: &[i16], who: &str) {
    let greeting = reference_speech(
        &voicebot_gateway::call::prompts::Prompts::danish().greeting,
        "da",
    );
    let score = envelope_match(heard, &greeting);
    assert!(
        score > 0.9,
        "{who}'s recording does not contain the greeting (match {score})"
    );
}

/// `voicebot call` playing `play`, recording into `rec`, with extra arguments.
pub fn call_recording(
    gw: &Gateway,
    play: &std::path::Path,
    rec: &std::path::Path,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        gw.uri(),
        "--play".into(),
        play.display().to_string(),
        "--record".into(),
        rec.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    voicebot_call(&args)
}

/// A `[[transfer.queues]]` entry open around the clock, holidays included, so a test
/// does not depend on the day it runs.
pub fn always_open_queue(uri: &str) -> String {
    let days: Vec<String> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| format!("{d} = \"00:00-24:00\""))
        .collect();
    format!(
        "[[transfer.queues]]\nname = \"borgerservice\"\nuri = \"{uri}\"\nopen_on_holidays = true\n\
         spoken_en = \"Citizen Service\"\nhours = {{ {} }}\n",
        days.join(", ")
    )
}

/// Polls an SMS outbox until message `id` reaches `want` (10 s at most).
pub async fn wait_sms_status(
    sms: &voicebot_gateway::sms::Sms,
    id: i64,
    want: voicebot_gateway::sms::outbox::Status,
) -> voicebot_gateway::sms::outbox::Message {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = sms.message(id).await.unwrap().expect("message exists");
        if m.status == want {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "message {id} stuck at {m:?}, wanted {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The line each finished call came on (`calls.channel`), waiting up to 20 s for at
/// least one call to be recorded as finished.
pub fn recorded_channels(records: &Path) -> Vec<String> {
    let start = Instant::now();
    loop {
        let channels: Vec<String> = rusqlite::Connection::open(records)
            .and_then(|db| {
                let mut q =
                    db.prepare("SELECT channel FROM calls WHERE outcome != 'in_progress'")?;
                let rows = q.query_map([], |r| r.get(0))?;
                rows.collect()
            })
            .unwrap_or_default();
        if !channels.is_empty() || start.elapsed() > Duration::from_secs(20) {
            return channels;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A self-signed certificate for 127.0.0.1 and its key (PEM).
pub fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (apt package openssl)");
    assert!(made.status.success(), "{made:?}");
    (cert, key)
}

/// A `voicebot` subcommand as its own process, logging to `log`, once its log shows
/// `ready`; killed (SIGKILL) when dropped.
pub struct Peer {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Peer {
    pub fn start(args: &[&str], log: std::path::PathBuf, ready: &str) -> Peer {
        let child = Command::new(bin())
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start voicebot");
        let peer = Peer { child, log };
        let start = Instant::now();
        while !peer.log().contains(ready) {
            assert!(start.elapsed() < Duration::from_secs(30), "{}", peer.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        peer
    }

    pub fn log(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    pub fn kill_9(&mut self) {
        self.child.kill().ok(); // SIGKILL
        self.child.wait().ok();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill_9();
    }
}
