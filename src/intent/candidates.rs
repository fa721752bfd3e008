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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::kb::Kb;

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
