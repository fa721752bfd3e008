//! baresip, a real softphone, calls the gateway and records what it hears.

mod common;

use common::*;

#[test]
fn baresip_hears_the_greeting() {
    let gw = Gateway::start("");
    // aufile hangs up at the end of the file: 14 s of line silence as the caller's voice.
    let mic = silence_wav(gw.dir.path(), 14.0);
    let heard = baresip_call(gw.dir.path(), &mic, &gw.uri(), 28);
    assert_heard_greeting(&heard, "baresip");
}

#[test]
fn baresip_asks_a_fixture_question_and_the_server_logs_its_transcript() {
    let gw = Gateway::start("[stt]\nlanguage = \"en\"\n");
    // After the greeting, the caller asks about a passport, then stays on the line.
    let mic = padded_fixture(gw.dir.path(), "en-passport", 11.0, 8.0);
    baresip_call(gw.dir.path(), &mic, &gw.uri(), 30);
    let log = gw.wait_for_log("transcript", std::time::Duration::from_secs(5));
    let line = log
        .lines()
        .find(|l| l.contains("transcript text="))
        .unwrap()
        .to_lowercase();
    assert!(
        line.contains("passport") && line.contains("renew"),
        "{line}"
    );
    assert!(
        log.contains("resolved intent=pas_koerekort.nyt_pas"),
        "{log}"
    );
}
