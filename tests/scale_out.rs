//! Many gateways: two real gateways behind a real Kamailio (the shipped
//! `deploy/kamailio/kamailio.cfg`), sharing a real PostgreSQL. Calls spread over both,
//! all are recorded in the shared database, and either dashboard sums up all of them; a gateway drained mid-run costs no
//! call; a gateway killed with -9 is out of Kamailio's rotation within the probe
//! interval and calls go on on the survivor. SMS accepted on two gateways sharing the
//! outbox are each delivered exactly once.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use voicebot_gateway::storage::scratch::ScratchPostgres;
use voicebot_gateway::storage::{Backend, Db};

/// Kamailio probes each gateway this often (the shipped default is 2).
const PROBE_SECS: u32 = 1;
/// The shipped `FR_TIMER_MS`: how long a silent gateway may keep an INVITE or probe.
const FR_TIMER: Duration = Duration::from_millis(1000);

fn gateway_config(url: &str, node: &str, rtp: &str) -> String {
    // tiny.en loads fastest; these callers do not speak.
    format!(
        "[storage]\nurl = \"{url}\"\nnode = \"{node}\"\n[sip]\ndrain_secs = 30\n\
         [rtp]\nports = \"{rtp}\"\n[stt]\nmodel = \"tiny.en\"\nlanguage = \"en\"\n"
    )
}

/// Calls recorded per gateway (finished ones; none may be left in progress).
fn calls_by_node(db: &Backend) -> HashMap<String, i64> {
    let mut db = Db::open(db).unwrap();
    let rows = db
        .query(
            "SELECT node, COUNT(*) FROM calls WHERE outcome != 'in_progress' GROUP BY node",
            &[],
        )
        .unwrap();
    rows.iter()
        .map(|r| (r.text(0).unwrap(), r.int(1).unwrap()))
        .collect()
}

fn wait_recorded(db: &Backend, want: i64) -> HashMap<String, i64> {
    let start = Instant::now();
    loop {
        let by = calls_by_node(db);
        if by.values().sum::<i64>() == want {
            return by;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "recorded {by:?}, wanted {want} calls"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// sipp placing `calls` short calls at `rate` per second through Kamailio.
fn calls_through(
    front: SocketAddr,
    dir: &std::path::Path,
    calls: u32,
    rate: u32,
) -> std::process::Child {
    let (calls, rate) = (calls.to_string(), rate.to_string());
    let scenario = scenario("uac_via_proxy.xml");
    let args = sipp_args(
        "127.0.0.1",
        front,
        &["-sf", &scenario, "-m", &calls, "-r", &rate, "-l", "100"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sipp_spawn(dir, &args, 90)
}

fn assert_all_calls_succeeded(sipp: std::process::Child, dir: &std::path::Path, what: &str) {
    let out = sipp.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: sipp failed:\n{}",
        sipp_report(dir, &out)
    );
}

#[test]
fn calls_spread_over_two_gateways_survive_a_drain_and_a_kill() {
    let pg = ScratchPostgres::start(false).unwrap();
    let db = pg.create_database("voicebot").unwrap();
    let Backend::Postgres(url) = &db else {
        unreachable!()
    };
    let (port1, port2) = (free_port(), free_port());
    let gw1_config = gateway_config(url, "gw1", "30000-30999");
    let (mut gw1, mut gw2) = std::thread::scope(|s| {
        let a = s.spawn(|| Gateway::start_on(port1, &gw1_config));
        let b = s.spawn(|| Gateway::start_on(port2, &gateway_config(url, "gw2", "31000-31999")));
        (a.join().unwrap(), b.join().unwrap())
    });
    let kamailio = Kamailio::start(&[gw1.sip, gw2.sip], PROBE_SECS);
    for gw in [gw1.sip, gw2.sip] {
        kamailio.wait_active(gw, true, Duration::from_secs(5));
    }

    // 40 calls at 20 per second; gateway 1 is stopped (SIGTERM: drain) a second in.
    let run = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let sipp = calls_through(kamailio.sip, run.path(), 40, 20);
    std::thread::sleep(Duration::from_secs(1));
    gw1.signal("TERM");
    let out_of_rotation = kamailio.wait_active(gw1.sip, false, Duration::from_secs(5));
    assert_all_calls_succeeded(sipp, run.path(), "40 calls with a drain");
    let secs = started.elapsed().as_secs_f64();
    let status = gw1.wait_exit(Duration::from_secs(40));
    assert!(status.success(), "drained gateway exit {status:?}");
    let by = wait_recorded(&db, 40);
    assert!(
        by.get("gw1").is_some_and(|&n| n > 0) && by.get("gw2").is_some_and(|&n| n > 0),
        "each gateway took some calls: {by:?}"
    );
    // Either gateway's dashboard sums up every gateway's calls.
    let (status, body) = gw2.http_get("/api/summary");
    assert_eq!(status, 200, "{body}");
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(summary["calls"], 40, "{body}");
    eprintln!(
        "40 calls through Kamailio in {secs:.1} s, 0 failed; by gateway {by:?}; \
         drained gateway out of rotation after {out_of_rotation:?}"
    );

    // Gateway 1 comes back where Kamailio expects it; then gateway 2 dies.
    drop(gw1);
    let gw1 = Gateway::start_on(port1, &gw1_config);
    kamailio.wait_active(gw1.sip, true, Duration::from_secs(5));
    let after_kill = tempfile::tempdir().unwrap();
    gw2.signal("KILL");
    let killed = Instant::now();
    // Calls placed right away: one sent to the dead gateway before the probe notices
    // rings FR_TIMER longer and goes on to the survivor.
    let sipp = calls_through(kamailio.sip, after_kill.path(), 10, 5);
    kamailio.wait_active(gw2.sip, false, Duration::from_secs(10));
    let detected_after = killed.elapsed();
    assert!(
        detected_after
            < Duration::from_secs(PROBE_SECS.into()) + FR_TIMER + Duration::from_millis(500),
        "Kamailio kept the dead gateway for {detected_after:?}"
    );
    assert_all_calls_succeeded(sipp, after_kill.path(), "10 calls after a kill -9");
    gw2.wait_exit(Duration::from_secs(5));
    let after = wait_recorded(&db, 50);
    assert_eq!(
        after.get("gw2"),
        by.get("gw2"),
        "no call recorded by the dead gateway"
    );
    assert_eq!(after["gw1"], by["gw1"] + 10, "the survivor took them all");
    eprintln!("killed gateway out of rotation after {detected_after:?}");
    drop(gw1);
}

/// Two gateways' SMS sides on one shared outbox, each with its own bind to the SMSC:
/// every message either accepts is claimed by exactly one of them and delivered once.
#[test]
fn sms_accepted_on_two_gateways_is_delivered_once_each() {
    // Set up outside the runtime: the store's calls block (the gateway makes them
    // from its blocking threads).
    let pg = ScratchPostgres::start(false).unwrap();
    let db = pg.create_database("voicebot").unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(two_gateways_send_sms(db));
}

async fn two_gateways_send_sms(db: Backend) {
    use voicebot_gateway::config::{SmsConfig, SmsSenderKind};
    use voicebot_gateway::sms::number::E164;
    use voicebot_gateway::sms::outbox::Status;
    use voicebot_gateway::sms::smsc::TestSmsc;
    use voicebot_gateway::sms::Sms;
    use voicebot_gateway::storage::Store;

    let smsc = TestSmsc::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut gateways = Vec::new();
    for node in ["gw1", "gw2"] {
        let mut c = SmsConfig {
            sender: SmsSenderKind::Smpp,
            retry_initial_ms: 100,
            retry_max_ms: 400,
            ..SmsConfig::default()
        };
        c.smpp.port = smsc.addr().port();
        c.smpp.system_id = node.into();
        let store = Store {
            backend: db.clone(),
            node: node.into(),
        };
        let sms = Sms::start(&c, store, tokio_util::sync::CancellationToken::new())
            .await
            .unwrap()
            .expect("an SMPP sender");
        gateways.push(sms);
    }
    let mut queued = Vec::new();
    for i in 0..20 {
        let sms = &gateways[i % 2];
        let to = E164::parse(&format!("+45201234{i:02}")).unwrap();
        let id = sms
            .enqueue(&format!("call-{i}"), "affald", &to, &format!("Link {i}"))
            .await
            .unwrap();
        queued.push((i % 2, id));
    }
    for (g, id) in &queued {
        wait_sms_status(&gateways[*g], *id, Status::Delivered).await;
    }
    let received = smsc.received();
    let mut texts: Vec<String> = received
        .iter()
        .map(|s| String::from_utf8_lossy(&s.short_message).into_owned())
        .collect();
    let by_gateway = |node: &str| received.iter().filter(|s| s.system_id == node).count();
    let per_gateway = [by_gateway("gw1"), by_gateway("gw2")];
    texts.sort();
    let mut unique = texts.clone();
    unique.dedup();
    assert_eq!(texts.len(), 20, "each message sent once: {texts:?}");
    assert_eq!(unique.len(), 20, "no message sent twice: {texts:?}");
    eprintln!("20 SMS sent once each, by gw1 and gw2: {per_gateway:?}");
    for sms in &gateways {
        sms.shutdown().await;
    }
}
