//! The intent service's vocabulary as the rest of the gateway sees it: one caller turn
//! in ([`Request`]), what to do next out ([`Resolution`]).
//!
//! These mirror `proto/intent.proto` (field docs there) but with Rust types: options
//! instead of empty strings, enums instead of integers. `wire` converts between the two,
//! so nothing above the intent client ever touches generated protobuf types.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Language of a turn; answers come back in the same language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Da,
    En,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::Da, Language::En];

    pub fn as_str(self) -> &'static str {
        match self {
            Language::Da => "da",
            Language::En => "en",
        }
    }
}

impl FromStr for Language {
    type Err = String;

    /// Accepts "da"/"en" and region variants ("da-DK", "en_GB"); empty means Danish.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let primary = s
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "" | "da" => Ok(Language::Da),
            "en" => Ok(Language::En),
            _ => Err(format!(
                "unsupported language {s:?} (da and en are supported)"
            )),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of intent a resolution names; see `Kind` in the proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Answer,
    Person,
    Yes,
    No,
    Repeat,
    Goodbye,
    OutOfScope,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Answer,
        Kind::Person,
        Kind::Yes,
        Kind::No,
        Kind::Repeat,
        Kind::Goodbye,
        Kind::OutOfScope,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Answer => "answer",
            Kind::Person => "person",
            Kind::Yes => "yes",
            Kind::No => "no",
            Kind::Repeat => "repeat",
            Kind::Goodbye => "goodbye",
            Kind::OutOfScope => "out_of_scope",
        }
    }
}

impl FromStr for Kind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s).ok_or(())
    }
}

/// What the gateway should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// Speak the answer. Also the action for yes, no, repeat and out of scope, which
    /// the conversation tells apart by [`Resolution::kind`].
    Answer,
    /// Ask back, naming the candidates, and listen again.
    Clarify,
    /// The best match is likely but not sure: ask "is it about {title}?" naming
    /// `candidates[0]`; the resolution carries that intent's whole answer, to speak if
    /// the caller says yes.
    Confirm,
    /// Speak the answer (if any), then transfer to a person; `topic` picks the queue.
    Transfer,
    /// Speak the answer (if any) and end the call.
    End,
}

/// One caller turn. `Default` gives an empty Danish first turn, so callers and tests
/// set only what they know.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub call_id: String,
    pub turn: u32,
    /// The transcript; the client redacts it before it leaves the process.
    pub text: String,
    pub language: Language,
    /// The recognizer's confidence, 0.0 to 1.0; `None` when unknown.
    pub asr_confidence: Option<f32>,
    pub previous_intent_id: Option<String>,
    /// The caller picked this intent from the keypad menu: answer it directly.
    pub chosen_intent_id: Option<String>,
    /// Our line, as dialled; never the caller's number.
    pub called_number: String,
    /// The tenant (municipality) the call is for, for a remote service that serves
    /// several; the in-process matcher is the tenant's own already.
    pub tenant: String,
    pub caller_number_known: bool,
    /// Local time at the municipality, minutes after midnight.
    pub minute_of_day: u32,
    /// Knowledge-base candidates scored on the caller's audio, best first (empty when
    /// the recognizer did not score any).
    pub hints: Vec<Hint>,
}

/// How well one candidate intent's phrasings fit the caller's audio (higher is
/// better; comparable within one turn only).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Hint {
    pub intent_id: String,
    pub score: f32,
}

impl Request {
    pub fn new(text: impl Into<String>, language: Language) -> Request {
        Request {
            text: text.into(),
            language,
            turn: 1,
            ..Request::default()
        }
    }
}

/// One possible meaning of an ambiguous turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub intent_id: String,
    pub title: String,
    pub confidence: f32,
}

/// What the intent service decided for one turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolution {
    pub action: Action,
    pub intent_id: String,
    pub kind: Kind,
    pub topic: String,
    pub answer_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_text: Option<String>,
    pub confidence: f32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
    /// Why, for logs and statistics (codes listed in the proto's `reason`).
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_parse_leniently() {
        assert_eq!("".parse::<Language>().unwrap(), Language::Da);
        assert_eq!("da-DK".parse::<Language>().unwrap(), Language::Da);
        assert_eq!("EN_gb".parse::<Language>().unwrap(), Language::En);
        assert!("sv".parse::<Language>().unwrap_err().contains("sv"));
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>(), Ok(k));
        }
        assert!("maybe".parse::<Kind>().is_err());
    }
}
