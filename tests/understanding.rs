//! Understanding callers end to end: our test caller plays fixture questions
//! (audio-fixtures/understand/committed: espeak-ng Danish, Piper English, through the
//! telephone chain) to `voicebot serve`; what the bot says back is recorded and
//! transcribed with whisper, and the gateway's log says what it understood.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

fn committed(id: &str) -> PathBuf {
    repo().join(format!(
        "audio-fixtures/understand/committed/{id}.clean.wav"
    ))
}

/// The greeting (with "For English, press 9") has played out by then.
const AFTER_GREETING: f32 = 14.0;

/// Calls `gw`, asks the question in `wav` after the greeting, keeps the call going with
/// `args` (keys, when to hang up), and returns the recording's path and the log.
fn ask(gw: &Gateway, wav: &Path, args: &[&str]) -> (PathBuf, String) {
    let question = padded_wav(gw.dir.path(), wav, AFTER_GREETING, 0.0);
    let rec = gw.dir.path().join("reply.wav");
    call_recording(gw, &question, &rec, args);
    (rec, gw.wait_for_log("call over", Duration::from_secs(10)))
}

#[test]
fn an_english_caller_on_the_danish_line_is_answered_in_english() {
    let gw = Gateway::start("");
    // "Hi there, um, we're flying to Greece in August and my passport's only valid
    // until July, what do I need to do?" (Piper voice en_US-joe-medium).
    let (rec, log) = ask(&gw, &committed("en-009"), &["--hangup-after", "45"]);
    assert!(
        log.contains("call switches language from=da to=en"),
        "{log}"
    );
    assert!(
        log.contains("resolved intent=pas_koerekort.nyt_pas"),
        "{log}"
    );
    // The answer is spoken in English: "Book an appointment at Citizen Service and
    // bring your old passport. We take your photo and fingerprints. ..."
    let heard = read_wav_8k(&rec);
    let speech_end = f64::from(AFTER_GREETING) + 7.5;
    let reply = transcribe_windows(slice(&heard, speech_end, speech_end + 20.0), "en");
    let words = ["appointment", "service", "passport", "photo", "fingerprint"];
    assert_hears(&reply, &words, 3);
}

#[test]
fn english_whose_language_whisper_doubts_is_still_answered_in_english() {
    let gw = Gateway::start("");
    // "I can't remember the password for my MitID app." in espeak-ng's English: on the
    // Danish line whisper's language tokens are unsure (log-odds of English 9.1, below
    // the 9.5 that switches alone) and the Danish transcript is garbled ("Jeg kan ikke
    // tage en fattvært for min mitide.", mean token probability 0.31). Transcribed in
    // English too, it is sure (0.93): the call switches and is answered in English.
    let question = repo().join("audio-fixtures/questions/en-mitid.tel.wav");
    let (_, log) = ask(&gw, &question, &["--hangup-after", "30"]);
    assert!(
        log.contains("call switches language from=da to=en"),
        "{log}"
    );
    assert!(
        log.contains("resolved intent=mitid.glemt_adgangskode action=Answer"),
        "{log}"
    );
    let said = bot_lines(&gw);
    assert!(
        said.iter()
            .any(|a| a.contains("The MitID website can help")),
        "{said:?}"
    );
}

#[test]
fn the_keypad_menu_reaches_an_answer_after_a_miss() {
    // An English line, so the question is transcribed reliably and the miss is sure.
    let gw = Gateway::start("[stt]\nlanguage = \"en\"\n");
    // "Can you order me a pizza with extra cheese?": nothing a municipality answers.
    // The menu starts about two seconds after the question (17 s); keys may cut it
    // short, and leave room for a slow recognizer on a loaded CI machine.
    // 1 = waste, then 1 = the first of its answers (the collection calendar).
    let (rec, log) = ask(
        &gw,
        &committed("en-096"),
        &["--dtmf", "1@28,1@36", "--hangup-after", "56"],
    );
    assert!(
        log.contains("resolved intent=system.out_of_scope action=Answer"),
        "{log}"
    );
    assert!(
        log.contains("resolved intent=affald.toemning action=Answer"),
        "{log}"
    );
    // "You can see your collection days in the waste calendar on the municipality's
    // website. Enter your address to get the dates for your bins."
    let heard = read_wav_8k(&rec);
    let reply = transcribe_windows(slice(&heard, 36.0, 52.0), "en");
    let words = ["collection", "calendar", "website", "address", "bins"];
    assert_hears(&reply, &words, 2);
}

#[test]
fn a_misrecognised_danish_question_reaches_its_answer_through_a_confirmation() {
    let gw = Gateway::start("");
    // "Øh, min hund har tygget mit kørekort i stykker, kan man få et nyt?" (espeak-ng,
    // voice da+f2): whisper makes it "Øh, min fung har tog mit kørekort, …", the dog
    // and its chewing lost, which alone is no sure match; the audio agrees on the lost
    // or damaged licence, so the bot asks "Handler det om Mistet eller ødelagt
    // kørekort? Sig ja, eller tryk 1." The caller presses 1 (twice, in case the first
    // comes before the question). (This question, not da-041 that stood here: there the
    // audio's two best candidates were too close for their order to survive a loaded
    // machine's changes to the call's audio, and CI heard the other one first.)
    let (_, log) = ask(
        &gw,
        &committed("da-035"),
        &["--dtmf", "1@29,1@37", "--hangup-after", "56"],
    );
    let asked = ["Confirm", "Clarify"]
        .map(|a| format!("resolved intent=pas_koerekort.mistet_koerekort action={a}"));
    assert!(asked.iter().any(|a| log.contains(a.as_str())), "{log}");
    // What the bot said, as the call record keeps it: the confirm, then the answer.
    let said = bot_lines(&gw);
    assert!(
        said.iter()
            .any(|a| a.contains("Mistet eller ødelagt kørekort")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|a| a.contains("bestiller du tid i borgerservice")),
        "{said:?}"
    );
}

#[test]
fn a_question_whose_words_point_elsewhere_is_asked_about_not_answered_wrongly() {
    // An English line, so the transcript is reliable and the words' wrong pick is sure.
    let gw = Gateway::start("[stt]\nlanguage = \"en\"\n");
    // "I've just got my residence permit and the bank says I need MitID, where do I
    // start?" (Piper): on words alone, "resident … permit" answers about the residents'
    // parking permit; its meaning is MitID, so the bot asks "Is it about Residents'
    // parking permit? Then press 1. Or about Get MitID? Then press 2." The caller
    // presses 2 (twice, in case the first comes before the question).
    let (_, log) = ask(
        &gw,
        &committed("en-018"),
        &["--dtmf", "2@29,2@37", "--hangup-after", "56"],
    );
    assert!(
        log.contains("resolved intent=parkering.beboerlicens action=Clarify"),
        "{log}"
    );
    assert!(
        !log.contains("resolved intent=parkering.beboerlicens action=Answer"),
        "{log}"
    );
    assert!(
        log.contains("resolved intent=mitid.oprette action=Answer"),
        "{log}"
    );
    let said = bot_lines(&gw);
    assert!(said.iter().any(|a| a.contains("Get MitID")), "{said:?}");
    assert!(
        said.iter().any(|a| a.contains("set up MitID yourself")),
        "{said:?}"
    );
}

/// The bot's side of the (only) recorded call, in order.
fn bot_lines(gw: &Gateway) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let db = rusqlite::Connection::open(gw.records()).unwrap();
        let lines: Vec<String> = db
            .prepare("SELECT answer FROM turns WHERE answer IS NOT NULL ORDER BY seq")
            .and_then(|mut s| {
                s.query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()
            })
            .unwrap_or_default();
        if !lines.is_empty() || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
