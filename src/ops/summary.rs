//! The dashboard's figures for a period: calls per outcome, the resolution rate
//! ("afklaringsgrad") overall and per topic, the share of calls out of opening hours,
//! reply latency, and the questions the bot could not answer, grouped by wording.
//! Pure functions over call records, so they are tested without a database.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::records::CallRecord;

/// Outcomes that count towards the resolution rate: a caller the bot could have
/// helped. Out-of-hours and abandoned calls are left out.
const COUNTED: [&str; 4] = ["resolved", "transferred", "unresolved", "error"];

/// Words that say nothing about what was asked.
const STOP_WORDS: &[&str] = &[
    "jeg", "vil", "gerne", "har", "hvad", "hvor", "hvordan", "hvornår", "kan", "det", "den", "der",
    "til", "med", "for", "min", "mit", "mine", "at", "og", "er", "en", "et", "på", "om", "af",
    "skal", "man", "the", "and", "can", "how", "what", "when", "where", "want", "would", "like",
    "have", "for", "you", "my", "is", "to", "of", "a", "an", "i", "do", "please",
];

/// How many wordings of one group are shown.
const EXAMPLES: usize = 3;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicRate {
    pub topic: String,
    pub calls: usize,
    pub resolution_rate: Option<f64>,
}

/// Calls and resolution of one tenant (municipality).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantRate {
    pub tenant: String,
    pub calls: usize,
    pub resolution_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuestionGroup {
    /// The normalised content words the questions share.
    pub key: String,
    pub count: usize,
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub calls: usize,
    pub outcomes: BTreeMap<String, usize>,
    pub resolution_rate: Option<f64>,
    pub topics: Vec<TopicRate>,
    pub tenants: Vec<TenantRate>,
    pub out_of_hours_share: Option<f64>,
    pub reply_p50_secs: Option<f32>,
    pub reply_p95_secs: Option<f32>,
    pub unanswered: Vec<QuestionGroup>,
}

pub fn summarise(calls: &[CallRecord]) -> Summary {
    let mut outcomes = BTreeMap::new();
    for c in calls {
        *outcomes.entry(c.outcome.clone()).or_insert(0) += 1;
    }
    let topics = rates_by(calls, |c| c.topic.as_deref().unwrap_or(""))
        .map(|(topic, calls, resolution_rate)| TopicRate {
            topic,
            calls,
            resolution_rate,
        })
        .collect();
    let tenants = rates_by(calls, |c| &c.tenant)
        .map(|(tenant, calls, resolution_rate)| TenantRate {
            tenant,
            calls,
            resolution_rate,
        })
        .collect();
    let out_of_hours = calls.iter().filter(|c| c.outcome == "out_of_hours").count();
    let mut replies: Vec<f32> = calls
        .iter()
        .flat_map(|c| &c.turns)
        .filter_map(|t| t.reply_secs)
        .collect();
    replies.sort_by(f32::total_cmp);
    Summary {
        calls: calls.len(),
        outcomes,
        resolution_rate: resolution_rate(calls.iter()),
        topics,
        tenants,
        out_of_hours_share: ratio(out_of_hours, calls.len()),
        reply_p50_secs: percentile(&replies, 50),
        reply_p95_secs: percentile(&replies, 95),
        unanswered: unanswered(calls),
    }
}

/// Calls and resolution rate per value of `key`, in the value's order.
fn rates_by<'a>(
    calls: &'a [CallRecord],
    key: impl Fn(&'a CallRecord) -> &'a str,
) -> impl Iterator<Item = (String, usize, Option<f64>)> + 'a {
    let mut groups: BTreeMap<&str, Vec<&CallRecord>> = BTreeMap::new();
    for c in calls {
        groups.entry(key(c)).or_default().push(c);
    }
    groups
        .into_iter()
        .map(|(value, cs)| (value.to_string(), cs.len(), resolution_rate(cs.into_iter())))
}

fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// resolved / (resolved + transferred + unresolved + error).
pub fn resolution_rate<'a>(calls: impl Iterator<Item = &'a CallRecord>) -> Option<f64> {
    let (mut resolved, mut counted) = (0, 0);
    for c in calls.filter(|c| COUNTED.contains(&c.outcome.as_str())) {
        counted += 1;
        resolved += usize::from(c.outcome == "resolved");
    }
    ratio(resolved, counted)
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f32], p: usize) -> Option<f32> {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// Lowercase words without punctuation (the redaction placeholders become words too).
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|ch: char| !ch.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The group a question falls in: its first three content words, in any order.
pub fn group_key(text: &str) -> String {
    let content: BTreeSet<String> = words(text)
        .into_iter()
        .filter(|w| w.chars().count() > 2 && !STOP_WORDS.contains(&w.as_str()))
        .take(3)
        .collect();
    let key: Vec<String> = if content.is_empty() {
        words(text)
    } else {
        content.into_iter().collect()
    };
    key.join(" ")
}

/// Caller turns the bot had no answer for, grouped by wording, most frequent first.
fn unanswered(calls: &[CallRecord]) -> Vec<QuestionGroup> {
    let mut groups: BTreeMap<String, QuestionGroup> = BTreeMap::new();
    let texts = calls
        .iter()
        .flat_map(|c| &c.turns)
        .filter(|t| t.answered_by == "bot" && !t.answered)
        .filter_map(|t| t.text.as_deref());
    for text in texts {
        let key = group_key(text);
        if key.is_empty() {
            continue;
        }
        let g = groups.entry(key.clone()).or_insert(QuestionGroup {
            key,
            count: 0,
            examples: Vec::new(),
        });
        g.count += 1;
        if g.examples.len() < EXAMPLES && !g.examples.iter().any(|e| e == text) {
            g.examples.push(text.to_string());
        }
    }
    let mut out: Vec<QuestionGroup> = groups.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::records::TurnRecord;

    fn call(outcome: &str, topic: &str, turns: &[(&str, bool, f32)]) -> CallRecord {
        CallRecord {
            call_id: format!("{outcome}-{topic}-{}", turns.len()),
            tenant: "default".into(),
            started: 0,
            ended: 0,
            language: "da".into(),
            topic: (!topic.is_empty()).then(|| topic.to_string()),
            outcome: outcome.into(),
            sms_sent: false,
            turns: turns
                .iter()
                .map(|&(text, answered, secs)| TurnRecord {
                    text: Some(text.into()),
                    intent: None,
                    confidence: None,
                    answered,
                    reply_secs: Some(secs),
                    answered_by: "bot".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn rates_shares_and_latency() {
        let calls = [
            call(
                "resolved",
                "affald",
                &[("hvornår tømmes skraldespanden", true, 1.0)],
            ),
            call("resolved", "affald", &[("storskrald", true, 2.0)]),
            call("transferred", "pas_koerekort", &[("nyt pas", true, 3.0)]),
            call(
                "unresolved",
                "",
                &[("Hvad koster en hundelicens?", false, 4.0)],
            ),
            call("out_of_hours", "affald", &[]),
            call("abandoned", "", &[]),
        ];
        let s = summarise(&calls);
        assert_eq!(s.calls, 6);
        assert_eq!(s.outcomes["resolved"], 2);
        assert_eq!(s.resolution_rate, Some(0.5), "2 of 4 counted calls");
        let affald = s.topics.iter().find(|t| t.topic == "affald").unwrap();
        assert_eq!((affald.calls, affald.resolution_rate), (3, Some(1.0)));
        let pas = s
            .topics
            .iter()
            .find(|t| t.topic == "pas_koerekort")
            .unwrap();
        assert_eq!(pas.resolution_rate, Some(0.0));
        assert_eq!(s.out_of_hours_share, Some(1.0 / 6.0));
        assert_eq!(s.reply_p50_secs, Some(2.0));
        assert_eq!(s.reply_p95_secs, Some(4.0));
        assert_eq!(summarise(&[]).resolution_rate, None);
    }

    #[test]
    fn unanswered_questions_are_grouped_by_their_content_words() {
        let calls = [
            call(
                "unresolved",
                "",
                &[("Hvad koster en hundelicens?", false, 1.0)],
            ),
            call(
                "unresolved",
                "",
                &[("hundelicens, hvad koster den", false, 1.0)],
            ),
            call(
                "transferred",
                "",
                &[("Jeg vil gerne klage over min nabo", false, 1.0)],
            ),
            call("resolved", "", &[("nyt pas", true, 1.0)]),
        ];
        let s = summarise(&calls);
        let keys: Vec<(&str, usize)> = s
            .unanswered
            .iter()
            .map(|g| (g.key.as_str(), g.count))
            .collect();
        assert_eq!(keys, [("hundelicens koster", 2), ("klage nabo over", 1)]);
        assert_eq!(s.unanswered[0].examples.len(), 2);
    }
}
