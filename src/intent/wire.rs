//! Conversions between the domain types (`resolution`) and the generated protobuf
//! types, in both directions: the client sends requests and reads responses, the server
//! does the opposite. Protobuf has no options, so "none" travels as an empty string or
//! zero, and a response from a foreign backend is checked rather than trusted.

use super::proto;
use super::resolution::{Action, Candidate, Hint, Kind, Request, Resolution};

/// Why a response from the service cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidResponse(pub String);

pub fn request_to_proto(r: &Request) -> proto::ResolveRequest {
    proto::ResolveRequest {
        call_id: r.call_id.clone(),
        turn: r.turn,
        text: r.text.clone(),
        language: r.language.as_str().into(),
        asr_confidence: r.asr_confidence.unwrap_or(0.0),
        previous_intent_id: r.previous_intent_id.clone().unwrap_or_default(),
        chosen_intent_id: r.chosen_intent_id.clone().unwrap_or_default(),
        called_number: r.called_number.clone(),
        tenant: r.tenant.clone(),
        caller_number_known: r.caller_number_known,
        minute_of_day: r.minute_of_day,
        hints: r
            .hints
            .iter()
            .map(|h| proto::AcousticHint {
                intent_id: h.intent_id.clone(),
                score: h.score,
            })
            .collect(),
    }
}

/// The server's reading of a request; `Err` names what is wrong, for INVALID_ARGUMENT.
pub fn request_from_proto(p: proto::ResolveRequest) -> Result<Request, String> {
    let language = p.language.parse()?;
    if !(0.0..=1.0).contains(&p.asr_confidence) {
        return Err(format!(
            "asr_confidence {} is not between 0 and 1",
            p.asr_confidence
        ));
    }
    if p.minute_of_day >= 24 * 60 {
        return Err(format!(
            "minute_of_day {} is not below 1440",
            p.minute_of_day
        ));
    }
    Ok(Request {
        call_id: p.call_id,
        turn: p.turn,
        text: p.text,
        language,
        asr_confidence: (p.asr_confidence > 0.0).then_some(p.asr_confidence),
        previous_intent_id: Some(p.previous_intent_id).filter(|s| !s.is_empty()),
        chosen_intent_id: Some(p.chosen_intent_id).filter(|s| !s.is_empty()),
        called_number: p.called_number,
        tenant: p.tenant,
        caller_number_known: p.caller_number_known,
        minute_of_day: p.minute_of_day,
        hints: p
            .hints
            .into_iter()
            .filter(|h| h.score.is_finite())
            .map(|h| Hint {
                intent_id: h.intent_id,
                score: h.score,
            })
            .collect(),
    })
}

pub fn resolution_to_proto(r: &Resolution) -> proto::ResolveResponse {
    proto::ResolveResponse {
        action: match r.action {
            Action::Answer => proto::Action::Answer,
            Action::Clarify => proto::Action::Clarify,
            Action::Transfer => proto::Action::Transfer,
            Action::End => proto::Action::End,
            Action::Confirm => proto::Action::Confirm,
        } as i32,
        intent_id: r.intent_id.clone(),
        kind: kind_to_proto(r.kind) as i32,
        topic: r.topic.clone(),
        answer_text: r.answer_text.clone(),
        link_url: r.link_url.clone().unwrap_or_default(),
        sms_text: r.sms_text.clone().unwrap_or_default(),
        confidence: r.confidence,
        candidates: r
            .candidates
            .iter()
            .map(|c| proto::Candidate {
                intent_id: c.intent_id.clone(),
                title: c.title.clone(),
                confidence: c.confidence,
            })
            .collect(),
        reason: r.reason.clone(),
    }
}

fn kind_to_proto(k: Kind) -> proto::Kind {
    match k {
        Kind::Answer => proto::Kind::Answer,
        Kind::Person => proto::Kind::Person,
        Kind::Yes => proto::Kind::Yes,
        Kind::No => proto::Kind::No,
        Kind::Repeat => proto::Kind::Repeat,
        Kind::Goodbye => proto::Kind::Goodbye,
        Kind::OutOfScope => proto::Kind::OutOfScope,
    }
}

pub fn resolution_from_proto(p: proto::ResolveResponse) -> Result<Resolution, InvalidResponse> {
    let action = match proto::Action::try_from(p.action) {
        Ok(proto::Action::Answer) => Action::Answer,
        Ok(proto::Action::Clarify) => Action::Clarify,
        Ok(proto::Action::Transfer) => Action::Transfer,
        Ok(proto::Action::End) => Action::End,
        Ok(proto::Action::Confirm) => Action::Confirm,
        Ok(proto::Action::Unspecified) | Err(_) => {
            return Err(InvalidResponse(format!(
                "action {} is not one the gateway can carry out",
                p.action
            )))
        }
    };
    let kind = match proto::Kind::try_from(p.kind) {
        Ok(proto::Kind::Answer | proto::Kind::Unspecified) | Err(_) => Kind::Answer,
        Ok(proto::Kind::Person) => Kind::Person,
        Ok(proto::Kind::Yes) => Kind::Yes,
        Ok(proto::Kind::No) => Kind::No,
        Ok(proto::Kind::Repeat) => Kind::Repeat,
        Ok(proto::Kind::Goodbye) => Kind::Goodbye,
        Ok(proto::Kind::OutOfScope) => Kind::OutOfScope,
    };
    if action == Action::Answer && kind == Kind::Answer && p.answer_text.trim().is_empty() {
        return Err(InvalidResponse("ANSWER without answer_text".into()));
    }
    if action == Action::Confirm {
        if p.answer_text.trim().is_empty() {
            return Err(InvalidResponse(
                "CONFIRM without the answer in answer_text".into(),
            ));
        }
        if p.candidates
            .first()
            .is_none_or(|c| c.title.trim().is_empty())
        {
            return Err(InvalidResponse(
                "CONFIRM without a titled candidate to ask about".into(),
            ));
        }
    }
    if action == Action::Clarify && p.answer_text.trim().is_empty() {
        return Err(InvalidResponse(
            "CLARIFY without a question in answer_text".into(),
        ));
    }
    if !p.confidence.is_finite() {
        return Err(InvalidResponse(format!(
            "confidence {} is not a number",
            p.confidence
        )));
    }
    Ok(Resolution {
        action,
        intent_id: p.intent_id,
        kind,
        topic: if p.topic.is_empty() {
            "general".into()
        } else {
            p.topic
        },
        answer_text: p.answer_text,
        link_url: Some(p.link_url).filter(|s| !s.is_empty()),
        sms_text: Some(p.sms_text).filter(|s| !s.is_empty()),
        confidence: p.confidence.clamp(0.0, 1.0),
        candidates: p
            .candidates
            .into_iter()
            .map(|c| Candidate {
                intent_id: c.intent_id,
                title: c.title,
                confidence: c.confidence.clamp(0.0, 1.0),
            })
            .collect(),
        reason: p.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::resolution::Language;

    #[test]
    fn requests_round_trip() {
        let mut r = Request::new("hvad koster et pas", Language::En);
        r.call_id = "c1".into();
        r.asr_confidence = Some(0.75);
        r.previous_intent_id = Some("affald.toemning".into());
        r.minute_of_day = 600;
        r.hints = vec![Hint {
            intent_id: "affald.toemning".into(),
            score: 1.5,
        }];
        r.chosen_intent_id = Some("affald.storskrald".into());
        let back = request_from_proto(request_to_proto(&r)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{r:?}"));
        let none = request_from_proto(request_to_proto(&Request::new("x", Language::Da))).unwrap();
        assert_eq!(
            (
                none.asr_confidence,
                none.previous_intent_id,
                none.chosen_intent_id
            ),
            (None, None, None)
        );
        assert_eq!(
            request_to_proto(&r).chosen_intent_id,
            "affald.storskrald",
            "field 10 carries the keypad choice"
        );
    }

    #[test]
    fn bad_requests_are_named() {
        let p = proto::ResolveRequest {
            language: "sv".into(),
            ..Default::default()
        };
        assert!(request_from_proto(p).unwrap_err().contains("sv"));
        let p = proto::ResolveRequest {
            minute_of_day: 2000,
            ..Default::default()
        };
        assert!(request_from_proto(p).unwrap_err().contains("minute_of_day"));
    }

    #[test]
    fn resolutions_round_trip_and_bad_ones_are_refused() {
        let r = Resolution {
            action: Action::Clarify,
            intent_id: "a".into(),
            kind: Kind::Answer,
            topic: "affald".into(),
            answer_text: "Mener du A eller B?".into(),
            link_url: Some("https://x.example.org".into()),
            sms_text: None,
            confidence: 0.4,
            candidates: vec![Candidate {
                intent_id: "a".into(),
                title: "A".into(),
                confidence: 0.4,
            }],
            reason: "low_confidence".into(),
        };
        assert_eq!(resolution_from_proto(resolution_to_proto(&r)).unwrap(), r);
        let unspecified = proto::ResolveResponse {
            answer_text: "x".into(),
            ..Default::default()
        };
        assert!(resolution_from_proto(unspecified).is_err());
        let silent = proto::ResolveResponse {
            action: proto::Action::Answer as i32,
            ..Default::default()
        };
        assert!(resolution_from_proto(silent)
            .unwrap_err()
            .0
            .contains("answer_text"));
    }

    #[test]
    fn confirm_round_trips_and_needs_its_answer_and_candidate() {
        let r = Resolution {
            action: Action::Confirm,
            intent_id: "affald.toemning".into(),
            kind: Kind::Answer,
            topic: "affald".into(),
            answer_text: "Se tømningskalenderen.".into(),
            link_url: Some("https://kommune.example.org/affald".into()),
            sms_text: Some("Tømningskalender:".into()),
            confidence: 0.35,
            candidates: vec![Candidate {
                intent_id: "affald.toemning".into(),
                title: "Tømningskalender".into(),
                confidence: 0.35,
            }],
            reason: "confirm".into(),
        };
        let p = resolution_to_proto(&r);
        assert_eq!(p.action, 5, "ACTION_CONFIRM = 5");
        assert_eq!(resolution_from_proto(p.clone()).unwrap(), r);
        let untitled = proto::ResolveResponse {
            candidates: Vec::new(),
            ..p.clone()
        };
        assert!(resolution_from_proto(untitled)
            .unwrap_err()
            .0
            .contains("candidate"));
        let unanswered = proto::ResolveResponse {
            answer_text: " ".into(),
            ..p
        };
        assert!(resolution_from_proto(unanswered)
            .unwrap_err()
            .0
            .contains("answer_text"));
    }
}
