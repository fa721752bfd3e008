//! The conversation's vocabulary: its settings, the events it is fed, the actions it
//! asks for, and how a call ended. The driver speaks only these.

use std::time::Duration;

use crate::intent::resolution::Resolution;

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
    /// The caller talked over the first moment of our reply to their last turn, before
    /// they could have heard it: they were going on with that turn, which the
    /// utterance that ends next replaces (`going_on`).
    WentOnOverReply,
    /// The recognizer expects the utterance's transcript this long from now.
    TranscriptExpected(Duration),
    Transcript {
        text: String,
        confidence: f32,
        /// The language the recognizer heard ("da", "en"; empty when it cannot tell).
        language: String,
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
    /// The gateway is stopping and the drain time is over: end the call politely.
    ShuttingDown,
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
    /// Play in the voice of `language` rather than the call's (the offer of English on
    /// a Danish line).
    PlayIn {
        text: String,
        language: String,
        barge_in: bool,
    },
    StopPlayback,
    Resolve {
        text: String,
        turn: u32,
        previous_intent: Option<String>,
        /// The caller picked this intent from the keypad menu (`text` is its title).
        chosen_intent_id: Option<String>,
    },
    /// From now on the call is in this language ("da", "en"): prompts, the TTS voice,
    /// speech recognition and intent requests. Comes before anything said in it.
    SwitchLanguage(String),
    /// Ask the router where this transfer goes; answered at once by `Event::Routed`.
    Route(TransferRequest),
    /// The caller said yes to the link by SMS: queue it, then send `SmsQueued`.
    SendSms(SmsOffer),
    /// Show the answer's page on the caller's screen (a web call).
    ShowLink {
        url: String,
        title: String,
    },
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
    /// Ended by the gateway stopping after its drain time.
    Shutdown,
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
            Outcome::Shutdown => "shutdown",
        }
    }
}
