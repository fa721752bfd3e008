//! The deploy kit (`deploy/`) holds together: Prometheus's config and alert rules pass
//! `promtool check` and their unit tests, every `voicebot_*` series the rules and the
//! Grafana dashboard use is one a real gateway exposes, and the shipped gateway
//! configs load and are the gateways Kamailio dispatches to and Prometheus scrapes.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::*;
use voicebot_gateway::config::Config;

fn deploy(path: &str) -> std::path::PathBuf {
    repo().join("deploy").join(path)
}

fn promtool(args: &[&str]) {
    let out = Command::new("timeout")
        .arg("60")
        .arg("promtool")
        .args(args)
        .current_dir(deploy("prometheus"))
        .output()
        .expect("run promtool (apt package prometheus)");
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn prometheus_config_and_alert_rules_pass_promtool_and_their_unit_tests() {
    promtool(&["check", "config", "prometheus.yml"]);
    promtool(&["check", "rules", "alerts.yml"]);
    promtool(&["test", "rules", "alerts_test.yml"]);
}

/// `voicebot_…` names in a text (recording rules are `voicebot:…` and not matched).
fn series_used(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("voicebot_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.insert(name);
    }
    out
}

/// The series names a gateway's /metrics offers, from its `# TYPE` lines (a labelled
/// counter has no sample until it is first counted).
fn series_exposed(metrics: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in metrics.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            let suffixes: &[&str] = match kind {
                // The classic text format names counters with their `_total`.
                "counter" if name.ends_with("_total") => &[""],
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            out.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        }
    }
    out
}

#[test]
fn alerts_and_dashboard_use_only_series_a_gateway_exposes() {
    let alerts = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let dashboard = std::fs::read_to_string(deploy("grafana/dashboards/voicebot.json")).unwrap();
    let dashboard_json: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let panels = dashboard_json["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6, "{} panels", panels.len());
    let used: BTreeSet<String> = series_used(&alerts)
        .union(&series_used(&dashboard))
        .cloned()
        .collect();
    assert!(used.len() >= 8, "{used:?}");

    let gw =
        Gateway::start("[stt]\nmodel = \"tiny.en\"\nlanguage = \"en\"\n[sms]\nsender = \"http\"\n");
    // A labelled family (calls by outcome) is exposed once it has a first sample: a call.
    sipp_ok(&gw, &["-sn", "uac", "-m", "1"]);
    gw.wait_for_log("call ended", Duration::from_secs(10));
    // "call ended" is logged as the hang-up is seen; the call is counted a moment later,
    // as its conversation takes the hang-up in.
    let start = std::time::Instant::now();
    let metrics = loop {
        let (status, metrics) = gw.http_get("/metrics");
        assert_eq!(status, 200);
        if metrics.contains("\nvoicebot_calls_total{") || start.elapsed() > Duration::from_secs(10)
        {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let exposed = series_exposed(&metrics);
    let missing: Vec<_> = used.difference(&exposed).collect();
    assert!(
        missing.is_empty(),
        "not exposed by a gateway: {missing:?}\n{exposed:?}"
    );
}

#[test]
fn shipped_gateway_configs_load_and_match_kamailio_and_prometheus() {
    let dispatcher = std::fs::read_to_string(deploy("kamailio/dispatcher.list")).unwrap();
    let listed: Vec<&str> = dispatcher
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    let prometheus = std::fs::read_to_string(deploy("prometheus/prometheus.yml")).unwrap();
    let mut nodes = Vec::new();
    for name in ["gw1", "gw2"] {
        let path = deploy(&format!("gateway/{name}.toml"));
        let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
        let sip = format!("sip:{}", config.sip.listen);
        assert!(
            listed.contains(&sip.as_str()),
            "{sip} not in dispatcher.list"
        );
        let metrics = config.http.metrics_listen.expect("metrics_listen");
        assert!(
            prometheus.contains(&format!("\"{name}:{}\"", metrics.port())),
            "Prometheus does not scrape {name}:{}",
            metrics.port()
        );
        assert!(config.storage.url.is_some(), "{name} shares the database");
        nodes.push(config.storage.node());
    }
    assert_eq!(listed.len(), 2);
    assert_ne!(nodes[0], nodes[1], "each gateway its own node name");
}
