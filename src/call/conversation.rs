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
            (_, Kind::OutOfScope) | (IntentAction::Clarify | IntentAction::Confirm, _) => {
                self.on_misunderstood(false)
            }
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
mod tests;
