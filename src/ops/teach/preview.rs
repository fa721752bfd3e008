//! The regression check before a publish: the stored (redacted) caller turns are
//! replayed through the matcher in service and through one over the draft, and every
//! turn whose decision (action or intent) differs is listed, so teaching one question
//! cannot quietly break another.
//!
//! The replay is text only: a call's audio is not stored, so the recognizer's
//! knowledge-base scoring of the audio (`hints`) cannot be replayed; the rest of the
//! request is what the call sent (language, turn number, the previous turn's intent).
//! Nor is the second opinion on meaning asked: it runs a model per turn (~20 ms), and a
//! month of calls replayed twice would keep the page waiting for minutes.

use serde::Serialize;

use crate::intent::matcher::Matcher;
use crate::intent::resolution::{Action, Language, Request, Resolution};
use crate::ops::records::CallRecord;

/// Changed turns listed at most (all are counted).
pub const MAX_LISTED: usize = 200;

/// What one matcher made of a turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub action: Action,
    pub intent_id: String,
    pub title: String,
    pub confidence: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub call_id: String,
    pub ended: i64,
    /// 1-based, counting the caller's turns.
    pub turn: usize,
    pub lang: String,
    pub text: String,
    pub before: Decision,
    pub after: Decision,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    pub calls: usize,
    pub turns: usize,
    pub changed_turns: usize,
    pub changed_calls: usize,
    /// The first [`MAX_LISTED`] changed turns, newest call first.
    pub changed: Vec<Change>,
}

fn decision(matcher: &Matcher, r: &Resolution) -> Decision {
    let title = matcher
        .kb()
        .get(&r.intent_id)
        .map(|i| i.title.da.clone())
        .unwrap_or_default();
    Decision {
        action: r.action,
        intent_id: r.intent_id.clone(),
        title,
        confidence: r.confidence,
    }
}

/// Replays `calls` through `now` (in service) and `draft`.
pub fn replay(calls: &[CallRecord], now: &Matcher, draft: &Matcher) -> Preview {
    let mut preview = Preview {
        calls: calls.len(),
        turns: 0,
        changed_turns: 0,
        changed_calls: 0,
        changed: Vec::new(),
    };
    for call in calls.iter().rev() {
        let lang: Language = call.language.parse().unwrap_or_default();
        let (mut prev_now, mut prev_draft): (Option<String>, Option<String>) = (None, None);
        let mut changed = false;
        let texts = call
            .turns
            .iter()
            .filter(|t| t.answered_by == "bot")
            .filter_map(|t| t.text.as_deref());
        for (i, text) in texts.enumerate() {
            preview.turns += 1;
            let request = |previous: &Option<String>| Request {
                call_id: call.call_id.clone(),
                turn: i as u32 + 1,
                previous_intent_id: previous.clone(),
                ..Request::new(text, lang)
            };
            let before = now.resolve_on_words(&request(&prev_now));
            let after = draft.resolve_on_words(&request(&prev_draft));
            if (before.action, &before.intent_id) != (after.action, &after.intent_id) {
                changed = true;
                preview.changed_turns += 1;
                if preview.changed.len() < MAX_LISTED {
                    preview.changed.push(Change {
                        call_id: call.call_id.clone(),
                        ended: call.ended,
                        turn: i + 1,
                        lang: lang.as_str().into(),
                        text: text.to_string(),
                        before: decision(now, &before),
                        after: decision(draft, &after),
                    });
                }
            }
            prev_now = Some(before.intent_id);
            prev_draft = Some(after.intent_id);
        }
        preview.changed_calls += usize::from(changed);
    }
    preview
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::kb::Kb;
    use crate::intent::overlay::{AddedExample, Overlay};
    use crate::ops::records::TurnRecord;

    fn call(id: &str, lang: &str, texts: &[&str]) -> CallRecord {
        CallRecord {
            call_id: id.into(),
            tenant: "default".into(),
            started: 0,
            ended: 10,
            language: lang.into(),
            topic: None,
            outcome: "unresolved".into(),
            sms_sent: false,
            turns: texts
                .iter()
                .map(|t| TurnRecord {
                    text: Some(t.to_string()),
                    intent: None,
                    confidence: None,
                    answered: false,
                    reply_secs: None,
                    answered_by: "bot".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn only_the_turns_the_draft_decides_differently_are_listed() {
        let base = Kb::embedded().unwrap();
        let now = Matcher::new(base.clone());
        let question = "the dustmen forgot my street again";
        let calls = [
            call("c-taught", "en", &[question]),
            call("c-other", "en", &["when will my bin be emptied"]),
        ];
        let unchanged = replay(&calls, &now, &Matcher::new(base));
        assert_eq!((unchanged.turns, unchanged.changed_turns), (2, 0));

        let draft = Overlay {
            examples: vec![AddedExample {
                intent: "affald.manglende_toemning".into(),
                lang: "en".into(),
                text: question.into(),
            }],
            intents: vec![],
        };
        let taught = Matcher::new(draft.apply(crate::intent::kb::EMBEDDED).unwrap());
        let p = replay(&calls, &now, &taught);
        assert_eq!((p.calls, p.turns), (2, 2));
        assert_eq!((p.changed_turns, p.changed_calls), (1, 1), "{p:#?}");
        let c = &p.changed[0];
        assert_eq!((c.call_id.as_str(), c.turn), ("c-taught", 1));
        assert_ne!(c.before.intent_id, "affald.manglende_toemning");
        assert_eq!(c.after.intent_id, "affald.manglende_toemning");
        assert_eq!(c.after.action, Action::Answer);
    }
}
