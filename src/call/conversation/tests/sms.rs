//! The link by SMS: offered after an answer with a page, sent only with consent.

use super::*;

fn answer_with_link(id: &str, text: &str) -> Event {
    let mut r = resolution(IntentAction::Answer, Kind::Answer, id, text);
    r.link_url = Some("https://kommune.example.org/pas".into());
    r.sms_text = Some("How to get a new passport:".into());
    Event::Resolved(r)
}

fn offer() -> SmsOffer {
    SmsOffer {
        intent_id: "pas.nyt".into(),
        link: "https://kommune.example.org/pas".into(),
        sms_text: Some("How to get a new passport:".into()),
    }
}

#[test]
fn an_answer_with_a_page_offers_the_link_and_1_sends_it_before_confirming() {
    let mut call = Call::listening();
    call.c.set_sms_possible(true);
    call.say("passport");
    assert_eq!(
        call.ev(answer_with_link("pas.nyt", "Book a time.")),
        vec![play("Book a time."), play(&call.p.sms_offer)]
    );
    // 1 during the offer stops it and queues the SMS; nothing is promised yet.
    assert_eq!(
        call.ev(Event::Dtmf('1')),
        vec![Action::StopPlayback, Action::SendSms(offer())]
    );
    assert_eq!(
        call.c.deadline(),
        None,
        "waiting for the outbox, not the caller"
    );
    assert_eq!(
        call.ev(Event::SmsQueued),
        vec![play(&format!(
            "{} {}",
            call.p.sms_queued, call.p.anything_else
        ))]
    );
    // The same answer again is not offered twice.
    call.ev(Event::PlaybackFinished);
    call.say("passport again");
    assert_eq!(
        call.ev(answer_with_link("pas.nyt", "Book a time.")),
        vec![
            play("Book a time."),
            play(&format!(
                "{} {}",
                call.p.link_elsewhere, call.p.anything_else
            ))
        ]
    );
}

#[test]
fn yes_accepts_the_offer_and_no_moves_on() {
    let mut call = Call::listening();
    call.c.set_sms_possible(true);
    call.say("passport");
    call.ev(answer_with_link("pas.nyt", "Book a time."));
    call.ev(Event::PlaybackFinished);
    call.say("yes please");
    assert_eq!(
        call.ev(special(Kind::Yes)),
        vec![Action::StopPlayback, Action::SendSms(offer())]
    );
    let acts = call.ev(Event::SmsFailed);
    let [Action::Play { text, .. }] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert!(text.starts_with(&call.p.sms_failed) && text.contains(&call.p.link_elsewhere));

    let mut call = Call::listening();
    call.c.set_sms_possible(true);
    call.say("passport");
    call.ev(answer_with_link("pas.nyt", "Book a time."));
    call.ev(Event::PlaybackFinished);
    call.say("no thanks");
    assert_eq!(
        call.ev(special(Kind::No)),
        vec![play(&call.p.anything_else)]
    );
    assert_eq!(call.ev(Event::Dtmf('1')), vec![], "the offer is closed");
}

#[test]
fn without_a_usable_number_the_link_is_not_offered_but_pointed_to() {
    let mut call = Call::listening();
    call.say("passport");
    assert_eq!(
        call.ev(answer_with_link("pas.nyt", "Book a time.")),
        vec![
            play("Book a time."),
            play(&format!(
                "{} {}",
                call.p.link_elsewhere, call.p.anything_else
            ))
        ]
    );
    assert_eq!(call.ev(Event::Dtmf('1')), vec![]);
}

#[test]
fn on_a_web_call_the_page_shows_the_link_and_no_sms_is_offered() {
    let mut call = Call::listening();
    call.c.set_sms_possible(true);
    call.c.set_links_on_screen(true);
    call.say("passport");
    let mut r = resolution(
        IntentAction::Answer,
        Kind::Answer,
        "pas.nyt",
        "Book a time.",
    );
    r.link_url = Some("https://kommune.example.org/pas".into());
    r.candidates = vec![Candidate {
        intent_id: "pas.nyt".into(),
        title: "A new passport".into(),
        confidence: 0.9,
    }];
    assert_eq!(
        call.ev(Event::Resolved(r)),
        vec![
            play("Book a time."),
            play(&format!(
                "{} {}",
                call.p.link_on_screen, call.p.anything_else
            )),
            Action::ShowLink {
                url: "https://kommune.example.org/pas".into(),
                title: "A new passport".into(),
            },
        ]
    );
    // 1 is not an SMS consent here: nothing was offered.
    assert!(!call
        .ev(Event::Dtmf('1'))
        .iter()
        .any(|a| matches!(a, Action::SendSms(_))));
}
