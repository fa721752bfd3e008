//! A real TURN server (Debian's `coturn`) on loopback: it checks credentials made from
//! a shared secret (the TURN REST API) and relays to loopback peers (test gateways).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct Coturn {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Coturn {
    pub fn start(secret: &str) -> Coturn {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        let child = Command::new("turnserver")
            .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
            .arg(format!("--listening-port={port}"))
            .args(["--use-auth-secret", "--realm=voicebot.test"])
            .arg(format!("--static-auth-secret={secret}"))
            // Off by default, rightly: here the peer (the gateway) is on loopback.
            .arg("--allow-loopback-peers")
            .args(["--no-tls", "--no-dtls", "--no-cli", "--verbose"])
            .args(["--log-file=stdout", "--simple-log"])
            .arg(format!("--pidfile={d}/turnserver.pid"))
            .arg(format!("--userdb={d}/turndb"))
            .stdout(std::fs::File::create(dir.path().join("turn.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start turnserver (apt package coturn)");
        let turn = Coturn { child, port, dir };
        let ready = format!("UDP listener opened on: 127.0.0.1:{port}");
        let start = Instant::now();
        while !turn.log().contains(&ready) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "turnserver did not start:\n{}",
                turn.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        turn
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("turn.log")).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
