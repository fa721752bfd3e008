//! A real Kamailio (Debian's `kamailio`) in front of test gateways, with (a copy of) the
//! shipped configuration (`deploy/kamailio/kamailio.cfg`): its own folder, a free loopback
//! port, a control socket for `kamcmd`, run as the `kamailio` user when we are root.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, repo};

pub struct Kamailio {
    child: Child,
    pub sip: SocketAddr,
    dir: tempfile::TempDir,
}

impl Kamailio {
    /// Starts Kamailio dispatching to `gateways`, probing them every `probe_secs`.
    pub fn start(gateways: &[SocketAddr], probe_secs: u32) -> Kamailio {
        let dir = tempfile::tempdir().unwrap();
        let list: String = gateways.iter().map(|g| format!("1 sip:{g}\n")).collect();
        std::fs::write(dir.path().join("dispatcher.list"), list).unwrap();
        // A copy the kamailio user can read wherever the clone is.
        let cfg = dir.path().join("kamailio.cfg");
        std::fs::copy(repo().join("deploy/kamailio/kamailio.cfg"), &cfg).unwrap();
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        if root {
            let ok = Command::new("chown")
                .args(["-R", "kamailio:"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown to kamailio");
        }
        let port = free_port();
        let d = dir.path().display();
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "kamailio", "--", "kamailio"]);
            c
        } else {
            Command::new("kamailio")
        };
        cmd.args(["-DD", "-E", "-m", "64", "-M", "8", "-f"])
            .arg(&cfg)
            .arg("-Y")
            .arg(dir.path())
            .args(["-A", &format!("LISTEN=udp:127.0.0.1:{port}")])
            .args(["-A", &format!("DISPATCHER_LIST=\"{d}/dispatcher.list\"")])
            .args(["-A", &format!("CTL_SOCKET=\"unix:{d}/ctl\"")])
            .args(["-A", &format!("PROBE_SECS={probe_secs}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("kamailio.log")).unwrap())
            // Its own process group: runuser passes on TERM, and Drop can end the group.
            .process_group(0);
        let child = cmd.spawn().expect("start kamailio (apt package kamailio)");
        let k = Kamailio {
            child,
            sip: format!("127.0.0.1:{port}").parse().unwrap(),
            dir,
        };
        let start = Instant::now();
        while k.gateways().is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "kamailio did not start:\n{}",
                k.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        k
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }

    fn ctl(&self) -> PathBuf {
        self.dir.path().join("ctl")
    }

    /// Each gateway's dispatcher state, as `kamcmd dispatcher.list` shows it: its URI
    /// and flags (`AP` active, `IP` inactive and probed, `TP` trying).
    pub fn gateways(&self) -> Vec<(String, String)> {
        let out = Command::new("timeout")
            .args(["5", "kamcmd", "-s"])
            .arg(format!("unix:{}", self.ctl().display()))
            .arg("dispatcher.list")
            .output();
        let Ok(out) = out else { return Vec::new() };
        let text = String::from_utf8_lossy(&out.stdout);
        let mut found = Vec::new();
        let mut uri = None;
        for line in text.lines().map(str::trim) {
            if let Some(u) = line.strip_prefix("URI: ") {
                uri = Some(u.to_string());
            } else if let (Some(f), Some(u)) = (line.strip_prefix("FLAGS: "), uri.take()) {
                found.push((u, f.to_string()));
            }
        }
        found
    }

    /// Whether Kamailio sends new calls to `gateway` (its flags start with `A`).
    pub fn active(&self, gateway: SocketAddr) -> bool {
        let uri = format!("sip:{gateway}");
        self.gateways()
            .iter()
            .any(|(u, f)| *u == uri && f.starts_with('A'))
    }

    /// Waits until `gateway` is active (`want`) or not; returns how long that took.
    pub fn wait_active(&self, gateway: SocketAddr, want: bool, limit: Duration) -> Duration {
        let start = Instant::now();
        while self.active(gateway) != want {
            assert!(
                start.elapsed() < limit,
                "{gateway} active={} after {limit:?}: {:?}\n{}",
                !want,
                self.gateways(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        start.elapsed()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        Command::new("kill")
            .args(["-TERM", "--", &group])
            .status()
            .ok();
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(5) {
                Command::new("kill")
                    .args(["-KILL", "--", &group])
                    .status()
                    .ok();
                self.child.wait().ok();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if std::thread::panicking() {
            eprintln!("--- kamailio log ---\n{}", self.log());
        }
    }
}
