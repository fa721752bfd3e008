mod common;
#[test]
fn probe() {
    let text = "Hello, you have reached Eksempel Municipality. I am a digital assistant. You can always press zero to talk to a person. How can I help?";
    let g = common::reference_speech(text, "en");
    voicebot_gateway::audio::wav::write_i16(std::path::Path::new("/tmp/libg.wav"), &g, 8000).unwrap();
}
