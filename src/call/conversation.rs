//! The conversation: a sans-IO state machine for one call.
//!
//! It is fed events (answered, caller speech, transcripts, intent results, DTMF keys,
//! playback finished, timer) with the time they happened, and answers with actions
//! (play, stop, resolve, transfer, hang up) and its next deadline. It never sleeps,
//! reads a clock or touches a socket, so every path is tested in microseconds.
//!
//! The rules callers rely on: the bot always says what it is and that 0 reaches a
//! person; silence is never answered with silence; nobody is stuck in a loop (two
//! misunderstandings or two silences lead to a person); 0 or asking for a person
//! transfers at once; a failure of ours (intent service down) transfers, never hangs up.

use std::time::{Duration, Instant};

use super::prompts::Prompts;
use crate::intent::resolution::{Action as IntentAction, Kind, Resolution};

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Silence after a prompt before the caller is reprompted.
    pub no_input: Duration,
    /// If the answer is not ready this long after the caller stopped, say "one moment".
    pub filler_after: Duration,
    /// Misunderstandings in a row before a transfer.
    pub max_no_match: u32,
    /// Turns in one call before a transfer (a loop guard).
    pub max_turns: u32,
    /// Whether the caller may interrupt the greeting.
    pub barge_in_greeting: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            no_input: Duration::from_secs(7),
            filler_after: Duration::from_millis(1500),
            max_no_match: 2,
            max_turns: 20,
            barge_in_greeting: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Answered,
    /// The caller has been speaking long enough (300 ms) not to be a cough.
    SpeechConfirmed,
    /// The caller finished an utterance; it is being transcribed.
    UtteranceEnded,
    Transcript {
        text: String,
        confidence: f32,
    },
    TranscriptFailed,
    Resolved(Resolution),
    ResolveFailed,
    Dtmf(char),
    /// Everything we queued has been played.
    PlaybackFinished,
    /// The answer to `Action::Route`.
    Routed(Route),
    /// The caller is with a person now (referred away, or a bridged call that ended).
    TransferDone,
    /// The answer to `Action::SendSms`: the message is in the outbox, or not.
    SmsQueued,
    SmsFailed,
    TransferFailed,
    HungUp,
    /// The deadline the conversation asked for has passed.
    Timer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferReason {
    Requested,
    Dtmf,
    NeedsPerson,
    NoMatch,
    NoInput,
    ServiceDown,
    TooManyTurns,
}

impl TransferReason {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferReason::Requested => "requested",
            TransferReason::Dtmf => "dtmf",
            TransferReason::NeedsPerson => "needs_person",
            TransferReason::NoMatch => "no_match",
            TransferReason::NoInput => "no_input",
            TransferReason::ServiceDown => "service_down",
            TransferReason::TooManyTurns => "too_many_turns",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferRequest {
    pub topic: Option<String>,
    pub intent_id: Option<String>,
    pub reason: TransferReason,
    /// The queue's name, once routed.
    pub queue: Option<String>,
}

/// An answer's page, as offered by SMS.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsOffer {
    pub intent_id: String,
    pub link: String,
    pub sms_text: Option<String>,
}

/// Where a transfer would go right now, as the driver's router sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Open {
        queue: String,
        /// The queue's name as spoken in the call's language.
        spoken: String,
    },
    Closed {
        spoken: String,
        /// The opening hours read aloud.
        hours: String,
    },
    NoQueue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Play {
        text: String,
        barge_in: bool,
    },
    StopPlayback,
    Resolve {
        text: String,
        turn: u32,
        previous_intent: Option<String>,
    },
    /// Ask the router where this transfer goes; answered at once by `Event::Routed`.
    Route(TransferRequest),
    /// The caller said yes to the link by SMS: queue it, then send `SmsQueued`.
    SendSms(SmsOffer),
    Transfer(TransferRequest),
    Hangup,
}

/// How the call ended, for call records and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Resolved,
    Transferred,
    /// Wanted a person while every queue was closed.
    OutOfHours,
    Abandoned,
    Unresolved,
    /// A transfer reached nobody.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Resolved => "resolved",
            Outcome::Transferred => "transferred",
            Outcome::OutOfHours => "out_of_hours",
            Outcome::Abandoned => "abandoned",
            Outcome::Unresolved => "unresolved",
            Outcome::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum After {
    Listen,
    Hangup,
    Transfer(TransferRequest),
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    NotAnswered,
    Speaking {
        then: After,
        interruptible: bool,
    },
    Listening {
        since: Instant,
    },
    Thinking {
        since: Instant,
        filler_played: bool,
    },
    /// Waiting for the outbox to take the SMS the caller asked for.
    Sending,
    /// Waiting for `Event::Routed`, with what to say before the transfer prompt.
    Routing {
        request: TransferRequest,
        lead: Option<String>,
    },
    Transferring,
    Ended,
}

/// What the last question we asked was, to make sense of "yes" and "no".
#[derive(Debug, Clone, PartialEq)]
enum Asked {
    Nothing,
    AnythingElse,
    OfferedPerson,
    OfferedSms(SmsOffer),
}

pub struct Conversation {
    settings: Settings,
    prompts: Prompts,
    state: State,
    asked: Asked,
    turn: u32,
    no_match: u32,
    silences: u32,
    answered_any: bool,
    last_answer: Option<String>,
    last_intent: Option<String>,
    last_topic: Option<String>,
    outcome: Option<Outcome>,
    /// Whether this caller can get an SMS (a mobile number under the limit, a sender).
    sms_possible: bool,
    /// Intents whose link was already texted in this call.
    sms_sent: Vec<String>,
}

impl Conversation {
    pub fn new(settings: Settings, prompts: Prompts) -> Self {
        Conversation {
            settings,
            prompts,
            state: State::NotAnswered,
            asked: Asked::Nothing,
            turn: 0,
            no_match: 0,
            silences: 0,
            answered_any: false,
            last_answer: None,
            last_intent: None,
            last_topic: None,
            outcome: None,
            sms_possible: false,
            sms_sent: Vec::new(),
        }
    }

    /// Set by the driver before the call is answered.
    pub fn set_sms_possible(&mut self, possible: bool) {
        self.sms_possible = possible;
    }

    /// When the driver must send `Event::Timer`, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Listening { since } => Some(since + self.settings.no_input),
            State::Thinking {
                since,
                filler_played: false,
            } => Some(since + self.settings.filler_after),
            _ => None,
        }
    }

    pub fn turn(&self) -> u32 {
        self.turn
    }

    pub fn is_over(&self) -> bool {
        self.state == State::Ended
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome.unwrap_or(if self.answered_any {
            Outcome::Resolved
        } else {
            Outcome::Unresolved
        })
    }

    /// Whether caller speech now should stop our audio.
    pub fn interruptible(&self) -> bool {
        matches!(
            self.state,
            State::Speaking {
                interruptible: true,
                then: After::Listen
            }
        )
    }

    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        if matches!(self.state, State::Ended) {
            return Vec::new();
        }
        match event {
            Event::Answered => self.say(
                &self.prompts.greeting.clone(),
                self.settings.barge_in_greeting,
                After::Listen,
            ),
            Event::HungUp => {
                if self.outcome.is_none() && !matches!(self.state, State::Transferring) {
                    self.outcome = Some(if self.answered_any {
                        Outcome::Resolved
                    } else {
                        Outcome::Abandoned
                    });
                }
                self.state = State::Ended;
                vec![Action::StopPlayback]
            }
            Event::Dtmf('0') => self.transfer_now(TransferReason::Dtmf),
            Event::Dtmf('1') => self.accept_sms(),
            Event::SmsQueued | Event::SmsFailed if self.state == State::Sending => {
                let lead = if event == Event::SmsQueued {
                    self.prompts.sms_queued.clone()
                } else {
                    format!(
                        "{} {}",
                        self.prompts.sms_failed, self.prompts.link_elsewhere
                    )
                };
                self.asked = Asked::AnythingElse;
                let text = format!("{lead} {}", self.prompts.anything_else);
                self.say(&text, true, After::Listen)
            }
            Event::SmsQueued | Event::SmsFailed => Vec::new(),
            Event::Dtmf(_) => Vec::new(),
            Event::SpeechConfirmed => self.on_speech(now),
            Event::UtteranceEnded => self.on_utterance_end(now),
            Event::Transcript { text, .. } => self.on_transcript(text),
            Event::TranscriptFailed => self.on_misunderstood(true),
            Event::Resolved(r) => self.on_resolved(r),
            Event::ResolveFailed => {
                if !matches!(self.state, State::Thinking { .. }) {
                    return Vec::new();
                }
                let apology = self.prompts.technical_problem.clone();
                self.transfer_saying(TransferReason::ServiceDown, Some(apology))
            }
            Event::PlaybackFinished => self.on_playback_finished(now),
            Event::Routed(route) => self.on_routed(route),
            Event::TransferDone => {
                self.state = State::Ended;
                Vec::new()
            }
            Event::TransferFailed => {
                self.outcome = Some(Outcome::Error);
                let text = self.prompts.no_agents_goodbye();
                self.say(&text, false, After::Hangup)
            }
            Event::Timer => self.on_timer(now),
        }
    }

    fn say(&mut self, text: &str, barge_in: bool, then: After) -> Vec<Action> {
        self.state = State::Speaking {
            then,
            interruptible: barge_in,
        };
        vec![Action::Play {
            text: text.to_string(),
            barge_in,
        }]
    }

    fn listen(&mut self, now: Instant) {
        self.state = State::Listening { since: now };
    }

    fn transfer_now(&mut self, reason: TransferReason) -> Vec<Action> {
        self.transfer_saying(reason, None)
    }

    fn transfer_saying(&mut self, reason: TransferReason, lead: Option<String>) -> Vec<Action> {
        if matches!(
            self.state,
            State::Transferring | State::NotAnswered | State::Routing { .. }
        ) {
            return Vec::new();
        }
        if let State::Speaking {
            then: After::Transfer(_),
            ..
        } = self.state
        {
            return Vec::new(); // already on the way
        }
        let request = TransferRequest {
            topic: self.last_topic.clone(),
            intent_id: self.last_intent.clone(),
            reason,
            queue: None,
        };
        self.state = State::Routing {
            request: request.clone(),
            lead,
        };
        vec![Action::StopPlayback, Action::Route(request)]
    }

    fn on_routed(&mut self, route: Route) -> Vec<Action> {
        let State::Routing { request, lead } = &self.state else {
            return Vec::new();
        };
        let (mut request, lead) = (request.clone(), lead.clone());
        let with_lead = |text: String| match &lead {
            Some(lead) => format!("{lead} {text}"),
            None => text,
        };
        match route {
            Route::Open { queue, spoken } => {
                request.queue = Some(queue);
                let text = with_lead(self.prompts.transferring_to(&spoken));
                self.say(&text, false, After::Transfer(request))
            }
            Route::Closed { spoken, hours } => {
                self.outcome = Some(Outcome::OutOfHours);
                let text = with_lead(self.prompts.closed_goodbye(&spoken, &hours));
                self.say(&text, false, After::Hangup)
            }
            Route::NoQueue => {
                self.outcome = Some(Outcome::Error);
                let text = with_lead(self.prompts.no_agents_goodbye());
                self.say(&text, false, After::Hangup)
            }
        }
    }

    fn on_speech(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::Speaking {
                interruptible: true,
                then: After::Listen,
            } => {
                self.listen(now);
                vec![Action::StopPlayback]
            }
            // The caller is talking: not silence, so push the no-input timer back.
            State::Listening { .. } => {
                self.listen(now);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn on_utterance_end(&mut self, now: Instant) -> Vec<Action> {
        if !matches!(self.state, State::Listening { .. }) {
            // Spoken over a prompt that may not be interrupted: not a turn.
            return Vec::new();
        }
        self.turn += 1;
        self.silences = 0;
        self.state = State::Thinking {
            since: now,
            filler_played: false,
        };
        Vec::new()
    }

    fn on_transcript(&mut self, text: String) -> Vec<Action> {
        if !matches!(self.state, State::Thinking { .. }) {
            return Vec::new();
        }
        let text = text.trim().to_string();
        if !text.chars().any(char::is_alphanumeric) {
            return self.on_misunderstood(true);
        }
        if self.turn > self.settings.max_turns {
            return self.transfer_now(TransferReason::TooManyTurns);
        }
        vec![Action::Resolve {
            text,
            turn: self.turn,
            previous_intent: self.last_intent.clone(),
        }]
    }

    /// A turn we could not use: not heard, or not understood.
    fn on_misunderstood(&mut self, not_heard: bool) -> Vec<Action> {
        if !matches!(self.state, State::Thinking { .. }) {
            return Vec::new();
        }
        self.no_match += 1;
        if self.no_match >= self.settings.max_no_match {
            return self.transfer_now(TransferReason::NoMatch);
        }
        let text = if not_heard {
            self.prompts.not_heard.clone()
        } else {
            self.prompts.no_match.clone()
        };
        self.asked = Asked::Nothing;
        self.say(&text, true, After::Listen)
    }

    fn on_resolved(&mut self, r: Resolution) -> Vec<Action> {
        if !matches!(self.state, State::Thinking { .. }) {
            return Vec::new();
        }
        if r.kind == Kind::Answer || r.action == IntentAction::Transfer {
            self.last_intent = Some(r.intent_id.clone());
            self.last_topic = Some(r.topic.clone());
        }
        match (r.action, r.kind) {
            (IntentAction::Transfer, _) | (_, Kind::Person) => {
                let reason = if r.kind == Kind::Person {
                    TransferReason::Requested
                } else {
                    TransferReason::NeedsPerson
                };
                self.transfer_now(reason)
            }
            (IntentAction::End, _) | (_, Kind::Goodbye) => {
                self.outcome.get_or_insert(if self.answered_any {
                    Outcome::Resolved
                } else {
                    Outcome::Unresolved
                });
                self.say(&self.prompts.farewell.clone(), false, After::Hangup)
            }
            (IntentAction::Clarify, _) if r.candidates.len() >= 2 => {
                self.no_match += 1;
                if self.no_match > self.settings.max_no_match {
                    return self.transfer_now(TransferReason::NoMatch);
                }
                let text = self
                    .prompts
                    .clarify_with(&r.candidates[0].title, &r.candidates[1].title);
                self.asked = Asked::Nothing;
                self.say(&text, true, After::Listen)
            }
            (_, Kind::Repeat) => {
                let text = self
                    .last_answer
                    .clone()
                    .unwrap_or_else(|| self.prompts.what_else.clone());
                self.say(&text, true, After::Listen)
            }
            (_, Kind::Yes) => match self.asked {
                Asked::OfferedPerson => self.transfer_now(TransferReason::Requested),
                Asked::OfferedSms(_) => self.accept_sms(),
                _ => self.say(&self.prompts.what_else.clone(), true, After::Listen),
            },
            (_, Kind::No) => match self.asked {
                Asked::OfferedSms(_) => {
                    self.asked = Asked::AnythingElse;
                    self.say(&self.prompts.anything_else.clone(), true, After::Listen)
                }
                Asked::AnythingElse => {
                    self.outcome.get_or_insert(Outcome::Resolved);
                    self.say(&self.prompts.farewell.clone(), false, After::Hangup)
                }
                _ => self.say(&self.prompts.what_else.clone(), true, After::Listen),
            },
            (_, Kind::OutOfScope) | (IntentAction::Clarify, _) => self.on_misunderstood(false),
            (IntentAction::Answer, Kind::Answer) => {
                self.no_match = 0;
                self.answered_any = true;
                self.last_answer = Some(r.answer_text.clone());
                self.state = State::Speaking {
                    then: After::Listen,
                    interruptible: true,
                };
                let follow_up = match r.link_url.clone() {
                    Some(link) if self.sms_possible && !self.sms_sent.contains(&r.intent_id) => {
                        self.asked = Asked::OfferedSms(SmsOffer {
                            intent_id: r.intent_id.clone(),
                            link,
                            sms_text: r.sms_text.clone(),
                        });
                        self.prompts.sms_offer.clone()
                    }
                    Some(_) => {
                        self.asked = Asked::AnythingElse;
                        format!(
                            "{} {}",
                            self.prompts.link_elsewhere, self.prompts.anything_else
                        )
                    }
                    None => {
                        self.asked = Asked::AnythingElse;
                        self.prompts.anything_else.clone()
                    }
                };
                vec![
                    Action::Play {
                        text: r.answer_text,
                        barge_in: true,
                    },
                    Action::Play {
                        text: follow_up,
                        barge_in: true,
                    },
                ]
            }
        }
    }

    /// Yes (or 1) to the SMS offer: only while that offer is the open question.
    fn accept_sms(&mut self) -> Vec<Action> {
        let Asked::OfferedSms(offer) = &self.asked else {
            return Vec::new();
        };
        let waiting = matches!(
            self.state,
            State::Listening { .. }
                | State::Thinking { .. }
                | State::Speaking {
                    then: After::Listen,
                    ..
                }
        );
        if !waiting {
            return Vec::new();
        }
        let offer = offer.clone();
        self.sms_sent.push(offer.intent_id.clone());
        self.asked = Asked::Nothing;
        self.state = State::Sending;
        vec![Action::StopPlayback, Action::SendSms(offer)]
    }

    fn on_playback_finished(&mut self, now: Instant) -> Vec<Action> {
        let State::Speaking { then, .. } = &self.state else {
            return Vec::new();
        };
        match then.clone() {
            After::Listen => {
                self.listen(now);
                Vec::new()
            }
            After::Hangup => {
                self.state = State::Ended;
                vec![Action::Hangup]
            }
            After::Transfer(request) => {
                self.state = State::Transferring;
                self.outcome = Some(Outcome::Transferred);
                vec![Action::Transfer(request)]
            }
        }
    }

    fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::Listening { since } if now >= since + self.settings.no_input => {
                self.silences += 1;
                match self.silences {
                    1 => {
                        self.asked = Asked::Nothing;
                        self.say(&self.prompts.reprompt.clone(), true, After::Listen)
                    }
                    2 => {
                        self.asked = Asked::OfferedPerson;
                        self.say(&self.prompts.offer_person.clone(), true, After::Listen)
                    }
                    _ => self.transfer_now(TransferReason::NoInput),
                }
            }
            State::Thinking {
                since,
                filler_played: false,
            } if now >= since + self.settings.filler_after => {
                self.state = State::Thinking {
                    since,
                    filler_played: true,
                };
                vec![Action::Play {
                    text: self.prompts.filler.clone(),
                    barge_in: false,
                }]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::resolution::Candidate;

    struct Call {
        c: Conversation,
        now: Instant,
        p: Prompts,
        /// What the driver's router answers to `Action::Route`.
        route: Route,
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
            Call {
                c: Conversation::new(settings, Prompts::english()),
                now: Instant::now(),
                p: Prompts::english(),
                route: open(),
            }
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
                previous_intent: None
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
                previous_intent: Some("affald.toemning".into())
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
        let mut r = resolution(IntentAction::Clarify, Kind::Answer, "affald.toemning", "");
        r.candidates = vec![
            Candidate {
                intent_id: "affald.toemning".into(),
                title: "bin collection".into(),
                confidence: 0.4,
            },
            Candidate {
                intent_id: "affald.storskrald".into(),
                title: "bulky waste".into(),
                confidence: 0.35,
            },
        ];
        assert_eq!(
            call.ev(Event::Resolved(r)),
            vec![play("Is it about bin collection, or about bulky waste?")]
        );
    }

    #[test]
    fn two_misunderstandings_in_a_row_transfer_to_a_person() {
        let mut call = Call::listening();
        call.say("blah");
        assert_eq!(
            call.ev(special(Kind::OutOfScope)),
            vec![play(&call.p.no_match)]
        );
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
        assert_eq!(
            call.ev(special(Kind::OutOfScope)),
            vec![play(&call.p.no_match)]
        );
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

    #[test]
    fn speech_pushes_the_no_input_timer_back() {
        let mut call = Call::listening();
        call.at(6000, Event::SpeechConfirmed);
        assert_eq!(call.c.deadline(), Some(call.now + Duration::from_secs(7)));
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
        });
        assert_eq!(call.ev(answer("pas.nyt", "Book a time.")).len(), 2);
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
                confidence: 0.9
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

    #[test]
    fn an_empty_transcript_asks_again() {
        let mut call = Call::listening();
        assert_eq!(call.say(" ... "), vec![play(&call.p.not_heard)]);
    }

    #[test]
    fn an_overloaded_recognizer_asks_again_rather_than_going_silent() {
        let mut call = Call::listening();
        call.at(1000, Event::SpeechConfirmed);
        call.at(1000, Event::UtteranceEnded);
        assert_eq!(
            call.ev(Event::TranscriptFailed),
            vec![play(&call.p.not_heard)]
        );
    }

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
}
