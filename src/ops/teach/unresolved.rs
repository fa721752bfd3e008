//! The questions the bot could not answer (asked back, confirmed, out of scope) or
//! answered with doubt, from the call records, grouped by wording as the dashboard
//! groups them: what staff should teach it next.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::intent::kb::Kb;
use crate::intent::matcher::ANSWER_CONFIDENCE;
use crate::ops::records::CallRecord;
use crate::ops::summary::group_key;

/// Groups listed at most, and questions per group.
pub const MAX_GROUPS: usize = 100;
pub const MAX_QUESTIONS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Question {
    pub call_id: String,
    pub ended: i64,
    pub lang: String,
    pub text: String,
    /// What the bot took it for, if anything.
    pub intent: Option<String>,
    pub confidence: Option<f32>,
    /// Answered, but with a confidence below the answering threshold.
    pub doubtful: bool,
    /// The intent in service that has this very wording as an example: taught already.
    pub taught_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub key: String,
    pub count: usize,
    pub questions: Vec<Question>,
}

fn taught_to(kb: &Kb, lang: &str, text: &str) -> Option<String> {
    let lang = lang.parse().ok()?;
    let text = text.trim();
    kb.intents
        .iter()
        .find(|i| {
            i.examples(lang)
                .iter()
                .any(|e| e.trim().eq_ignore_ascii_case(text))
        })
        .map(|i| i.id.clone())
}

/// The bot's unanswered or doubtful caller turns in `calls`, most frequent group first.
pub fn group(calls: &[CallRecord], kb: &Kb) -> Vec<Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for call in calls.iter().rev() {
        for t in call.turns.iter().filter(|t| t.answered_by == "bot") {
            let Some(text) = t.text.as_deref() else {
                continue;
            };
            let doubtful = t.answered && t.confidence.is_some_and(|c| c < ANSWER_CONFIDENCE);
            let key = group_key(text);
            if (t.answered && !doubtful) || key.is_empty() {
                continue;
            }
            let g = groups.entry(key.clone()).or_insert(Group {
                key,
                count: 0,
                questions: Vec::new(),
            });
            g.count += 1;
            if g.questions.len() < MAX_QUESTIONS {
                g.questions.push(Question {
                    call_id: call.call_id.clone(),
                    ended: call.ended,
                    lang: call.language.clone(),
                    text: text.to_string(),
                    intent: t.intent.clone(),
                    confidence: t.confidence,
                    doubtful,
                    taught_to: taught_to(kb, &call.language, text),
                });
            }
        }
    }
    let mut out: Vec<Group> = groups.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    out.truncate(MAX_GROUPS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::records::TurnRecord;

    fn turn(text: &str, answered: bool, confidence: f32) -> TurnRecord {
        TurnRecord {
            text: Some(text.into()),
            intent: Some("x".into()),
            confidence: Some(confidence),
            answered,
            reply_secs: Some(1.0),
            answered_by: "bot".into(),
        }
    }

    #[test]
    fn unanswered_and_doubtful_turns_are_grouped_and_taught_ones_marked() {
        let kb = Kb::embedded().unwrap();
        let taught = kb.get("affald.toemning").unwrap().examples_en[0].clone();
        let call = |id: &str, ended, turns| CallRecord {
            call_id: id.into(),
            tenant: "default".into(),
            started: 0,
            ended,
            language: "en".into(),
            topic: None,
            outcome: "unresolved".into(),
            sms_sent: false,
            turns,
        };
        let calls = [
            call("a", 1, vec![turn("How much is the dog tax?", false, 0.05)]),
            call(
                "b",
                2,
                vec![
                    turn("dog tax, how much", false, 0.2),
                    turn("new passport", true, 0.9),
                ],
            ),
            call("c", 3, vec![turn(&taught, true, 0.3)]),
        ];
        let groups = group(&calls, &kb);
        let keys: Vec<(&str, usize)> = groups.iter().map(|g| (g.key.as_str(), g.count)).collect();
        assert_eq!(keys[0], ("dog much tax", 2), "{groups:#?}");
        assert_eq!(
            groups.len(),
            2,
            "the clear answer is not listed: {groups:#?}"
        );
        assert_eq!(groups[0].questions[0].call_id, "b", "newest first");
        let doubtful = &groups[1].questions[0];
        assert!(doubtful.doubtful);
        assert_eq!(doubtful.taught_to.as_deref(), Some("affald.toemning"));
        assert_eq!(groups[0].questions[0].taught_to, None);
    }
}
