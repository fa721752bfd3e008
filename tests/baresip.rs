//! baresip, a real softphone, calls the gateway and records what it hears.

mod common;

use common::*;

#[test]
fn baresip_hears_the_greeting() {
    let gw = Gateway::start("");
    let mic = gw.dir.path().join("mic.wav");
    // aufile hangs up at the end of the file: 14 s of line silence as the caller's voice.
    voicebot_gateway::audio::wav::write_i16(&mic, &vec![0; 8000 * 14], 8000).unwrap();
    let heard = baresip_call(gw.dir.path(), &mic, &gw.uri(), 28);
    let greeting = reference_speech(&voicebot_gateway::call::prompts::Prompts::danish().greeting, "da");
    let score = envelope_match(&heard, &greeting);
    assert!(score > 0.9, "baresip's recording does not contain the greeting (match {score})");
}
