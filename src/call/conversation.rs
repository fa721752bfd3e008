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
//!
//! Recognition of Danish telephone speech is poor, so doubt is part of the design: a
//! likely but unsure match is confirmed ("is it about X? say yes, or press 1"), and the
//! first turn not understood opens the keypad menu (`keypad.rs`, model in `menu.rs`)
//! rather than asking to rephrase; the second still goes to a person. A caller who
//! speaks English on a Danish line (or presses 9) is answered in English.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::menu::{Level, Menu};
use super::prompts::{PromptSet, Prompts};
use crate::intent::resolution::{Action as IntentAction, Kind, Language, Resolution};

mod answering;
mod going_on;
mod keypad;
mod routing;
mod shutdown;
mod vocabulary;
mod waiting;

pub use vocabulary::{
    Action, Event, Outcome, Route, Settings, SmsOffer, TransferReason, TransferRequest,
};

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
        /// The caller's speech was confirmed and has not ended: no silence to time
        /// (a question longer than the no-input time was reprompted over).
        talking: bool,
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

/// What the last question we asked was, to make sense of "yes", "no" and keys.
#[derive(Debug, Clone, PartialEq)]
enum Asked {
    Nothing,
    AnythingElse,
    OfferedPerson,
    OfferedSms(SmsOffer),
    /// "Is it about A (press 1), or about B (press 2)?", holding A's and B's intent ids
    /// and titles: another doubtful turn is a miss.
    Clarified(Vec<(String, String)>),
    /// "Is it about X?", holding X's answer for a yes (or 1).
    Confirming(Box<Resolution>),
    /// The keypad menu is open at this level.
    Menu(Level),
}

impl Asked {
    /// A doubt we voiced, which the caller's next turn should settle.
    fn is_doubt(&self) -> bool {
        matches!(self, Asked::Clarified(_) | Asked::Confirming(_))
    }
}

pub struct Conversation {
    settings: Settings,
    prompts: PromptSet,
    /// The call's language now; the caller may switch it (first turn, or 9).
    language: Language,
    /// The caller pressed 9: the recognizer's guess no longer switches the language.
    language_chosen: bool,
    menu: Arc<Menu>,
    state: State,
    asked: Asked,
    turn: u32,
    no_match: u32,
    /// Keys that were no choice in the open keypad menu.
    wrong_keys: u32,
    silences: u32,
    answered_any: bool,
    last_answer: Option<String>,
    last_intent: Option<String>,
    last_topic: Option<String>,
    outcome: Option<Outcome>,
    /// Whether this caller can get an SMS (a mobile number under the limit, a sender).
    sms_possible: bool,
    links_on_screen: bool,
    /// Intents whose link was already texted in this call.
    sms_sent: Vec<String>,
    /// What the last turn's reply may change, as it was before (`going_on`).
    before_turn: Option<going_on::BeforeTurn>,
}

impl Conversation {
    /// A call in `language` (the line's), speaking from `prompts` in whichever
    /// language the call is in, offering `menu` after a miss (none if it is empty).
    pub fn new(
        settings: Settings,
        prompts: PromptSet,
        language: Language,
        menu: Arc<Menu>,
    ) -> Self {
        Conversation {
            settings,
            prompts,
            language,
            language_chosen: false,
            menu,
            state: State::NotAnswered,
            asked: Asked::Nothing,
            turn: 0,
            no_match: 0,
            wrong_keys: 0,
            silences: 0,
            answered_any: false,
            last_answer: None,
            last_intent: None,
            last_topic: None,
            outcome: None,
            sms_possible: false,
            links_on_screen: false,
            sms_sent: Vec::new(),
            before_turn: None,
        }
    }

    /// Set by the driver before the call is answered.
    /// The caller has a screen (a web call): an answer's page is shown there, and
    /// no SMS is offered for it.
    pub fn set_links_on_screen(&mut self, on_screen: bool) {
        self.links_on_screen = on_screen;
    }

    pub fn set_sms_possible(&mut self, possible: bool) {
        self.sms_possible = possible;
    }

    /// When the driver must send `Event::Timer`, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Listening {
                since,
                talking: false,
            } => Some(since + self.settings.no_input),
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

    /// The intent the caller was last answered about (what a next turn's request
    /// carries as its previous intent).
    pub fn last_intent(&self) -> Option<String> {
        self.last_intent.clone()
    }

    /// The call's language now.
    pub fn language(&self) -> Language {
        self.language
    }

    /// The last utterance was taken as a turn and waits for its transcript (one spoken
    /// over an uninterruptible prompt, or a backchannel over an answer, is not).
    pub fn awaits_transcript(&self) -> bool {
        matches!(self.state, State::Thinking { .. })
    }

    /// The caller has the floor: an utterance ending now would be a turn.
    pub fn listening(&self) -> bool {
        matches!(self.state, State::Listening { .. })
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

    /// The prompts in the call's language.
    fn p(&self) -> &Prompts {
        self.prompts.for_language(self.language.as_str())
    }

    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        if matches!(self.state, State::Ended) {
            return Vec::new();
        }
        match event {
            Event::Answered => self.greet(),
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
            Event::Dtmf(key) => self.on_key(now, key),
            Event::SmsQueued | Event::SmsFailed if self.state == State::Sending => {
                let lead = if event == Event::SmsQueued {
                    self.p().sms_queued.clone()
                } else {
                    format!("{} {}", self.p().sms_failed, self.p().link_elsewhere)
                };
                self.asked = Asked::AnythingElse;
                let text = format!("{lead} {}", self.p().anything_else);
                self.say(&text, true, After::Listen)
            }
            Event::SmsQueued | Event::SmsFailed => Vec::new(),
            Event::SpeechConfirmed => self.on_speech(now),
            Event::UtteranceEnded => self.on_utterance_end(now),
            Event::WentOnOverReply => self.went_on_over_reply(),
            Event::Transcript { text, language, .. } => self.on_transcript(text, &language),
            Event::TranscriptFailed => self.on_misunderstood(true),
            Event::Resolved(r) => self.on_resolved(r),
            Event::ResolveFailed => {
                if !matches!(self.state, State::Thinking { .. }) {
                    return Vec::new();
                }
                let apology = self.p().technical_problem.clone();
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
                let text = self.p().no_agents_goodbye();
                self.say(&text, false, After::Hangup)
            }
            Event::Timer => self.on_timer(now),
            Event::TranscriptExpected(wait) => self.on_expected(now, wait),
            Event::ShuttingDown => self.on_shutdown(),
        }
    }

    /// The greeting; on a Danish line followed by the offer of English, in English.
    fn greet(&mut self) -> Vec<Action> {
        let barge_in = self.settings.barge_in_greeting;
        let greeting = self.p().greeting.clone();
        let mut actions = self.say(&greeting, barge_in, After::Listen);
        let offer = self.p().offer_english.clone();
        if self.language == Language::Da && !offer.is_empty() {
            actions.push(Action::PlayIn {
                text: offer,
                language: Language::En.as_str().into(),
                barge_in,
            });
        }
        actions
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
        self.state = State::Listening {
            since: now,
            talking: false,
        };
    }

    fn hear_talking(&mut self, now: Instant) {
        self.state = State::Listening {
            since: now,
            talking: true,
        };
    }

    fn on_speech(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::Speaking {
                interruptible: true,
                then: After::Listen,
            } => {
                self.hear_talking(now);
                vec![Action::StopPlayback]
            }
            // The caller is talking: not silence, until their utterance ends.
            State::Listening { .. } => {
                self.hear_talking(now);
                Vec::new()
            }
            // They went on after their turn ended: no filler over their words.
            State::Thinking { .. } => {
                self.went_on(now);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn on_utterance_end(&mut self, now: Instant) -> Vec<Action> {
        if matches!(self.state, State::Thinking { .. }) {
            self.went_on(now);
            return Vec::new();
        }
        if !matches!(self.state, State::Listening { .. }) {
            // Spoken over a prompt that may not be interrupted: not a turn.
            return Vec::new();
        }
        self.remember_before_turn();
        self.turn += 1;
        self.silences = 0;
        self.state = State::Thinking {
            since: now,
            filler_played: false,
        };
        Vec::new()
    }

    fn on_transcript(&mut self, text: String, heard: &str) -> Vec<Action> {
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
        let mut actions = Vec::new();
        // Only the first turn: later, a short "ok" heard as English must not flip a
        // Danish call, and a caller who pressed 9 has chosen.
        let heard: Option<Language> = Some(heard.trim())
            .filter(|h| !h.is_empty())
            .and_then(|h| h.parse().ok());
        if let Some(heard) = heard {
            if self.turn == 1 && !self.language_chosen && heard != self.language {
                self.language = heard;
                actions.push(Action::SwitchLanguage(heard.as_str().into()));
            }
        }
        actions.push(Action::Resolve {
            text,
            turn: self.turn,
            previous_intent: self.last_intent.clone(),
            chosen_intent_id: None,
        });
        actions
    }

    /// A turn we could not use: not heard, or not understood.
    fn on_misunderstood(&mut self, not_heard: bool) -> Vec<Action> {
        if !matches!(self.state, State::Thinking { .. }) {
            return Vec::new();
        }
        self.miss(not_heard)
    }

    /// The caller was not understood (or said no to our guess): the first time the
    /// keypad menu, then a person. Without a menu, the first time asks to rephrase.
    fn miss(&mut self, not_heard: bool) -> Vec<Action> {
        self.no_match += 1;
        if self.no_match >= self.settings.max_no_match {
            return self.transfer_now(TransferReason::NoMatch);
        }
        if !self.menu.is_empty() {
            self.wrong_keys = 0;
            let intro = self.p().menu_intro.clone();
            return self.open_menu(Level::Top, Some(intro));
        }
        let text = if not_heard {
            self.p().not_heard.clone()
        } else {
            self.p().no_match.clone()
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
                let text = self.p().farewell.clone();
                self.say(&text, false, After::Hangup)
            }
            // A rephrasing that lands on the intent we are asking about is a yes.
            (IntentAction::Confirm, _) if self.confirming(&r.intent_id) => self.confirmed(),
            // A doubt that the caller's answer leaves in doubt: not understood.
            (IntentAction::Clarify | IntentAction::Confirm, _) if self.asked.is_doubt() => {
                self.miss(false)
            }
            (IntentAction::Clarify, _) if r.candidates.len() >= 2 => {
                let text = self
                    .p()
                    .clarify_with(&r.candidates[0].title, &r.candidates[1].title);
                self.asked = Asked::Clarified(
                    r.candidates[..2]
                        .iter()
                        .map(|c| (c.intent_id.clone(), c.title.clone()))
                        .collect(),
                );
                self.say(&text, true, After::Listen)
            }
            (IntentAction::Confirm, _) if !r.candidates.is_empty() => {
                let text = self.p().confirm_about(&r.candidates[0].title);
                self.asked = Asked::Confirming(Box::new(r));
                self.say(&text, true, After::Listen)
            }
            (_, Kind::Repeat) => self.repeat(),
            (_, Kind::Yes) => match self.asked {
                Asked::OfferedPerson => self.transfer_now(TransferReason::Requested),
                Asked::OfferedSms(_) => self.accept_sms(),
                Asked::Confirming(_) => self.confirmed(),
                _ => self.say(&self.p().what_else.clone(), true, After::Listen),
            },
            (_, Kind::No) => match self.asked {
                Asked::OfferedSms(_) => {
                    self.asked = Asked::AnythingElse;
                    self.say(&self.p().anything_else.clone(), true, After::Listen)
                }
                Asked::AnythingElse => {
                    self.outcome.get_or_insert(Outcome::Resolved);
                    self.say(&self.p().farewell.clone(), false, After::Hangup)
                }
                Asked::Confirming(_) => self.miss(false),
                _ => self.say(&self.p().what_else.clone(), true, After::Listen),
            },
            (_, Kind::OutOfScope) | (IntentAction::Clarify | IntentAction::Confirm, _) => {
                self.on_misunderstood(false)
            }
            (IntentAction::Answer, Kind::Answer) => self.answer(r),
        }
    }

    /// Whether we are asking "is it about {intent_id}?".
    fn confirming(&self, intent_id: &str) -> bool {
        matches!(&self.asked, Asked::Confirming(r) if r.intent_id == intent_id)
    }

    /// Yes (or 1) to "is it about X?": X's answer, as if it had been clear at once.
    fn confirmed(&mut self) -> Vec<Action> {
        let Asked::Confirming(r) = std::mem::replace(&mut self.asked, Asked::Nothing) else {
            return Vec::new();
        };
        self.answer(*r)
    }

    /// "Say that again": the open question if there is one, else the last answer.
    fn repeat(&mut self) -> Vec<Action> {
        let text = match &self.asked {
            Asked::Confirming(r) => self.p().confirm_about(&r.candidates[0].title),
            Asked::Menu(level) => self.menu.speak(*level, self.p(), self.language),
            _ => self
                .last_answer
                .clone()
                .unwrap_or_else(|| self.p().what_else.clone()),
        };
        self.say(&text, true, After::Listen)
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
}

#[cfg(test)]
mod tests;
