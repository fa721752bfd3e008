//! The conversation's unit tests: every path with a fake clock, in microseconds.

use std::time::Duration;

use super::*;
use crate::call::menu::{Choice, Entry};
use crate::intent::kb::Text;
use crate::intent::resolution::Candidate;

mod doubt;
mod language;
mod shutdown;
mod sms;
mod timing;
mod transfer;

struct Call {
    c: Conversation,
    now: Instant,
    /// The prompts in the call's language.
    p: Prompts,
    /// What the driver's router answers to `Action::Route`.
    route: Route,
    /// The language the recognizer reports for what the caller says.
    heard: &'static str,
}

fn text(da: &str, en: &str) -> Text {
    Text {
        da: da.into(),
        en: en.into(),
    }
}

/// 1 waste (bin collection, bulky waste), 2 passports (new passport).
fn test_menu() -> Arc<Menu> {
    let choice = |id: &str, da: &str, en: &str| Choice {
        intent_id: id.into(),
        title: text(da, en),
    };
    Arc::new(Menu::new(vec![
        Entry {
            key: '1',
            title: text("affald", "waste"),
            choices: vec![
                choice("affald.toemning", "Tømning", "bin collection"),
                choice("affald.storskrald", "Storskrald", "bulky waste"),
            ],
        },
        Entry {
            key: '2',
            title: text("pas", "passports"),
            choices: vec![choice("pas.nyt", "Nyt pas", "new passport")],
        },
    ]))
}

fn open() -> Route {
    Route::Open {
        queue: "borgerservice".into(),
        spoken: "Citizen Service".into(),
    }
}

fn resolution(action: IntentAction, kind: Kind, id: &str, answer: &str) -> Resolution {
    Resolution {
        action,
        intent_id: id.into(),
        kind,
        topic: id.split('.').next().unwrap_or("general").into(),
        answer_text: answer.into(),
        link_url: None,
        sms_text: None,
        confidence: 0.9,
        candidates: vec![],
        reason: String::new(),
    }
}

/// "Is it about bin collection, or about bulky waste?"
fn bins_or_bulky() -> Resolution {
    let mut r = resolution(IntentAction::Clarify, Kind::Answer, "affald.toemning", "");
    r.candidates = [
        ("affald.toemning", "bin collection"),
        ("affald.storskrald", "bulky waste"),
    ]
    .map(|(id, title)| Candidate {
        intent_id: id.into(),
        title: title.into(),
        confidence: 0.45,
    })
    .to_vec();
    r
}

fn answer(id: &str, text: &str) -> Event {
    Event::Resolved(resolution(IntentAction::Answer, Kind::Answer, id, text))
}

fn special(kind: Kind) -> Event {
    let action = if kind == Kind::Goodbye {
        IntentAction::End
    } else {
        IntentAction::Answer
    };
    Event::Resolved(resolution(action, kind, "system.x", ""))
}

fn play(text: &str) -> Action {
    Action::Play {
        text: text.into(),
        barge_in: true,
    }
}

impl Call {
    fn new() -> Call {
        Call::with(Settings::default())
    }

    fn with(settings: Settings) -> Call {
        Call::in_language(settings, Language::En, test_menu())
    }

    fn in_language(settings: Settings, language: Language, menu: Arc<Menu>) -> Call {
        let prompts = PromptSet::default();
        Call {
            p: prompts.for_language(language.as_str()).clone(),
            c: Conversation::new(settings, prompts, language, menu),
            now: Instant::now(),
            route: open(),
            heard: language.as_str(),
        }
    }

    /// The keypad menu at `level`, as read out in the call's language.
    fn menu(&self, level: Level) -> String {
        test_menu().speak(level, &self.p, self.c.language())
    }

    /// What the first miss says: the menu, after "I did not quite understand".
    fn miss_menu(&self) -> Action {
        play(&format!("{} {}", self.p.menu_intro, self.menu(Level::Top)))
    }

    /// Feeds `ev` `ms` after the last event; a `Route` is answered at once, as the
    /// driver does.
    fn at(&mut self, ms: u64, ev: Event) -> Vec<Action> {
        self.now += Duration::from_millis(ms);
        let mut out = Vec::new();
        for action in self.c.handle(self.now, ev) {
            match action {
                Action::Route(_) => {
                    out.extend(self.c.handle(self.now, Event::Routed(self.route.clone())))
                }
                other => out.push(other),
            }
        }
        out
    }

    fn ev(&mut self, ev: Event) -> Vec<Action> {
        self.at(0, ev)
    }

    /// Advances the fake clock to the conversation's deadline and fires it.
    fn wait_for_timer(&mut self) -> Vec<Action> {
        let due = self.c.deadline().expect("a deadline");
        self.now = due;
        self.at(0, Event::Timer)
    }

    /// Answered, greeting played: listening.
    fn listening() -> Call {
        let mut call = Call::new();
        call.ev(Event::Answered);
        call.ev(Event::PlaybackFinished);
        call
    }

    /// The caller says something that transcribes to `text`.
    fn say(&mut self, text: &str) -> Vec<Action> {
        self.at(1000, Event::SpeechConfirmed);
        self.at(1500, Event::UtteranceEnded);
        self.at(
            500,
            Event::Transcript {
                text: text.into(),
                confidence: 0.8,
                language: self.heard.into(),
            },
        )
    }

    /// What a transfer starts with; the reason shows in the `Transfer` after playback.
    fn transfer(&self, _reason: TransferReason) -> Vec<Action> {
        vec![
            Action::StopPlayback,
            Action::Play {
                text: self.p.transferring_to("Citizen Service"),
                barge_in: false,
            },
        ]
    }
}

#[test]
fn greeting_says_it_is_a_digital_assistant_and_that_zero_reaches_a_person() {
    let mut call = Call::new();
    let acts = call.ev(Event::Answered);
    let [Action::Play {
        text,
        barge_in: true,
    }] = acts.as_slice()
    else {
        panic!("{acts:?}")
    };
    assert!(
        text.contains("digital assistant") && text.contains("press zero"),
        "{text}"
    );
    let da = Prompts::danish().greeting;
    assert!(
        da.contains("digital assistent") && da.contains("trykke nul"),
        "{da}"
    );
    assert_eq!(call.c.deadline(), None, "no timer while speaking");
}

#[test]
fn a_question_is_resolved_answered_and_followed_by_anything_else() {
    let mut call = Call::listening();
    assert_eq!(
        call.say("when is my bin emptied"),
        vec![Action::Resolve {
            text: "when is my bin emptied".into(),
            turn: 1,
            previous_intent: None,
            chosen_intent_id: None
        }]
    );
    let acts = call.ev(answer(
        "affald.toemning",
        "Your bin is emptied every other week.",
    ));
    assert_eq!(
        acts,
        vec![
            play("Your bin is emptied every other week."),
            play(&call.p.anything_else)
        ]
    );
    assert_eq!(call.ev(Event::PlaybackFinished), vec![]);
    assert!(call.c.deadline().is_some(), "listening again");
    // The next question carries the previous intent.
    let acts = call.say("and bulky waste");
    assert_eq!(
        acts,
        vec![Action::Resolve {
            text: "and bulky waste".into(),
            turn: 2,
            previous_intent: Some("affald.toemning".into()),
            chosen_intent_id: None
        }]
    );
}

#[test]
fn no_after_anything_else_says_goodbye_and_hangs_up() {
    let mut call = Call::listening();
    call.say("passport");
    call.ev(answer("pas.nyt", "Book a time."));
    call.ev(Event::PlaybackFinished);
    call.say("no thanks");
    assert_eq!(
        call.ev(special(Kind::No)),
        vec![Action::Play {
            text: call.p.farewell.clone(),
            barge_in: false
        }]
    );
    assert_eq!(call.ev(Event::PlaybackFinished), vec![Action::Hangup]);
    assert!(call.c.is_over());
    assert_eq!(call.c.outcome(), Outcome::Resolved);
}

#[test]
fn goodbye_at_any_point_ends_politely() {
    let mut call = Call::listening();
    call.say("bye");
    assert_eq!(
        call.ev(special(Kind::Goodbye)),
        vec![Action::Play {
            text: call.p.farewell.clone(),
            barge_in: false
        }]
    );
    assert_eq!(call.ev(Event::PlaybackFinished), vec![Action::Hangup]);
    assert_eq!(call.c.outcome(), Outcome::Unresolved);
}

#[test]
fn yes_after_anything_else_asks_what_else() {
    let mut call = Call::listening();
    call.say("passport");
    call.ev(answer("pas.nyt", "Book a time."));
    call.ev(Event::PlaybackFinished);
    call.say("yes");
    assert_eq!(call.ev(special(Kind::Yes)), vec![play(&call.p.what_else)]);
}

#[test]
fn repeat_replays_the_last_answer() {
    let mut call = Call::listening();
    call.say("opening hours");
    call.ev(answer(
        "borgerservice.aabningstider",
        "We are open from ten.",
    ));
    call.ev(Event::PlaybackFinished);
    call.say("say that again");
    assert_eq!(
        call.ev(special(Kind::Repeat)),
        vec![play("We are open from ten.")]
    );
}

#[test]
fn clarify_asks_between_the_top_two_candidates() {
    let mut call = Call::listening();
    call.say("waste");
    let r = bins_or_bulky();
    assert_eq!(
        call.ev(Event::Resolved(r)),
        vec![play(
            "Is it about bin collection? Then press 1. Or about bulky waste? Then press 2."
        )]
    );
    // 2 picks the second: its answer is asked for by id, as a turn of its own.
    let acts = call.at(800, Event::Dtmf('2'));
    assert_eq!(
        acts,
        vec![
            Action::StopPlayback,
            Action::Resolve {
                text: "bulky waste".into(),
                turn: 2,
                previous_intent: Some("affald.toemning".into()),
                chosen_intent_id: Some("affald.storskrald".into()),
            }
        ]
    );
}

#[test]
fn two_misunderstandings_in_a_row_transfer_to_a_person() {
    let mut call = Call::listening();
    call.say("blah");
    assert_eq!(call.ev(special(Kind::OutOfScope)), vec![call.miss_menu()]);
    call.ev(Event::PlaybackFinished);
    call.say("blah blah");
    let acts = call.ev(special(Kind::OutOfScope));
    assert_eq!(acts, call.transfer(TransferReason::NoMatch));
    let acts = call.ev(Event::PlaybackFinished);
    let [Action::Transfer(t)] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert_eq!(t.reason, TransferReason::NoMatch);
    assert_eq!(call.c.outcome(), Outcome::Transferred);
}

#[test]
fn an_answer_in_between_resets_the_misunderstanding_count() {
    let mut call = Call::listening();
    call.say("blah");
    call.ev(special(Kind::OutOfScope));
    call.ev(Event::PlaybackFinished);
    call.say("passport");
    call.ev(answer("pas.nyt", "Book a time."));
    call.ev(Event::PlaybackFinished);
    call.say("blah");
    assert_eq!(call.ev(special(Kind::OutOfScope)), vec![call.miss_menu()]);
}

#[test]
fn dtmf_zero_transfers_at_once_even_mid_prompt() {
    let mut call = Call::new();
    call.ev(Event::Answered);
    assert_eq!(
        call.ev(Event::Dtmf('0')),
        call.transfer(TransferReason::Dtmf)
    );
    // Pressing again while being transferred does not start a second transfer.
    assert_eq!(call.ev(Event::Dtmf('0')), vec![]);
    let acts = call.ev(Event::PlaybackFinished);
    assert!(matches!(
        acts.as_slice(),
        [Action::Transfer(TransferRequest {
            reason: TransferReason::Dtmf,
            ..
        })]
    ));
}

#[test]
fn other_keys_do_nothing() {
    let mut call = Call::listening();
    assert_eq!(call.ev(Event::Dtmf('5')), vec![]);
}

#[test]
fn asking_for_a_person_transfers_with_the_topic_so_far() {
    let mut call = Call::listening();
    call.say("housing benefit");
    call.ev(answer("boligstoette.soeg", "Apply online."));
    call.ev(Event::PlaybackFinished);
    call.say("I want a real person");
    let acts = call.ev(special(Kind::Person));
    assert_eq!(acts, call.transfer(TransferReason::Requested));
    let acts = call.ev(Event::PlaybackFinished);
    let [Action::Transfer(t)] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert_eq!(t.topic.as_deref(), Some("boligstoette"));
    assert_eq!(t.intent_id.as_deref(), Some("boligstoette.soeg"));
}

#[test]
fn intents_that_need_a_person_transfer() {
    let mut call = Call::listening();
    call.say("what is the status of my case");
    let r = resolution(
        IntentAction::Transfer,
        Kind::Answer,
        "general.sagsstatus",
        "",
    );
    assert_eq!(
        call.ev(Event::Resolved(r)),
        call.transfer(TransferReason::NeedsPerson)
    );
}

#[test]
fn an_empty_transcript_opens_the_menu() {
    let mut call = Call::listening();
    assert_eq!(call.say(" ... "), vec![call.miss_menu()]);
}

#[test]
fn an_overloaded_recognizer_opens_the_menu_rather_than_going_silent() {
    let mut call = Call::listening();
    call.at(1000, Event::SpeechConfirmed);
    call.at(1000, Event::UtteranceEnded);
    assert_eq!(call.ev(Event::TranscriptFailed), vec![call.miss_menu()]);
}

#[test]
fn without_a_menu_a_miss_asks_to_rephrase_or_repeat() {
    let mut call = Call::in_language(Settings::default(), Language::En, Arc::default());
    call.ev(Event::Answered);
    call.ev(Event::PlaybackFinished);
    assert_eq!(call.say(" ... "), vec![play(&call.p.not_heard)]);
    let mut call = Call::in_language(Settings::default(), Language::En, Arc::default());
    call.ev(Event::Answered);
    call.ev(Event::PlaybackFinished);
    call.say("blah");
    assert_eq!(
        call.ev(special(Kind::OutOfScope)),
        vec![play(&call.p.no_match)]
    );
    call.ev(Event::PlaybackFinished);
    call.say("blah blah");
    assert_eq!(
        call.ev(special(Kind::OutOfScope)),
        call.transfer(TransferReason::NoMatch)
    );
}

#[test]
fn hanging_up_stops_everything() {
    let mut call = Call::listening();
    call.say("passport");
    assert_eq!(call.ev(Event::HungUp), vec![Action::StopPlayback]);
    assert!(call.c.is_over());
    assert_eq!(call.c.deadline(), None);
    assert_eq!(call.ev(answer("pas.nyt", "Too late.")), vec![]);
    assert_eq!(call.c.outcome(), Outcome::Abandoned);
}

#[test]
fn late_results_from_an_abandoned_turn_are_ignored() {
    let mut call = Call::listening();
    call.say("passport");
    call.ev(Event::Dtmf('0'));
    assert_eq!(call.ev(answer("pas.nyt", "Book a time.")), vec![]);
}

#[test]
fn a_call_cannot_loop_forever() {
    let mut call = Call::with(Settings {
        max_turns: 3,
        ..Settings::default()
    });
    call.ev(Event::Answered);
    call.ev(Event::PlaybackFinished);
    for _ in 0..3 {
        call.say("passport");
        call.ev(answer("pas.nyt", "Book a time."));
        call.ev(Event::PlaybackFinished);
    }
    assert_eq!(
        call.say("passport again"),
        call.transfer(TransferReason::TooManyTurns)
    );
}
