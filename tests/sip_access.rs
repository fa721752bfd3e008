//! Who may call in: untrusted sources get 403 (UDP and TCP alike), and with `[sip] open`
//! a flood from one untrusted source is held to its limits while a trusted peer and
//! another untrusted source still get through. Refusals are logged in a form the
//! shipped fail2ban filter (contrib/fail2ban/voicebot.conf) finds.

mod common;

use std::time::Duration;

use common::*;

/// The hosts fail2ban would take from the gateway's log with the shipped filter
/// (`<HOST>` as fail2ban expands it for addresses).
fn fail2ban_hosts(log: &str) -> Vec<String> {
    let filter = std::fs::read_to_string(repo().join("contrib/fail2ban/voicebot.conf")).unwrap();
    let failregex = filter
        .lines()
        .find_map(|l| l.strip_prefix("failregex = "))
        .expect("a failregex line");
    let re = regex::Regex::new(&failregex.replace("<HOST>", r"(?P<host>[0-9A-Fa-f.:]+)")).unwrap();
    log.lines()
        .filter_map(|l| re.captures(l).map(|c| c["host"].to_string()))
        .collect()
}

#[test]
fn an_untrusted_source_gets_403_over_udp_and_tcp_and_no_call() {
    let gw = Gateway::start("[sip]\ntrusted = [\"127.0.0.1/32\"]\n");
    let refuse = scenario("refuse_403.xml");
    sipp_from(&gw, "127.0.0.2", &["-sf", &refuse, "-m", "1"], true);
    // Over TCP the stack sees our relay's loopback address: the real peer must count.
    sipp_from(
        &gw,
        "127.0.0.2",
        &["-sf", &refuse, "-t", "t1", "-m", "1"],
        true,
    );
    let log = gw.log();
    assert!(!log.contains("answered"), "{log}");
    assert_eq!(
        fail2ban_hosts(&log),
        ["127.0.0.2"],
        "one line for the source within the minute, its address for fail2ban:\n{log}"
    );
    assert!(
        log.contains("SIP source refused: 127.0.0.2 (403, not trusted)"),
        "{log}"
    );
    // The trusted address still calls, and is never reported.
    sipp_from(&gw, "127.0.0.1", &["-sn", "uac", "-m", "1"], true);
    gw.wait_for_log("reason=UacBye", Duration::from_secs(10));
    assert_eq!(fail2ban_hosts(&gw.log()), ["127.0.0.2"]);
    gw.wait_metric("voicebot_calls_active", 0.0, Duration::from_secs(5));
}

#[test]
fn a_flood_from_one_untrusted_source_is_limited_while_others_get_through() {
    // Defaults: 1 call a second after a burst of 5, 2 calls at once per source.
    let gw = Gateway::start("[sip]\ntrusted = [\"127.0.0.1/32\"]\nopen = true\n");
    let dir = tempfile::tempdir().unwrap();
    let (port, mport) = (free_port().to_string(), free_port().to_string());
    let sip = gw.sip.to_string();
    let flood_xml = scenario("flood.xml");
    // 20 INVITEs a second for 8 s; answered ones hold their line for 10 s.
    let mut flood = sipp_spawn(
        dir.path(),
        &[
            "-i",
            "127.0.0.3",
            "-p",
            &port,
            "-mp",
            &mport,
            "-s",
            "bot",
            &sip,
            "-sf",
            &flood_xml,
            "-r",
            "20",
            "-m",
            "160",
            "-l",
            "160",
        ],
        60,
    );
    let started = std::time::Instant::now();
    while gw.metric("voicebot_sip_rate_limited_total").unwrap_or(0.0) < 5.0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the flood is never limited:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // While the flood goes on: a trusted peer and another untrusted source call.
    let gw = std::sync::Arc::new(gw);
    let callers: Vec<_> = ["127.0.0.1", "127.0.0.4"]
        .into_iter()
        .map(|ip| {
            let gw = gw.clone();
            std::thread::spawn(move || sipp_from(&gw, ip, &["-sn", "uac_pcap", "-m", "1"], true))
        })
        .collect();
    let answered = |log: &str, ip: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("source={ip}:")) && l.ends_with("answered"))
            .count()
    };
    while answered(&gw.log(), "127.0.0.1") + answered(&gw.log(), "127.0.0.4") < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "calls not answered:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        flood.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(8),
        "both were answered while the flood went on"
    );
    for c in callers {
        c.join().expect("a call during the flood failed");
    }
    flood.wait().ok();
    let log = gw.log();
    let answered_from = |ip: &str| answered(&log, ip);
    assert_eq!(answered_from("127.0.0.1"), 1, "{log}");
    assert_eq!(answered_from("127.0.0.4"), 1, "{log}");
    // Two lines at once and no more: its calls last longer than its INVITEs keep
    // coming, so only the first two were answered.
    assert_eq!(answered_from("127.0.0.3"), 2, "{log}");
    let limited = gw.metric("voicebot_sip_rate_limited_total").unwrap();
    assert!(
        limited >= 150.0,
        "only {limited} of 160 INVITEs were limited"
    );
    assert_eq!(fail2ban_hosts(&log), ["127.0.0.3"], "{log}");
    assert!(
        log.contains("SIP source refused: 127.0.0.3 (503, calls_per_source)"),
        "{log}"
    );
    gw.wait_metric("voicebot_calls_active", 0.0, LAST_WORDS);
}

#[test]
fn a_trunk_calls_only_with_its_digest_credentials() {
    // sipp 3.6 answers MD5 challenges only; SHA-256 is checked against RFC 7616's
    // example in src/sip/digest.rs.
    let gw = Gateway::start(
        "[sip]\ntrusted = [\"127.0.0.1/32\"]\n\
         [[sip.trunks]]\nname = \"carrier\"\nsource = \"127.0.0.3/32\"\n\
         username = \"kommune\"\npassword = \"hemmelig\"\nalgorithms = [\"MD5\"]\n",
    );
    let auth = |scenario_file: &str, password: &str| {
        let s = scenario(scenario_file);
        sipp_from(
            &gw,
            "127.0.0.3",
            &["-sf", &s, "-au", "kommune", "-ap", password, "-m", "1"],
            true,
        )
    };
    // Challenged, then answered: the call is taken and ends with the trunk's BYE.
    auth("trunk_auth.xml", "hemmelig");
    gw.wait_for_log("reason=UacBye", Duration::from_secs(10));
    // Challenged, then refused: a wrong password is a 403 that fail2ban sees.
    auth("trunk_auth_bad.xml", "forkert");
    let log = gw.log();
    assert_eq!(log.matches("answered").count(), 1, "{log}");
    assert!(
        log.contains("SIP source refused: 127.0.0.3 (403, bad credentials)"),
        "{log}"
    );
    assert_eq!(fail2ban_hosts(&log), ["127.0.0.3"]);
    gw.wait_metric("voicebot_calls_active", 0.0, Duration::from_secs(5));
}
