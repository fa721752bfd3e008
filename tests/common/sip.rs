//! SIP peers for tests: raw requests over UDP, and sipp runs (bounded in time, each in
//! a folder of its own for its logs).

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::{free_port, repo, Gateway};

/// A SIP request over UDP from nowhere in particular (the reply goes to the socket).
pub fn request(gw: &Gateway, method: &str, call_id: &str, extra: &str, body: &str) -> String {
    format!(
        "{method} sip:bot@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{call_id}\r\n\
         From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:bot@{sip}>\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\nContact: <sip:t@127.0.0.1:9>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len(),
        sip = gw.sip
    )
}

/// Sends one datagram and returns the first final response, if one comes in 1.5 s.
pub fn udp_exchange(gw: &Gateway, msg: &[u8]) -> Option<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    sock.send_to(msg, gw.sip).unwrap();
    let mut buf = vec![0u8; 65536];
    // Skip provisional responses.
    loop {
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if !text.starts_with("SIP/2.0 1") {
            return Some(text);
        }
    }
}

pub fn status_line(resp: &str) -> &str {
    resp.lines().next().unwrap_or_default()
}

/// Runs sipp from `ip` (another loopback address is another source for the gateway)
/// against the gateway, in a folder of its own; asserts it succeeded if `must_pass`.
pub fn sipp_from(gw: &Gateway, ip: &str, args: &[&str], must_pass: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let mport = free_media_port().to_string();
    let sip = gw.sip.to_string();
    let mut all = vec!["-i", ip, "-p", &port, "-mp", &mport, "-s", "bot", &sip];
    all.extend_from_slice(args);
    let out = sipp(dir.path(), &all, 90);
    let report = sipp_report(dir.path(), &out);
    assert!(
        !must_pass || out.status.success(),
        "sipp from {ip} failed:\n{report}"
    );
    report
}

/// Runs sipp in its own folder (for the `pcap` link and its logs), bounded in time.
pub fn sipp(dir: &Path, args: &[&str], limit_secs: u32) -> Output {
    let pcap = dir.join("pcap");
    if !pcap.exists() {
        std::os::unix::fs::symlink("/usr/share/sip-tester", &pcap).ok();
    }
    let out = Command::new("timeout")
        .arg(limit_secs.to_string())
        .arg("sipp")
        .args(args)
        .args(["-nostdin", "-trace_err"])
        .current_dir(dir)
        .output()
        .expect("run sipp (apt package sip-tester)");
    out
}

pub fn sipp_report(dir: &Path, out: &Output) -> String {
    let mut errors = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with("_errors.log") {
            errors += &std::fs::read_to_string(e.path()).unwrap_or_default();
        }
    }
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}\nerrors:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr),
        errors
    )
}

pub fn scenario(name: &str) -> String {
    repo().join("tests/sipp").join(name).display().to_string()
}

/// sipp's arguments to call `bot` at `target` from `ip` on free ports, then `args`.
pub fn sipp_args(ip: &str, target: std::net::SocketAddr, args: &[&str]) -> Vec<String> {
    let (port, mport) = (free_port().to_string(), free_media_port().to_string());
    let mut all: Vec<String> = ["-i", ip, "-p", &port, "-mp", &mport, "-s", "bot"]
        .map(String::from)
        .to_vec();
    all.push(target.to_string());
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

/// Runs sipp (from 127.0.0.1, free ports) against the gateway's `bot`; panics with its
/// report unless every call succeeded.
pub fn sipp_ok(gw: &Gateway, args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let all = sipp_args("127.0.0.1", gw.sip, args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = sipp(dir.path(), &all, 90);
    assert!(
        out.status.success(),
        "sipp failed:\n{}",
        sipp_report(dir.path(), &out)
    );
}

/// A port for sipp's `-mp`: sipp binds it and the port two above it (video), and
/// stops at once (exit 254) when either is taken, so both must be free.
pub fn free_media_port() -> u16 {
    for _ in 0..100 {
        let port = free_port();
        if port < u16::MAX - 2 && UdpSocket::bind(("127.0.0.1", port + 2)).is_ok() {
            return port;
        }
    }
    panic!("no free media port");
}

/// Starts sipp in the background in its own folder (for its logs), bounded in time.
pub fn sipp_spawn(dir: &Path, args: &[&str], limit_secs: u32) -> std::process::Child {
    Command::new("timeout")
        .arg(limit_secs.to_string())
        .arg("sipp")
        .args(args)
        .args(["-nostdin", "-trace_err", "-trace_msg"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sipp (apt package sip-tester)")
}

/// Everything sipp logged with `-trace_msg` in `dir`.
pub fn sipp_messages(dir: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with("_messages.log") {
            all += &std::fs::read_to_string(e.path()).unwrap_or_default();
        }
    }
    all
}

/// A sipp queue running `scenario` for `calls` calls on a free port, in its own folder.
pub struct Queue {
    dir: tempfile::TempDir,
    port: u16,
    sipp: std::process::Child,
}

impl Queue {
    /// Starts the queue; a port another process took between our probe and sipp's
    /// bind makes sipp stop at once, and it is started again on other ports (at most
    /// three times).
    pub fn start(scenario_file: &str, calls: u32, extra: &[&str], limit_secs: u32) -> Queue {
        for _ in 0..2 {
            let mut queue = Queue::start_once(scenario_file, calls, extra, limit_secs);
            std::thread::sleep(Duration::from_millis(500));
            match queue.sipp.try_wait().unwrap().and_then(|s| s.code()) {
                Some(254) if queue.stderr().contains("errno = 98") => {
                    eprintln!("a port was taken before the queue's sipp bound it: starting again");
                }
                _ => return queue,
            }
        }
        Queue::start_once(scenario_file, calls, extra, limit_secs)
    }

    fn start_once(scenario_file: &str, calls: u32, extra: &[&str], limit_secs: u32) -> Queue {
        let dir = tempfile::tempdir().unwrap();
        let (port, media) = (free_port(), free_media_port());
        let mut args = vec![
            "-sf".to_string(),
            scenario(scenario_file),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-mp".into(),
            media.to_string(),
            "-m".into(),
            calls.to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let sipp = sipp_spawn(dir.path(), &args, limit_secs);
        Queue { dir, port, sipp }
    }

    pub fn uri(&self) -> String {
        format!("sip:queue@127.0.0.1:{}", self.port)
    }

    /// Waits for sipp to finish; its exit code and everything it logged (with what it
    /// said on stderr when it failed, e.g. a port it could not bind).
    pub fn finish(&mut self) -> (Option<i32>, String) {
        let code = wait_exit(&mut self.sipp, Duration::from_secs(20));
        let mut messages = sipp_messages(self.dir.path());
        // Only once it has exited: a sipp still running keeps its stderr open.
        if code.is_some_and(|c| c != 0) {
            messages += &self.stderr();
        }
        (code, messages)
    }

    /// What sipp wrote on stderr (read to the end: call it once sipp has exited).
    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.sipp.stderr.take() {
            std::io::Read::read_to_string(&mut err, &mut text).ok();
        }
        text
    }
}

pub fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if start.elapsed() > limit {
            child.kill().ok();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
