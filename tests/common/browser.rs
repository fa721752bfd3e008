//! Headless Chromium (Debian `chromium`) driven over the DevTools protocol on a pipe
//! (fd 3/4, here two FIFOs), kept off the network: for pages that run in real time
//! (a web call, a live dashboard), where `--dump-dom` cannot wait for them:
//! `--virtual-time-budget` never returns while a page holds an open event stream, and
//! without it the DOM is taken before the first event arrives. Every wait is bounded
//! (and chromium itself runs under `timeout`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use base64::Engine;

pub struct Browser {
    child: Child,
    tx: std::fs::File,
    rx: BufReader<std::fs::File>,
    next_id: u64,
    session: String,
}

/// Flags that keep Chromium off the network and quiet.
const OFFLINE: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--window-size=1200,1000",
];

impl Browser {
    /// Opens `url` with `flags` beside the offline ones, in a fresh profile under
    /// `dir`; returns once the page has loaded.
    pub fn open(dir: &Path, url: &str, flags: &[String]) -> Browser {
        let (to, from) = (dir.join("cdp-in"), dir.join("cdp-out"));
        for fifo in [&to, &from] {
            std::fs::remove_file(fifo).ok();
            assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
        }
        let mut args: Vec<String> = OFFLINE.iter().map(|s| s.to_string()).collect();
        args.extend(flags.iter().cloned());
        args.push(format!(
            "--user-data-dir={}",
            dir.join("chromium").display()
        ));
        args.push("--remote-debugging-pipe".into());
        args.push(url.into());
        let child = Command::new("sh")
            .arg("-c")
            .arg(
                "i=$0; o=$1; shift; exec timeout 120 chromium \"$@\" 3<\"$i\" 4>\"$o\" 2>/dev/null",
            )
            .arg(&to)
            .arg(&from)
            .args(&args)
            .spawn()
            .expect("run chromium (Debian package chromium)");
        let tx = std::fs::OpenOptions::new().write(true).open(&to).unwrap();
        let rx = BufReader::new(std::fs::File::open(&from).unwrap());
        let mut b = Browser {
            child,
            tx,
            rx,
            next_id: 0,
            session: String::new(),
        };
        let started = Instant::now();
        let page = loop {
            let targets = b.call("Target.getTargets", serde_json::json!({}), false);
            let page = targets["targetInfos"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["type"] == "page")
                .map(|t| t["targetId"].clone());
            if let Some(page) = page {
                break page;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no page");
            std::thread::sleep(Duration::from_millis(100));
        };
        let attached = b.call(
            "Target.attachToTarget",
            serde_json::json!({"targetId": page, "flatten": true}),
            false,
        );
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        b.wait_for(
            "location.href !== 'about:blank' && document.readyState === 'complete'",
            Duration::from_secs(20),
        );
        b
    }

    fn call(
        &mut self,
        method: &str,
        params: serde_json::Value,
        in_page: bool,
    ) -> serde_json::Value {
        self.try_call(method, params, in_page)
            .unwrap_or_else(|reply| panic!("{method}: {reply}"))
    }

    /// The result of a DevTools call, or its error reply (the page navigated, say).
    fn try_call(
        &mut self,
        method: &str,
        params: serde_json::Value,
        in_page: bool,
    ) -> Result<serde_json::Value, serde_json::Value> {
        self.next_id += 1;
        let mut msg = serde_json::json!({"id": self.next_id, "method": method, "params": params});
        if in_page {
            msg["sessionId"] = self.session.clone().into();
        }
        self.tx.write_all(format!("{msg}\0").as_bytes()).unwrap();
        loop {
            let mut buf = Vec::new();
            let n = self.rx.read_until(0, &mut buf).unwrap();
            assert!(n > 0, "chromium closed the pipe during {method}");
            buf.pop();
            let reply: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            if reply["id"] == self.next_id {
                return match reply.get("error") {
                    None => Ok(reply["result"].clone()),
                    Some(_) => Err(reply),
                };
            }
        }
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    pub fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            true,
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Polls `condition` (a JavaScript expression) until it is true; false after
    /// `limit`. While the page is still loading, a condition that throws is false.
    pub fn waited(&mut self, condition: &str, limit: Duration) -> bool {
        let started = Instant::now();
        let guarded = format!(
            "(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()"
        );
        while started.elapsed() < limit {
            // Mid-navigation the page has no context to evaluate in: not yet.
            let now = self.try_call(
                "Runtime.evaluate",
                serde_json::json!({"expression": guarded, "returnByValue": true}),
                true,
            );
            if now.is_ok_and(|r| r["result"]["value"] == serde_json::Value::Bool(true)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    /// Like `waited`, and fails the test (showing the page) when the time is up.
    pub fn wait_for(&mut self, condition: &str, limit: Duration) {
        if !self.waited(condition, limit) {
            panic!("page never showed {condition}:\n{}", self.dom());
        }
    }

    /// Posts the staff token to `/login` (as the login form does) and goes to `then`
    /// with the session cookie it got.
    pub fn login(&mut self, token: &str, then: &str) {
        self.eval(&format!(
            "fetch('/login', {{method: 'POST', body: new URLSearchParams({{token: {token:?}}})}})\
             .then(r => r.status)"
        ));
        // Navigate after this evaluation has answered: navigating inside it raced its
        // reply ("Inspected target navigated or closed").
        self.eval(&format!(
            "setTimeout(() => {{ location.href = {then:?}; }}, 0)"
        ));
    }

    pub fn dom(&mut self) -> String {
        self.eval("document.documentElement.outerHTML")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A PNG of the element `selector` ("html" for the whole page): the viewport is
    /// made as tall as the page first, so nothing is cut off or laid out again.
    pub fn screenshot(&mut self, selector: &str, path: &Path) {
        let height = self.eval("document.documentElement.scrollHeight");
        self.call(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": 1200, "height": height.as_f64().unwrap().max(1000.0),
                "deviceScaleFactor": 1, "mobile": false}),
            true,
        );
        let rect = self.eval(&format!(
            "(() => {{ const r = document.querySelector({selector:?}).getBoundingClientRect(); \
             return [r.left + scrollX, r.top + scrollY, r.width, r.height]; }})()"
        ));
        let n = |i: usize| rect[i].as_f64().unwrap();
        let shot = self.call(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png",
                "clip": {"x": n(0), "y": n(1), "width": n(2).max(1.0), "height": n(3).max(1.0), "scale": 1}}),
            true,
        );
        self.call(
            "Emulation.clearDeviceMetricsOverride",
            serde_json::json!({}),
            true,
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.next_id += 1;
        let msg = serde_json::json!({"id": self.next_id, "method": "Browser.close", "params": {}});
        self.tx.write_all(format!("{msg}\0").as_bytes()).ok();
        if self.child.wait_timeout(Duration::from_secs(5)).is_none() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

trait WaitTimeout {
    fn wait_timeout(&mut self, limit: Duration) -> Option<std::process::ExitStatus>;
}

impl WaitTimeout for Child {
    fn wait_timeout(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}
