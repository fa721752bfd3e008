//! Transfers: where they go, what is said, and what happens when nobody answers.

use super::*;

#[test]
fn the_intent_service_down_means_an_apology_and_a_transfer_not_a_hangup() {
    let mut call = Call::listening();
    call.say("passport");
    let acts = call.ev(Event::ResolveFailed);
    let text = format!(
        "{} {}",
        call.p.technical_problem,
        call.p.transferring_to("Citizen Service")
    );
    assert_eq!(
        acts,
        vec![
            Action::StopPlayback,
            Action::Play {
                text,
                barge_in: false
            }
        ]
    );
    let acts = call.ev(Event::PlaybackFinished);
    assert!(matches!(
        acts.as_slice(),
        [Action::Transfer(TransferRequest {
            reason: TransferReason::ServiceDown,
            ..
        })]
    ));
}

#[test]
fn a_failed_transfer_apologises_and_ends_politely() {
    let mut call = Call::listening();
    call.ev(Event::Dtmf('0'));
    call.ev(Event::PlaybackFinished);
    let acts = call.ev(Event::TransferFailed);
    let [Action::Play { text, .. }] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert!(text.contains(&call.p.no_agents) && text.contains(&call.p.farewell));
    assert_eq!(call.ev(Event::PlaybackFinished), vec![Action::Hangup]);
    assert_eq!(call.c.outcome(), Outcome::Error);
}

#[test]
fn the_transfer_goes_to_the_routed_queue_and_ends_the_bots_part() {
    let mut call = Call::listening();
    call.say("waste");
    call.ev(answer("affald.storskrald", "Book a pickup."));
    call.ev(Event::PlaybackFinished);
    call.ev(Event::Dtmf('0'));
    let acts = call.ev(Event::PlaybackFinished);
    assert_eq!(
        acts,
        vec![Action::Transfer(TransferRequest {
            topic: Some("affald".into()),
            intent_id: Some("affald.storskrald".into()),
            reason: TransferReason::Dtmf,
            queue: Some("borgerservice".into()),
        })]
    );
    assert_eq!(call.ev(Event::TransferDone), vec![]);
    assert!(call.c.is_over());
    assert_eq!(call.c.outcome(), Outcome::Transferred);
}

#[test]
fn out_of_hours_the_caller_hears_the_hours_and_a_polite_goodbye() {
    let mut call = Call::listening();
    call.route = Route::Closed {
        spoken: "Citizen Service".into(),
        hours: "Monday to Friday from 10 to 15".into(),
    };
    let acts = call.ev(Event::Dtmf('0'));
    let [Action::StopPlayback, Action::Play { text, .. }] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert_eq!(
        text,
        &format!(
            "Citizen Service is closed right now. It is open Monday to Friday from 10 to 15. {}",
            call.p.farewell
        )
    );
    assert_eq!(call.ev(Event::PlaybackFinished), vec![Action::Hangup]);
    assert_eq!(call.c.outcome(), Outcome::OutOfHours);
}

#[test]
fn with_no_queue_configured_the_caller_is_told_and_not_left_waiting() {
    let mut call = Call::listening();
    call.route = Route::NoQueue;
    call.say("passport");
    let acts = call.ev(Event::ResolveFailed);
    let [Action::StopPlayback, Action::Play { text, .. }] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert!(text.starts_with(&call.p.technical_problem) && text.contains(&call.p.no_agents));
    assert_eq!(call.ev(Event::PlaybackFinished), vec![Action::Hangup]);
    assert_eq!(call.c.outcome(), Outcome::Error);
}

#[test]
fn a_second_zero_while_routing_or_transferring_changes_nothing() {
    let mut call = Call::listening();
    let first = call.c.handle(call.now, Event::Dtmf('0'));
    assert!(matches!(
        first.as_slice(),
        [Action::StopPlayback, Action::Route(_)]
    ));
    assert_eq!(call.c.handle(call.now, Event::Dtmf('0')), vec![]);
    call.c.handle(call.now, Event::Routed(open()));
    call.ev(Event::PlaybackFinished);
    assert_eq!(call.ev(Event::Dtmf('0')), vec![]);
}
