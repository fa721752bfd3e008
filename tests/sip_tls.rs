//! SIP over TLS and SRTP with SDES keys: sipp through a TLS tunnel (Debian builds sipp
//! without TLS, so `-t l1` is not there: socat carries its TCP over TLS, checking our
//! certificate), and baresip over TLS with SRTP made mandatory hearing the greeting.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

struct TlsGateway {
    gw: Gateway,
    tls: SocketAddr,
    cert: PathBuf,
    _certs: tempfile::TempDir,
}

fn tls_gateway(srtp: &str) -> TlsGateway {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path());
    let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let gw = Gateway::start(&format!(
        "[sip]\ntls_listen = \"{tls}\"\ntls_cert = {cert:?}\ntls_key = {key:?}\nsrtp = \"{srtp}\"\n"
    ));
    TlsGateway {
        gw,
        tls,
        cert,
        _certs: certs,
    }
}

/// A TCP port on loopback whose connections socat carries to `tls` over TLS,
/// verifying the gateway's certificate against `cert`; stops when dropped.
struct Tunnel {
    port: u16,
    child: std::process::Child,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn tunnel(tls: SocketAddr, cert: &Path) -> Tunnel {
    let port = free_port();
    let child = std::process::Command::new("socat")
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
        .arg(format!(
            "OPENSSL:{tls},verify=1,cafile={},commonname=127.0.0.1",
            cert.display()
        ))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("socat (apt package socat)");
    // Owned at once, so it is killed and reaped however this ends.
    let tunnel = Tunnel { port, child };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return tunnel;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("socat never listened on {port}");
}

/// sipp over TCP through the TLS tunnel runs `scenario` once.
fn sipp_tls(t: &TlsGateway, scenario_file: &str) -> (bool, String) {
    let tunnel = tunnel(t.tls, &t.cert);
    let dir = tempfile::tempdir().unwrap();
    let sf = scenario(scenario_file);
    let target: SocketAddr = format!("127.0.0.1:{}", tunnel.port).parse().unwrap();
    let all = sipp_args("127.0.0.1", target, &["-t", "t1", "-sf", &sf, "-m", "1"]);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = sipp(dir.path(), &all, 60);
    (out.status.success(), sipp_report(dir.path(), &out))
}

#[test]
fn sipp_over_tls_gets_srtp_keys_and_a_plain_offer_is_refused() {
    let t = tls_gateway("required");
    let (ok, report) = sipp_tls(&t, "tls_srtp.xml");
    assert!(ok, "SAVP offer over TLS:\n{report}");
    let (ok, report) = sipp_tls(&t, "tls_plain_488.xml");
    assert!(ok, "plain offer over TLS with srtp required:\n{report}");
    let (ok, report) = sipp_tls(&t, "tls_late_offer.xml");
    assert!(ok, "INVITE without SDP over TLS:\n{report}");
    assert!(
        !t.gw.log().contains("ACK answer unusable"),
        "{}",
        t.gw.log()
    );
    // The same SRTP offer over UDP: keys in clear text are never taken.
    let dir = tempfile::tempdir().unwrap();
    let sf = scenario("tls_srtp.xml");
    let all = sipp_args("127.0.0.1", t.gw.sip, &["-sf", &sf, "-m", "1"]);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = sipp(dir.path(), &all, 30);
    assert!(!out.status.success(), "{}", sipp_report(dir.path(), &out));
    t.gw.wait_for_log(
        "SRTP (RTP/SAVP) is used only on SIP over TLS",
        Duration::from_secs(5),
    );
    t.gw.wait_metric("voicebot_calls_active", 0.0, Duration::from_secs(10));
}

#[test]
fn baresip_over_tls_with_mandatory_srtp_hears_the_greeting() {
    let t = tls_gateway("required");
    // The greeting from the warmed cache: live synthesis racing the warm-up on a busy
    // machine is not what this test is about.
    t.gw.wait_for_log("prompt cache warmed", Duration::from_secs(120));
    let mic = silence_wav(t.gw.dir.path(), 14.0);
    let more = Baresip {
        config: format!("module srtp.so\nsip_cafile {}\n", t.cert.display()),
        account: ";mediaenc=srtp-mand".into(),
    };
    let target = format!("sip:bot@{};transport=tls", t.tls);
    let heard = baresip_call_with(t.gw.dir.path(), &mic, &target, 28, &more);
    // baresip drops our first packet (it comes before baresip has taken the 200 OK's
    // keys, which the TLS relay delays), so the greeting starts at the recording's
    // first sample; the matcher needs the lead a plain call's recording has.
    let heard = [vec![0i16; 4000], heard].concat();
    assert_heard_greeting(&heard, "baresip over TLS with SRTP");
    // And baresip's SRTP authenticated here: its packets counted, not refused.
    let received =
        t.gw.metric("voicebot_rtp_packets_received_total")
            .unwrap_or(0.0);
    let garbage =
        t.gw.metric("voicebot_rtp_packets_garbage_total")
            .unwrap_or(0.0);
    assert!(
        received > 200.0 && garbage < 5.0,
        "received {received}, garbage {garbage}"
    );
    let log = t.gw.log();
    assert!(log.contains("answered"), "{log}");
}
