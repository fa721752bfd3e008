//! The gateway stopping: after the drain time a call is ended with a goodbye, never
//! cut off, and a call already on its way to a person is left to get there.

use super::*;

fn goodbye(call: &Call) -> Vec<Action> {
    vec![
        Action::StopPlayback,
        Action::Play {
            text: call.p.shutdown.clone(),
            barge_in: false,
        },
    ]
}

#[test]
fn a_listening_call_hears_why_and_is_hung_up_after_it() {
    let mut call = Call::listening();
    assert_eq!(call.ev(Event::ShuttingDown), goodbye(&call));
    // Speech over the goodbye does not stop it.
    assert!(!call.c.interruptible());
    assert_eq!(call.ev(Event::PlaybackFinished), vec![Action::Hangup]);
    assert!(call.c.is_over());
    assert_eq!(call.c.outcome(), Outcome::Shutdown);
    assert_eq!(call.c.outcome().as_str(), "shutdown");
}

#[test]
fn an_answer_arriving_after_the_goodbye_is_not_played() {
    let mut call = Call::listening();
    call.say("passport");
    assert_eq!(call.ev(Event::ShuttingDown), goodbye(&call));
    assert_eq!(call.ev(answer("pas.nyt", "Book a time.")), vec![]);
    assert_eq!(call.ev(Event::PlaybackFinished), vec![Action::Hangup]);
}

#[test]
fn a_call_being_put_through_goes_on() {
    let mut call = Call::listening();
    call.ev(Event::Dtmf('0'));
    assert_eq!(
        call.ev(Event::ShuttingDown),
        vec![],
        "the transfer prompt plays"
    );
    assert!(matches!(
        call.ev(Event::PlaybackFinished).as_slice(),
        [Action::Transfer(_)]
    ));
    assert_eq!(call.ev(Event::ShuttingDown), vec![]);
    assert_eq!(call.c.outcome(), Outcome::Transferred);
}

#[test]
fn a_call_saying_goodbye_already_is_left_to_finish() {
    let mut call = Call::listening();
    call.say("goodbye");
    call.ev(special(Kind::Goodbye));
    assert_eq!(call.ev(Event::ShuttingDown), vec![]);
    assert_eq!(call.ev(Event::PlaybackFinished), vec![Action::Hangup]);
    assert_ne!(call.c.outcome(), Outcome::Shutdown);
}
