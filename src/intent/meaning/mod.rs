//! A second opinion on what a turn means, from a sentence-embedding model
//! (multilingual-e5-small, `engine`), for the one decision that hurts when wrong: an
//! answer given without asking back.
//!
//! The word matcher (`index`) is the better judge on its own (on the understanding
//! fixtures' texts e5 alone picks the right intent for 86 of 103 English questions, the
//! matcher ~95), but its errors are about meaning, not words: "I've just got my
//! residence permit and the bank says I need MitID" matched the resident *parking
//! permit*. When the intent nearest in meaning is clearly another, the caller is asked
//! which of the two they mean (or, when the other is not an answer, whether it is the
//! matched one) instead of being answered wrongly.
//!
//! Installed once per process (`install`), by the commands that answer callers; a
//! process without it (unit tests, a machine without the model) answers on words alone.

mod engine;
mod store;

use std::sync::{Arc, OnceLock};

use super::kb::Kb;
use super::resolution::Language;
pub use engine::{Engine, EngineError};
use store::Store;

/// An intent's closeness to a turn: its best example's cosine, and the mean of its
/// best three (one odd example alone does not decide). Weights chosen on the tune
/// half of the understanding fixtures.
const BEST_WEIGHT: f32 = 0.6;
const TOP: usize = 3;
/// How much closer another intent must be to overrule the words' pick. e5's closeness
/// scores are crowded (0.90–0.93 for every intent on a topic): at any lead, the tune
/// half's wrong answers fell 25 → 13 but 12 right ones became questions ("renew my
/// passport" is nearer "Renew your driving licence" by 0.006); at 0.01, 25 → 14 for 4.
/// English needs more: its tune-half right answers reach a lead of 0.0102 and the
/// wrong ones it turns right start at 0.021 ("My passport runs out in six months. How
/// do I renew it?", the web call's question, is at 0.0107); anywhere between gives the
/// same tune figures.
fn lead(lang: Language) -> f32 {
    match lang {
        Language::Da => 0.01,
        Language::En => 0.015,
    }
}

/// The engine with its cache of knowledge-base vectors.
#[derive(Clone)]
pub struct Embedder(Arc<Store>);

static INSTALLED: OnceLock<Embedder> = OnceLock::new();

/// The engine and model `models/fetch.sh meaning` fetched, with their vector cache
/// beside the model.
pub fn load() -> Result<Embedder, EngineError> {
    let dir = crate::stt::model_dir();
    let model = dir.join("e5-small-q4.bin");
    let engine = Engine::load(&dir.join("libe5.so"), &model)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(Embedder(Arc::new(Store::new(
        engine,
        model.with_extension("vectors"),
        threads,
    ))))
}

/// Gives every matcher this process builds from now on the second opinion (`[intent]
/// second_opinion`). Without the files the matcher answers on words alone, which is
/// logged.
pub fn install(enabled: bool) {
    if !enabled || INSTALLED.get().is_some() {
        return;
    }
    match load() {
        Ok(embedder) => {
            let _ = INSTALLED.set(embedder);
        }
        Err(e) => {
            tracing::warn!(error = %e, "no second opinion on meaning: answers rest on words alone")
        }
    }
}

/// The knowledge base's examples and titles embedded, per language.
pub struct Meaning {
    store: Arc<Store>,
    da: Rows,
    en: Rows,
}

/// One language's texts: their vectors and the intent (index in the knowledge base)
/// each belongs to.
struct Rows {
    vectors: Vec<Arc<[f32]>>,
    owners: Vec<usize>,
}

impl Meaning {
    /// `kb` embedded by the installed engine; `None` when none is installed or it fails
    /// (logged: the matcher then answers on words alone).
    pub fn build(kb: &Kb) -> Option<Meaning> {
        Meaning::build_with(kb, INSTALLED.get()?)
    }

    /// `kb` embedded by `embedder`; `None` if it fails (logged).
    pub fn build_with(kb: &Kb, embedder: &Embedder) -> Option<Meaning> {
        let store = embedder.0.clone();
        let rows = |lang: Language| -> Result<Rows, EngineError> {
            let mut texts = Vec::new();
            let mut owners = Vec::new();
            for (i, intent) in kb.intents.iter().enumerate() {
                let title = std::iter::once(intent.title.get(lang));
                for text in intent
                    .examples(lang)
                    .iter()
                    .map(String::as_str)
                    .chain(title)
                {
                    texts.push(text);
                    owners.push(i);
                }
            }
            Ok(Rows {
                vectors: store.vectors(&texts)?,
                owners,
            })
        };
        match (rows(Language::Da), rows(Language::En)) {
            (Ok(da), Ok(en)) => Some(Meaning { store, da, en }),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "no second opinion on meaning for this knowledge base");
                None
            }
        }
    }

    /// The intent `text` means rather than `chosen` (an index in the knowledge base):
    /// the nearest in meaning, when it is another and clearly nearer. `None` if there is
    /// none, or the engine fails on it.
    pub fn rather_than(&self, chosen: usize, lang: Language, text: &str) -> Option<usize> {
        let query = match self.store.engine().embed(&[text]) {
            Ok(mut v) => v.pop()?,
            Err(e) => {
                tracing::warn!(error = %e, "no second opinion on this turn");
                return None;
            }
        };
        let rows = match lang {
            Language::Da => &self.da,
            Language::En => &self.en,
        };
        let mut by_intent: Vec<(usize, Vec<f32>)> = Vec::new();
        for (v, &owner) in rows.vectors.iter().zip(&rows.owners) {
            let cosine: f32 = v.iter().zip(&query).map(|(a, b)| a * b).sum();
            match by_intent.iter_mut().find(|(i, _)| *i == owner) {
                Some((_, scores)) => scores.push(cosine),
                None => by_intent.push((owner, vec![cosine])),
            }
        }
        let closeness: Vec<(usize, f32)> = by_intent
            .into_iter()
            .map(|(i, scores)| (i, closeness(scores)))
            .collect();
        let other = overruling(&closeness, chosen, lead(lang));
        // Fields are evaluated only when debug logging is on: off the hot path.
        tracing::debug!(
            chosen,
            of_chosen = closeness.iter().find(|c| c.0 == chosen).map(|c| c.1),
            ?other,
            nearest = ?nearest(&closeness, 3),
            "second opinion"
        );
        other
    }
}

/// The intent that overrules `chosen`, given each intent's closeness to the turn: the
/// nearest, when it is nearer by more than `lead`.
fn overruling(closeness: &[(usize, f32)], chosen: usize, lead: f32) -> Option<usize> {
    let of_chosen = closeness
        .iter()
        .find(|c| c.0 == chosen)
        .map_or(0.0, |c| c.1);
    closeness
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|&(nearest, c)| nearest != chosen && c - of_chosen > lead)
        .map(|(i, _)| i)
}

/// The `n` intents nearest in meaning, with their closeness.
fn nearest(closeness: &[(usize, f32)], n: usize) -> Vec<(usize, f32)> {
    let mut sorted = closeness.to_vec();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    sorted.truncate(n);
    sorted
}

/// An intent's closeness from its texts' cosines with the turn.
fn closeness(mut cosines: Vec<f32>) -> f32 {
    cosines.sort_by(|a, b| b.total_cmp(a));
    let top = &cosines[..cosines.len().min(TOP)];
    let mean = top.iter().sum::<f32>() / top.len() as f32;
    BEST_WEIGHT * top[0] + (1.0 - BEST_WEIGHT) * mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closeness_weighs_the_best_example_and_the_best_three() {
        // 0.6 × 0.9 + 0.4 × mean(0.9, 0.5, 0.4)
        let c = closeness(vec![0.4, 0.9, 0.1, 0.5]);
        assert!((c - (0.54 + 0.4 * 0.6)).abs() < 1e-6, "{c}");
        // One text: its cosine.
        assert!((closeness(vec![0.7]) - 0.7).abs() < 1e-6);
    }

    #[test]
    fn only_a_clearly_nearer_intent_overrules_the_words() {
        let (da, en) = (lead(Language::Da), lead(Language::En));
        // "renew my passport": nearer the driving licence's renewal, but by 0.006.
        assert_eq!(
            overruling(&[(0, 0.9153), (1, 0.9212), (2, 0.9093)], 0, en),
            None
        );
        // "My passport runs out in six months. How do I renew it?": by 0.0107, which
        // would be enough in Danish.
        let passport = [(0, 0.9104), (1, 0.9211), (2, 0.9054)];
        assert_eq!(overruling(&passport, 0, en), None);
        assert_eq!(overruling(&passport, 0, da), Some(1));
        // The residence permit's MitID question, which the words took for parking.
        assert_eq!(
            overruling(&[(0, 0.86), (1, 0.9271), (2, 0.9073)], 0, en),
            Some(1)
        );
        // The words' pick is the nearest.
        assert_eq!(overruling(&[(0, 0.95), (1, 0.93)], 0, da), None);
        // An intent with no texts in the language is as far as can be.
        assert_eq!(overruling(&[(1, 0.5)], 0, da), Some(1));
    }
}
