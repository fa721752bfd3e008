//! Time in the conversation: silence is reprompted then handed to a person, a slow
//! answer gets one filler, and the caller may talk over the bot (barge-in) where that
//! is allowed.

use super::*;

#[test]
fn silence_reprompts_then_offers_a_person_then_transfers() {
    let mut call = Call::listening();
    assert_eq!(call.c.deadline(), Some(call.now + Duration::from_secs(7)));
    assert_eq!(call.wait_for_timer(), vec![play(&call.p.reprompt)]);
    call.ev(Event::PlaybackFinished);
    assert_eq!(call.wait_for_timer(), vec![play(&call.p.offer_person)]);
    call.ev(Event::PlaybackFinished);
    assert_eq!(
        call.wait_for_timer(),
        call.transfer(TransferReason::NoInput)
    );
}

#[test]
fn yes_to_the_offered_person_transfers() {
    let mut call = Call::listening();
    call.wait_for_timer();
    call.ev(Event::PlaybackFinished);
    call.wait_for_timer();
    call.ev(Event::PlaybackFinished);
    call.say("yes please");
    assert_eq!(
        call.ev(special(Kind::Yes)),
        call.transfer(TransferReason::Requested)
    );
}

#[test]
fn a_timer_that_fires_early_does_nothing() {
    let mut call = Call::listening();
    assert_eq!(call.at(100, Event::Timer), vec![]);
}

/// The caller talking is not silence, however long they talk: a question longer than
/// the no-input time (or line noise before it, heard as the start of the turn) was
/// reprompted over, and then spoken over that prompt, it was no turn at all.
#[test]
fn a_caller_talking_longer_than_the_no_input_time_is_not_reprompted_over() {
    let mut call = Call::listening();
    call.at(6000, Event::SpeechConfirmed);
    assert_eq!(call.c.deadline(), None);
    assert_eq!(call.at(9000, Event::Timer), vec![]);
    call.at(3000, Event::UtteranceEnded);
    assert!(call.c.awaits_transcript());
}

#[test]
fn speech_that_barged_in_holds_the_no_input_timer_too() {
    let mut call = Call::listening();
    call.wait_for_timer();
    assert_eq!(
        call.at(500, Event::SpeechConfirmed),
        vec![Action::StopPlayback]
    );
    assert_eq!(call.c.deadline(), None);
    call.at(8000, Event::UtteranceEnded);
    assert!(call.c.awaits_transcript());
}

#[test]
fn a_slow_answer_gets_a_filler_once() {
    let mut call = Call::listening();
    call.at(1000, Event::SpeechConfirmed);
    call.at(1000, Event::UtteranceEnded);
    assert_eq!(
        call.c.deadline(),
        Some(call.now + Duration::from_millis(1500))
    );
    assert_eq!(
        call.wait_for_timer(),
        vec![Action::Play {
            text: call.p.filler.clone(),
            barge_in: false
        }]
    );
    assert_eq!(call.c.deadline(), None, "only one filler");
    // The filler ending does not start listening: we still owe an answer.
    assert_eq!(call.ev(Event::PlaybackFinished), vec![]);
    call.ev(Event::Transcript {
        text: "passport".into(),
        confidence: 0.9,
        language: "en".into(),
    });
    assert_eq!(call.ev(answer("pas.nyt", "Book a time.")).len(), 2);
}

#[test]
fn a_caller_who_goes_on_while_their_turn_is_recognised_hears_no_filler_over_it() {
    let mut call = Call::listening();
    call.at(1000, Event::SpeechConfirmed);
    call.at(1000, Event::UtteranceEnded);
    assert_eq!(call.c.turn(), 1);
    // 1.2 s of the 1.5 s wait gone, they go on: no filler while they talk, and the
    // wait starts again when they stop.
    assert_eq!(call.at(1200, Event::SpeechConfirmed), vec![]);
    assert_eq!(
        call.c.deadline(),
        Some(call.now + Duration::from_millis(1500))
    );
    assert_eq!(call.at(1400, Event::Timer), vec![]);
    assert_eq!(call.at(600, Event::UtteranceEnded), vec![]);
    assert_eq!(call.c.turn(), 1, "still the one turn");
    assert_eq!(
        call.c.deadline(),
        Some(call.now + Duration::from_millis(1500))
    );
    answers_passports(&mut call, "I would like to renew my passport");
}

#[test]
fn a_caller_who_goes_on_over_the_replys_first_moment_is_answered_for_all_they_said() {
    // "My father is eighty-two." heard as a turn of its own and missed; before they
    // could hear the menu, they go on ("does he need a medical to keep driving?").
    let mut call = Call::listening();
    call.say("my father is eighty-two");
    assert_eq!(call.ev(special(Kind::OutOfScope)), vec![call.miss_menu()]);
    assert_eq!(
        call.at(300, Event::SpeechConfirmed),
        vec![Action::StopPlayback]
    );
    assert_eq!(call.ev(Event::WentOnOverReply), vec![]);
    call.at(2000, Event::UtteranceEnded);
    assert_eq!(call.c.turn(), 1, "the same turn again");
    let acts = call.at(
        500,
        Event::Transcript {
            text: "my father is eighty-two does he need a medical to keep driving".into(),
            confidence: 0.8,
            language: "en".into(),
        },
    );
    assert!(
        matches!(
            &acts[..],
            [Action::Resolve {
                turn: 1,
                previous_intent: None,
                ..
            }]
        ),
        "{acts:?}"
    );
    // The miss was taken back with the turn: one more is the first, not a transfer.
    assert_eq!(call.ev(special(Kind::OutOfScope)), vec![call.miss_menu()]);

    // A doubt voiced in the reply is taken back too: what follows is not the
    // answer to it.
    let mut call = Call::listening();
    call.say("waste");
    call.ev(Event::Resolved(bins_or_bulky()));
    call.at(200, Event::SpeechConfirmed);
    call.ev(Event::WentOnOverReply);
    call.at(1500, Event::UtteranceEnded);
    call.ev(Event::Transcript {
        text: "waste, when do you empty the bins on my street".into(),
        confidence: 0.8,
        language: "en".into(),
    });
    let acts = call.ev(answer("affald.toemning", "Every second Tuesday."));
    assert!(
        matches!(&acts[0], Action::Play { text, .. } if text == "Every second Tuesday."),
        "{acts:?}"
    );

    // Only when the caller has the floor (the driver says so after a barge-in).
    call.ev(Event::WentOnOverReply);
    assert_eq!(call.c.turn(), 1, "the answer plays");
}

#[test]
fn a_turn_queued_past_the_filler_time_gets_the_filler_at_once_and_only_then() {
    let filler = |call: &Call| {
        vec![Action::Play {
            text: call.p.filler.clone(),
            barge_in: false,
        }]
    };
    let mut call = Call::listening();
    call.at(1000, Event::SpeechConfirmed);
    call.at(1000, Event::UtteranceEnded);
    // Expected back before the filler's time: nothing now, the timer stays.
    assert_eq!(
        call.ev(Event::TranscriptExpected(Duration::from_millis(1400))),
        vec![]
    );
    assert_eq!(
        call.c.deadline(),
        Some(call.now + Duration::from_millis(1500))
    );
    // 100 ms on, the same wait would end past it: the filler plays now, once.
    call.at(100, Event::Timer);
    assert_eq!(
        call.ev(Event::TranscriptExpected(Duration::from_millis(1400))),
        filler(&call)
    );
    assert_eq!(call.c.deadline(), None, "no second filler at the deadline");
    assert_eq!(
        call.ev(Event::TranscriptExpected(Duration::from_secs(5))),
        vec![]
    );
    call.ev(Event::PlaybackFinished);
    answers_passports(&mut call, "passport");

    // Listening (no turn being recognised): a wait means nothing.
    let mut call = Call::listening();
    assert_eq!(
        call.ev(Event::TranscriptExpected(Duration::from_secs(5))),
        vec![]
    );
}

#[test]
fn a_fast_answer_gets_no_filler() {
    let mut call = Call::listening();
    call.say("passport");
    let acts = call.at(300, answer("pas.nyt", "Book a time."));
    assert!(!acts
        .iter()
        .any(|a| matches!(a, Action::Play { text, .. } if *text == call.p.filler)));
}

#[test]
fn barge_in_stops_an_interruptible_prompt_and_takes_the_new_question() {
    let mut call = Call::listening();
    call.say("passport");
    call.ev(answer("pas.nyt", "A long answer about passports."));
    assert!(call.c.interruptible());
    assert_eq!(
        call.at(800, Event::SpeechConfirmed),
        vec![Action::StopPlayback]
    );
    call.at(1200, Event::UtteranceEnded);
    let acts = call.at(
        400,
        Event::Transcript {
            text: "what about driving licences".into(),
            confidence: 0.8,
            language: "en".into(),
        },
    );
    assert!(
        matches!(acts.as_slice(), [Action::Resolve { turn: 2, .. }]),
        "{acts:?}"
    );
}

#[test]
fn prompts_that_may_not_be_interrupted_are_not() {
    let mut call = Call::with(Settings {
        barge_in_greeting: false,
        ..Settings::default()
    });
    call.ev(Event::Answered);
    assert!(!call.c.interruptible());
    assert_eq!(call.ev(Event::SpeechConfirmed), vec![]);
    // An utterance spoken over it is not a turn.
    assert_eq!(call.ev(Event::UtteranceEnded), vec![]);
    assert_eq!(
        call.ev(Event::Transcript {
            text: "hello".into(),
            confidence: 0.9,
            language: "en".into(),
        }),
        vec![]
    );
    assert_eq!(call.c.turn(), 0);
}

#[test]
fn the_greeting_can_be_interrupted_by_default() {
    let mut call = Call::new();
    call.ev(Event::Answered);
    assert_eq!(call.ev(Event::SpeechConfirmed), vec![Action::StopPlayback]);
}

/// The turn's transcript is `text`, and its answer plays first.
fn answers_passports(call: &mut Call, text: &str) {
    call.ev(Event::Transcript {
        text: text.into(),
        confidence: 0.9,
        language: "en".into(),
    });
    let acts = call.ev(answer("pas.nyt", "Book a time."));
    assert!(
        matches!(&acts[0], Action::Play { text, .. } if text == "Book a time."),
        "{acts:?}"
    );
}
