//! Doubt: confirming a likely answer, the keypad menu after a miss, and the bounds that
//! keep both from looping.

use super::*;

fn confirm(id: &str, title: &str, answer: &str) -> Event {
    let mut r = resolution(IntentAction::Confirm, Kind::Answer, id, answer);
    r.confidence = 0.35;
    r.link_url = Some("https://kommune.example.org/affald".into());
    r.sms_text = Some("Your calendar:".into());
    r.candidates = vec![Candidate {
        intent_id: id.into(),
        title: title.into(),
        confidence: 0.35,
    }];
    Event::Resolved(r)
}

fn bins() -> Event {
    confirm("affald.toemning", "bin collection", "See the calendar.")
}

/// Listening, then the caller says something the matcher is unsure of.
fn confirming() -> Call {
    let mut call = Call::listening();
    call.say("bins");
    let acts = call.ev(bins());
    assert_eq!(acts, vec![play(&call.p.confirm_about("bin collection"))]);
    call
}

/// Listening, then a turn out of scope: the menu is being read.
fn in_the_menu() -> Call {
    let mut call = Call::listening();
    call.say("blah");
    assert_eq!(call.ev(special(Kind::OutOfScope)), vec![call.miss_menu()]);
    call
}

fn transfer_reason(call: &mut Call) -> TransferReason {
    let acts = call.ev(Event::PlaybackFinished);
    let [Action::Transfer(t)] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    t.reason
}

#[test]
fn yes_to_a_confirm_gives_the_answer_and_offers_its_link() {
    let mut call = confirming();
    call.c.set_sms_possible(true);
    call.ev(Event::PlaybackFinished);
    call.say("yes");
    assert_eq!(
        call.ev(special(Kind::Yes)),
        vec![play("See the calendar."), play(&call.p.sms_offer)]
    );
    // Now 1 is yes to the SMS offer.
    let acts = call.ev(Event::Dtmf('1'));
    assert!(
        matches!(acts.as_slice(), [Action::StopPlayback, Action::SendSms(o)] if o.intent_id == "affald.toemning"),
        "{acts:?}"
    );
}

#[test]
fn one_during_the_confirm_gives_the_answer() {
    let mut call = confirming();
    assert_eq!(
        call.ev(Event::Dtmf('1')),
        vec![
            Action::StopPlayback,
            play("See the calendar."),
            play(&format!(
                "{} {}",
                call.p.link_elsewhere, call.p.anything_else
            ))
        ]
    );
    assert_eq!(call.ev(Event::Dtmf('1')), vec![], "the question is closed");
}

#[test]
fn a_rephrasing_is_resolved_anew_and_one_on_the_same_intent_is_a_yes() {
    let mut call = confirming();
    call.ev(Event::PlaybackFinished);
    assert!(matches!(
        call.say("no, bulky waste").as_slice(),
        [Action::Resolve {
            chosen_intent_id: None,
            ..
        }]
    ));
    assert_eq!(
        call.ev(answer("affald.storskrald", "Book a pickup.")),
        vec![play("Book a pickup."), play(&call.p.anything_else)]
    );

    let mut call = confirming();
    call.ev(Event::PlaybackFinished);
    call.say("the bin calendar");
    assert_eq!(call.ev(bins()).first(), Some(&play("See the calendar.")));
}

#[test]
fn repeat_during_a_confirm_asks_it_again() {
    let mut call = confirming();
    call.ev(Event::PlaybackFinished);
    call.say("sorry what");
    assert_eq!(
        call.ev(special(Kind::Repeat)),
        vec![play(&call.p.confirm_about("bin collection"))]
    );
    call.ev(Event::PlaybackFinished);
    call.say("yes");
    assert_eq!(call.ev(special(Kind::Yes)).len(), 2, "still confirming");
}

#[test]
fn no_to_a_confirm_opens_the_menu_and_a_digit_path_reaches_an_answer() {
    let mut call = confirming();
    call.ev(Event::PlaybackFinished);
    call.say("no");
    assert_eq!(call.ev(special(Kind::No)), vec![call.miss_menu()]);
    assert_eq!(
        call.ev(Event::Dtmf('1')),
        vec![Action::StopPlayback, play(&call.menu(Level::Entry(0)))]
    );
    assert!(
        call.menu(Level::Entry(0))
            .starts_with("About waste: Press 1 for bin collection, 2 for bulky waste."),
        "{}",
        call.menu(Level::Entry(0))
    );
    call.ev(Event::PlaybackFinished);
    assert_eq!(
        call.at(2000, Event::Dtmf('2')),
        vec![
            Action::StopPlayback,
            Action::Resolve {
                text: "bulky waste".into(),
                turn: 3,
                previous_intent: Some("affald.toemning".into()),
                chosen_intent_id: Some("affald.storskrald".into()),
            }
        ]
    );
    assert_eq!(
        call.ev(answer("affald.storskrald", "Book a pickup.")),
        vec![play("Book a pickup."), play(&call.p.anything_else)]
    );
    // An answer clears the slate: the next miss is the menu again, not a transfer.
    call.ev(Event::PlaybackFinished);
    call.say("blah");
    assert_eq!(call.ev(special(Kind::OutOfScope)), vec![call.miss_menu()]);
}

#[test]
fn two_during_the_confirm_opens_the_menu() {
    let mut call = confirming();
    assert_eq!(
        call.ev(Event::Dtmf('2')),
        vec![Action::StopPlayback, call.miss_menu()]
    );
}

#[test]
fn star_reads_the_current_menu_again() {
    let mut call = in_the_menu();
    assert_eq!(
        call.ev(Event::Dtmf('*')),
        vec![Action::StopPlayback, play(&call.menu(Level::Top))]
    );
    call.ev(Event::Dtmf('2'));
    call.ev(Event::PlaybackFinished);
    assert_eq!(
        call.ev(Event::Dtmf('*')),
        vec![Action::StopPlayback, play(&call.menu(Level::Entry(1)))]
    );
}

#[test]
fn a_wrong_key_is_forgiven_once_then_a_person_takes_over() {
    let mut call = in_the_menu();
    assert_eq!(
        call.ev(Event::Dtmf('7')),
        vec![
            Action::StopPlayback,
            play(&format!(
                "{} {}",
                call.p.menu_invalid,
                call.menu(Level::Top)
            ))
        ]
    );
    call.ev(Event::PlaybackFinished);
    assert_eq!(
        call.ev(Event::Dtmf('7')),
        call.transfer(TransferReason::NoMatch)
    );
    assert_eq!(transfer_reason(&mut call), TransferReason::NoMatch);
}

#[test]
fn a_wrong_key_in_an_entrys_menu_counts_too() {
    let mut call = in_the_menu();
    call.ev(Event::Dtmf('2'));
    // "passports" has one choice: 3 is no choice, twice.
    let acts = call.ev(Event::Dtmf('3'));
    assert_eq!(
        acts,
        vec![
            Action::StopPlayback,
            play(&format!(
                "{} {}",
                call.p.menu_invalid,
                call.menu(Level::Entry(1))
            ))
        ]
    );
    assert_eq!(
        call.ev(Event::Dtmf('3')),
        call.transfer(TransferReason::NoMatch)
    );
}

#[test]
fn a_miss_after_the_menu_transfers() {
    let mut call = in_the_menu();
    call.ev(Event::PlaybackFinished);
    call.say("blah blah");
    assert_eq!(
        call.ev(special(Kind::OutOfScope)),
        call.transfer(TransferReason::NoMatch)
    );
    assert_eq!(transfer_reason(&mut call), TransferReason::NoMatch);
}

#[test]
fn silence_in_the_menu_transfers() {
    let mut call = in_the_menu();
    call.ev(Event::PlaybackFinished);
    assert_eq!(
        call.wait_for_timer(),
        call.transfer(TransferReason::NoMatch)
    );
    assert_eq!(transfer_reason(&mut call), TransferReason::NoMatch);
}

#[test]
fn speech_in_the_menu_is_resolved_as_usual() {
    let mut call = in_the_menu();
    call.ev(Event::PlaybackFinished);
    assert_eq!(
        call.say("new passport"),
        vec![Action::Resolve {
            text: "new passport".into(),
            turn: 2,
            previous_intent: None,
            chosen_intent_id: None,
        }]
    );
    // A key while that is being resolved is not taken for a choice.
    assert_eq!(call.ev(Event::Dtmf('1')), vec![]);
    assert_eq!(
        call.ev(answer("pas.nyt", "Book a time.")),
        vec![play("Book a time."), play(&call.p.anything_else)]
    );
    assert_eq!(call.ev(Event::Dtmf('1')), vec![], "the menu is closed");
}

#[test]
fn a_clarify_the_caller_does_not_settle_opens_the_menu() {
    let mut call = Call::listening();
    call.say("waste");
    let r = bins_or_bulky();
    assert_eq!(call.ev(Event::Resolved(r.clone())).len(), 1);
    call.ev(Event::PlaybackFinished);
    call.say("the waste thing");
    assert_eq!(call.ev(Event::Resolved(r)), vec![call.miss_menu()]);
    // A doubt answered with another doubt is a miss too.
    let mut call = confirming();
    call.ev(Event::PlaybackFinished);
    call.say("hmm the other one");
    assert_eq!(
        call.ev(confirm("affald.storskrald", "bulky waste", "Book.")),
        vec![call.miss_menu()]
    );
}

#[test]
fn zero_reaches_a_person_in_every_state() {
    let mut states: Vec<(&str, Call)> = Vec::new();
    let mut greeting = Call::new();
    greeting.ev(Event::Answered);
    states.push(("greeting", greeting));
    states.push(("listening", Call::listening()));
    let mut thinking = Call::listening();
    thinking.say("passport");
    states.push(("thinking", thinking));
    states.push(("confirm asked", confirming()));
    let mut confirm_listening = confirming();
    confirm_listening.ev(Event::PlaybackFinished);
    states.push(("confirm listening", confirm_listening));
    states.push(("menu read", in_the_menu()));
    let mut menu_listening = in_the_menu();
    menu_listening.ev(Event::PlaybackFinished);
    states.push(("menu listening", menu_listening));
    let mut entry = in_the_menu();
    entry.ev(Event::Dtmf('1'));
    states.push(("entry menu", entry));
    let mut chosen = in_the_menu();
    chosen.ev(Event::Dtmf('1'));
    chosen.ev(Event::Dtmf('1'));
    states.push(("choice resolving", chosen));
    let mut answering = Call::listening();
    answering.c.set_sms_possible(true);
    answering.say("bins");
    answering.ev(bins());
    answering.ev(Event::Dtmf('1'));
    states.push(("answer and SMS offer", answering));
    let mut english = Call::in_language(Settings::default(), Language::Da, test_menu());
    english.ev(Event::Answered);
    english.ev(Event::Dtmf('9'));
    states.push(("welcome in English", english));
    for (name, mut call) in states {
        let acts = call.ev(Event::Dtmf('0'));
        assert_eq!(
            acts.first(),
            Some(&Action::StopPlayback),
            "{name}: {acts:?}"
        );
        assert!(
            matches!(&acts[1], Action::Play { text, barge_in: false } if text.contains("Citizen Service")),
            "{name}: {acts:?}"
        );
        assert_eq!(transfer_reason(&mut call), TransferReason::Dtmf, "{name}");
    }
}

#[test]
fn a_confirm_without_a_title_to_ask_about_is_a_miss() {
    let mut call = Call::listening();
    call.say("bins");
    let Event::Resolved(mut r) = bins() else {
        unreachable!()
    };
    r.candidates.clear();
    assert_eq!(call.ev(Event::Resolved(r)), vec![call.miss_menu()]);
}
