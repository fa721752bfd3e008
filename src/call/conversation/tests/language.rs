//! The caller's language: English heard on the first turn of a Danish call, or 9.

use super::*;

fn danish() -> Call {
    Call::in_language(Settings::default(), Language::Da, test_menu())
}

fn danish_listening() -> Call {
    let mut call = danish();
    call.ev(Event::Answered);
    call.ev(Event::PlaybackFinished);
    call
}

#[test]
fn the_danish_greeting_offers_english_in_english() {
    let mut call = danish();
    let acts = call.ev(Event::Answered);
    assert_eq!(
        acts,
        vec![
            play(&Prompts::danish().greeting),
            Action::PlayIn {
                text: "For English, press 9.".into(),
                language: "en".into(),
                barge_in: true,
            }
        ]
    );
}

#[test]
fn english_on_the_first_turn_of_a_danish_call_switches_the_call() {
    let mut call = danish_listening();
    call.heard = "en";
    assert_eq!(
        call.say("when is my bin emptied"),
        vec![
            Action::SwitchLanguage("en".into()),
            Action::Resolve {
                text: "when is my bin emptied".into(),
                turn: 1,
                previous_intent: None,
                chosen_intent_id: None,
            }
        ]
    );
    assert_eq!(call.c.language(), Language::En);
    let en = Prompts::english();
    assert_eq!(
        call.ev(answer("affald.toemning", "Every other week.")),
        vec![play("Every other week."), play(&en.anything_else)]
    );
    // Later Danish is not a reason to switch back.
    call.ev(Event::PlaybackFinished);
    call.heard = "da";
    assert_eq!(call.say("tak").len(), 1);
    assert_eq!(call.c.language(), Language::En);
}

#[test]
fn the_language_is_only_switched_on_the_first_turn() {
    let mut call = danish_listening();
    call.say("hvornår tømmes min skraldespand");
    call.ev(answer("affald.toemning", "Hver anden uge."));
    call.ev(Event::PlaybackFinished);
    call.heard = "en";
    let acts = call.say("okay");
    assert!(
        matches!(acts.as_slice(), [Action::Resolve { turn: 2, .. }]),
        "{acts:?}"
    );
    assert_eq!(call.c.language(), Language::Da);
}

#[test]
fn languages_we_do_not_speak_or_do_not_know_change_nothing() {
    for heard in ["sv", "", "da-DK"] {
        let mut call = danish_listening();
        call.heard = heard;
        let acts = call.say("hej");
        assert!(
            matches!(acts.as_slice(), [Action::Resolve { .. }]),
            "{heard:?}: {acts:?}"
        );
        assert_eq!(call.c.language(), Language::Da);
    }
    // An English line switches to Danish the same way.
    let mut call = Call::listening();
    call.heard = "da";
    assert_eq!(
        call.say("hvad koster et pas").first(),
        Some(&Action::SwitchLanguage("da".into()))
    );
}

#[test]
fn nine_switches_a_danish_call_to_english_with_a_welcome() {
    let mut call = danish();
    call.ev(Event::Answered);
    assert_eq!(
        call.ev(Event::Dtmf('9')),
        vec![
            Action::StopPlayback,
            Action::SwitchLanguage("en".into()),
            play("Hello. Ask me your question in English, or press 0 for a person."),
        ]
    );
    assert_eq!(call.c.language(), Language::En);
    call.ev(Event::PlaybackFinished);
    assert_eq!(call.ev(Event::Dtmf('9')), vec![], "English already");
    // The caller chose: Danish heard on the first turn does not switch back.
    call.heard = "da";
    let acts = call.say("pas");
    assert!(
        matches!(acts.as_slice(), [Action::Resolve { turn: 1, .. }]),
        "{acts:?}"
    );
    assert_eq!(call.c.language(), Language::En);
}

#[test]
fn nine_in_the_menu_switches_but_in_an_entrys_menu_is_just_a_wrong_key() {
    let mut call = danish_listening();
    call.say("blah");
    assert_eq!(call.ev(special(Kind::OutOfScope)), vec![call.miss_menu()]);
    let acts = call.ev(Event::Dtmf('9'));
    assert_eq!(acts[1], Action::SwitchLanguage("en".into()), "{acts:?}");

    let mut call = danish_listening();
    call.say("blah");
    call.ev(special(Kind::OutOfScope));
    call.ev(Event::Dtmf('1'));
    let acts = call.ev(Event::Dtmf('9'));
    assert_eq!(
        acts,
        vec![
            Action::StopPlayback,
            play(&format!(
                "{} {}",
                call.p.menu_invalid,
                call.menu(Level::Entry(0))
            ))
        ]
    );
    assert_eq!(call.c.language(), Language::Da);
}

#[test]
fn nine_on_an_english_call_does_nothing_outside_the_menu() {
    let mut call = Call::listening();
    assert_eq!(call.ev(Event::Dtmf('9')), vec![]);
}

#[test]
fn after_nine_the_menu_is_read_in_english() {
    let mut call = danish_listening();
    call.ev(Event::Dtmf('9'));
    call.ev(Event::PlaybackFinished);
    call.p = Prompts::english();
    call.say("blah");
    assert_eq!(call.ev(special(Kind::OutOfScope)), vec![call.miss_menu()]);
    assert!(call
        .menu(Level::Top)
        .starts_with("Press 1 for waste, 2 for passports"));
}
