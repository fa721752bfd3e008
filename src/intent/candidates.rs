//! What a caller could have said: the phrasings of the intents a transcript may be
//! about, for the recognizer to score on the audio (knowledge-base-aware recognition).
//!
//! The free transcript of Danish telephone audio is often garbled, yet usually close
//! enough for the matcher to put the right intent among its first few. Those, plus the
//! conversational replies (yes, no, a person, repeat, goodbye) that are possible at
//! any point, are the candidates.

use super::matcher::Matcher;
use super::resolution::Kind;
use super::resolution::Language;

/// One candidate's phrasings, most typical first.
#[derive(Debug, Clone, PartialEq)]
pub struct PhraseSet {
    pub intent_id: String,
    pub phrasings: Vec<String>,
    /// Place among the text match's answer intents (0: best); None for the
    /// conversational replies, which the text does not rank.
    pub text_rank: Option<usize>,
}

/// Conversational kinds always among the candidates.
const ALWAYS: [Kind; 5] = [
    Kind::Person,
    Kind::Yes,
    Kind::No,
    Kind::Repeat,
    Kind::Goodbye,
];

impl Matcher {
    /// The `top` answer intents the transcript matches best, then the conversational
    /// intents; each with its examples and title in `lang`.
    pub fn candidates(&self, text: &str, lang: Language, top: usize) -> Vec<PhraseSet> {
        let kb = self.kb();
        let scores = self.index().scores(lang, text);
        let mut ranked: Vec<usize> = (0..kb.intents.len())
            .filter(|&i| kb.intents[i].kind == Kind::Answer)
            .collect();
        ranked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        ranked.truncate(top);
        for kind in ALWAYS {
            ranked.extend((0..kb.intents.len()).filter(|&i| kb.intents[i].kind == kind));
        }
        ranked
            .into_iter()
            .enumerate()
            .map(|(place, i)| {
                let intent = &kb.intents[i];
                // The knowledge base lists the most typical phrasings first (sorting them
                // by closeness in length to the transcript scored worse on the fixtures).
                let mut phrasings: Vec<String> = intent.examples(lang).to_vec();
                phrasings.push(intent.title.get(lang).to_string());
                PhraseSet {
                    intent_id: intent.id.clone(),
                    phrasings,
                    text_rank: (intent.kind == Kind::Answer).then_some(place),
                }
            })
            .collect()
    }
}

impl Matcher {
    /// The phrasings a turn is most likely to score in `lang`: each candidate
    /// intent's first, then each one's second, … up to `rounds` each (the order
    /// scoring takes them in, within its budget), for the recognizer to work out
    /// their priors before the first caller needs them.
    pub fn phrasings_by_round(&self, lang: Language, rounds: usize) -> Vec<String> {
        let kb = self.kb();
        let sets: Vec<Vec<String>> = kb
            .intents
            .iter()
            .filter(|i| i.kind == Kind::Answer || ALWAYS.contains(&i.kind))
            .map(|i| {
                let mut p = i.examples(lang).to_vec();
                p.push(i.title.get(lang).to_string());
                p
            })
            .collect();
        let rounds = rounds.min(sets.iter().map(Vec::len).max().unwrap_or(0));
        (0..rounds)
            .flat_map(|r| sets.iter().filter_map(move |s| s.get(r).cloned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::kb::Kb;

    #[test]
    fn phrasings_by_round_take_each_intents_first_before_any_second() {
        let m = Matcher::new(Kb::embedded().unwrap());
        let all = m.phrasings_by_round(Language::Da, usize::MAX);
        let c = m.candidates("hvornår henter i skraldet", Language::Da, 4);
        for set in &c {
            for p in &set.phrasings {
                assert!(all.contains(p), "{p} is scored but not warmed");
            }
        }
        let firsts = all
            .iter()
            .position(|p| *p == c[0].phrasings[1])
            .expect("a second phrasing");
        let last_first = all
            .iter()
            .rposition(|p| c.iter().any(|s| s.phrasings[0] == *p))
            .unwrap();
        assert!(last_first < firsts, "every first phrasing goes first");
        let two = m.phrasings_by_round(Language::Da, 2);
        assert!(two.len() < all.len() && two.contains(&c[0].phrasings[1]));
        assert!(!two.contains(&c[0].phrasings[2]));
    }

    #[test]
    fn the_best_matches_come_first_then_the_replies() {
        let m = Matcher::new(Kb::embedded().unwrap());
        let c = m.candidates("hvornår henter i skraldet", Language::Da, 4);
        assert_eq!(c[0].intent_id, "affald.toemning");
        assert_eq!(c.len(), 4 + 5);
        let ids: Vec<&str> = c[4..].iter().map(|s| s.intent_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "system.person",
                "system.yes",
                "system.no",
                "system.repeat",
                "system.goodbye"
            ]
        );
        assert!(c[0].phrasings.len() > 3);
        assert!(c[0].phrasings.iter().any(|p| p == "Tømningskalender"));
        let en = m.candidates("when do you empty the bins", Language::En, 1);
        assert_eq!(en[0].intent_id, "affald.toemning");
        assert!(en[0].phrasings[0].is_ascii());
    }
}
