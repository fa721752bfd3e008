use super::*;
use crate::audio::g711::Law;

#[test]
fn empty_file_is_the_defaults() {
    let c = Config::parse("").unwrap();
    assert_eq!(
        c.sip.listen,
        "127.0.0.1:5060".parse::<std::net::SocketAddr>().unwrap()
    );
    assert_eq!(c.rtp.ports, (20000, 20999));
    assert_eq!(
        c.http.listen,
        "127.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap()
    );
    assert_eq!(c.public_ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
}

#[test]
fn keys_are_read() {
    let c = Config::parse(
        "[sip]\nlisten = \"127.0.0.1:5070\"\ncodecs = [\"PCMU\"]\n[rtp]\nports = \"30000-30010\"\npublic_ip = \"192.0.2.7\"\n",
    )
    .unwrap();
    assert_eq!(c.sip.listen.port(), 5070);
    assert_eq!(c.sip.codecs, vec![Law::Ulaw]);
    assert_eq!(c.rtp.ports, (30000, 30010));
    assert_eq!(c.public_ip(), "192.0.2.7".parse::<IpAddr>().unwrap());
}

#[test]
fn errors_name_the_key() {
    let e = Config::parse("[rtp]\nports = \"abc\"\n").unwrap_err();
    assert!(e.contains("ports") && e.contains("port range"), "{e}");
    let e = Config::parse("[sip]\nlisen = \"x\"\n").unwrap_err();
    assert!(e.contains("lisen"), "{e}");
    let e = Config::parse("[sip]\nlisten = \"nope\"\n").unwrap_err();
    assert!(e.contains("listen"), "{e}");
    let e = Config::parse("[sip]\ncodecs = [\"G729\"]\n").unwrap_err();
    assert!(e.contains("G729"), "{e}");
    let e = Config::parse("[sms]\nsender = \"carrier-pigeon\"\n").unwrap_err();
    assert!(e.contains("carrier-pigeon"), "{e}");
    let e = Config::parse("[sms.smpp]\nhots = \"x\"\n").unwrap_err();
    assert!(e.contains("hots"), "{e}");
}

#[test]
fn sip_access_keys() {
    let c = Config::parse("").unwrap();
    let lo = |s: &str| c.sip.trusted.iter().any(|t| t.contains(s.parse().unwrap()));
    assert!(lo("127.0.0.1") && lo("127.0.0.2") && lo("::1") && !lo("192.0.2.1"));
    assert!(!c.sip.open);
    assert_eq!(c.sip.untrusted_lines(), 100);
    assert_eq!(c.sip.rate_limit.per_source_per_sec, 1.0);
    assert_eq!(c.sip.rate_limit.burst, 5);
    assert_eq!(c.sip.rate_limit.max_calls_per_source, 2);
    assert!(!c.sms.trust_from);
    let c = Config::parse(
        "[sip]\ntrusted = [\"192.0.2.0/24\", \"2001:db8::1\"]\nopen = true\nmax_calls = 10\n\
         reserved_for_trusted = 8\n[sip.rate_limit]\nper_source_per_sec = 0.5\nburst = 2\n\
         max_calls_per_source = 1\n[sms]\ntrust_from = true\n",
    )
    .unwrap();
    assert_eq!(c.sip.trusted.len(), 2);
    assert!(c.sip.open);
    assert_eq!(c.sip.untrusted_lines(), 2);
    assert_eq!(c.sip.rate_limit.per_source_per_sec, 0.5);
    assert_eq!(c.sip.rate_limit.max_calls_per_source, 1);
    assert!(c.sms.trust_from);
    let e = Config::parse("[sip]\ntrusted = [\"10.0.0.0/33\"]\n").unwrap_err();
    assert!(e.contains("trusted") && e.contains("10.0.0.0/33"), "{e}");
    let e = Config::parse("[sip]\nmax_calls = 4\nreserved_for_trusted = 5\n").unwrap_err();
    assert!(e.contains("reserved_for_trusted"), "{e}");
    let e = Config::parse("[sip.rate_limit]\nburst = 0\n").unwrap_err();
    assert!(e.contains("burst"), "{e}");
}

#[test]
fn sip_tls_keys_come_together() {
    use crate::sip::sdes::SrtpPolicy;
    let c = Config::parse("").unwrap();
    assert_eq!((c.sip.tls_listen, c.sip.srtp), (None, SrtpPolicy::Required));
    let c = Config::parse(
        "[sip]\ntls_listen = \"0.0.0.0:5061\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n\
         srtp = \"optional\"\n",
    )
    .unwrap();
    assert_eq!(c.sip.tls_listen, Some("0.0.0.0:5061".parse().unwrap()));
    assert_eq!(c.sip.srtp, SrtpPolicy::Optional);
    let e = Config::parse("[sip]\ntls_listen = \"0.0.0.0:5061\"\n").unwrap_err();
    assert!(e.contains("tls_cert and tls_key"), "{e}");
    let e = Config::parse("[sip]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n").unwrap_err();
    assert!(e.contains("need tls_listen"), "{e}");
    let e = Config::parse("[sip]\nsrtp = \"sometimes\"\n").unwrap_err();
    assert!(e.contains("srtp") || e.contains("sometimes"), "{e}");
}

#[test]
fn sms_is_off_by_default_and_read_when_configured() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.sms.sender, SmsSenderKind::None);
    assert!(c.sms.outbox_path().ends_with("voicebot/sms.sqlite"));
    let c = Config::parse(
        "[sms]\nsender = \"smpp\"\noutbox = \"/tmp/o.sqlite\"\nper_number_limit = 2\n[sms.smpp]\nport = 2776\n",
    )
    .unwrap();
    assert_eq!(c.sms.sender, SmsSenderKind::Smpp);
    assert_eq!(c.sms.outbox_path(), PathBuf::from("/tmp/o.sqlite"));
    assert_eq!(c.sms.per_number_limit, 2);
    assert_eq!(c.sms.smpp.port, 2776);
    assert_eq!(c.sms.smpp.host, "127.0.0.1");
}

#[test]
fn privacy_log_and_dashboard_keys() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.privacy.retention_days, 30);
    assert!(!c.privacy.record_audio);
    assert!(c.privacy.record_path().ends_with("voicebot/records.sqlite"));
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.http.dashboard_token, None);
    let c = Config::parse(
        "[privacy]\nretention_days = 7\nrecord_path = \"/tmp/r.sqlite\"\n[log]\nformat = \"json\"\n[http]\ndashboard_token = \"t\"\nmetrics_listen = \"127.0.0.1:9100\"\n",
    )
    .unwrap();
    assert_eq!(c.privacy.retention_days, 7);
    assert_eq!(c.privacy.record_path(), PathBuf::from("/tmp/r.sqlite"));
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.http.dashboard_token.as_deref(), Some("t"));
    assert_eq!(c.http.metrics_listen.unwrap().port(), 9100);
    assert!(!c.http.metrics_token_required);
    assert_eq!(
        (c.http.header_timeout_secs, c.http.max_connections),
        (10, 256)
    );
    let e = Config::parse("[http]\nmetrics_token_required = true\n").unwrap_err();
    assert!(e.contains("metrics_token_required"), "{e}");
    let c = Config::parse(
        "[http]\ndashboard_token = \"t\"\nmetrics_token_required = true\nheader_timeout_secs = 3\nmax_connections = 9\n",
    )
    .unwrap();
    assert!(c.http.metrics_token_required);
    assert_eq!((c.http.header_timeout_secs, c.http.max_connections), (3, 9));
    let e = Config::parse("[privacy]\nrecord_audio = true\n").unwrap_err();
    assert!(
        e.contains("record_audio") && e.contains("not implemented"),
        "{e}"
    );
}

#[test]
fn storage_is_sqlite_unless_a_postgres_url_is_given() {
    use crate::storage::Backend;
    let c = Config::parse("[privacy]\nrecord_path = \"/tmp/r.sqlite\"\n").unwrap();
    let store = c.storage.store(c.privacy.record_path());
    assert_eq!(store.backend, Backend::Sqlite("/tmp/r.sqlite".into()));
    assert!(!store.node.is_empty(), "the host name by default");
    let c = Config::parse(
        "[storage]\nurl = \"postgres://voicebot:pw@db:5432/voicebot\"\nnode = \"gw1\"\n",
    )
    .unwrap();
    let store = c.storage.store(c.sms.outbox_path());
    assert_eq!(
        store.backend,
        Backend::Postgres("postgres://voicebot:pw@db:5432/voicebot".into())
    );
    assert_eq!(store.node, "gw1");
    let e = Config::parse("[storage]\nurl = \"mysql://u:secret@db/v\"\n").unwrap_err();
    assert!(e.contains("postgres://") && !e.contains("secret"), "{e}");
    let e = Config::parse("[storage]\nurl = \"postgres://db:notaport/v\"\n").unwrap_err();
    assert!(e.contains("[storage] url"), "{e}");
    let e = Config::parse("[storage]\nnode = \"\"\n").unwrap_err();
    assert!(e.contains("node"), "{e}");
}

#[test]
fn tenants_are_read_and_none_is_one_implicit_tenant() {
    let c = Config::parse("").unwrap();
    let names: Vec<String> = c.tenants().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["default"]);
    let c = Config::parse(
        "[[tenants]]\nname = \"nordby\"\nnumbers = [\"+45 70 00 00 01\"]\nkb = \"nordby.toml\"\n\
         sms_from = \"Nordby\"\n[[tenants]]\nname = \"sydby\"\nlanguage = \"en\"\n\
         domains = [\"sydby.example.org\"]\n",
    )
    .unwrap();
    let names: Vec<String> = c.tenants().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["nordby", "sydby"]);
    let e = Config::parse("[[tenants]]\nname = \"a\"\nnumbrs = [\"1\"]\n").unwrap_err();
    assert!(e.contains("numbrs"), "{e}");
    let e = Config::parse("[[tenants]]\nname = \"a\"\n[[tenants]]\nname = \"a\"\n").unwrap_err();
    assert!(e.contains("tenant \"a\""), "{e}");
}
