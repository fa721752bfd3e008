//! Forced decoding on whisper's encoded audio: candidate phrasings scored against the
//! utterance (see `rescore`), and which of two languages the caller spoke.
//!
//! Both reuse the encoder output the free transcript already computed, so they cost
//! decoder calls only (a few milliseconds each), never a second encoding.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use whisper_rs::{WhisperContext, WhisperError, WhisperState};

use super::rescore::{log_probs, normalized, NextToken, Trie};

pub use crate::intent::candidates::PhraseSet;
pub use crate::intent::resolution::Hint;

/// Candidates for a transcript in a language, best first (from the knowledge base).
pub type CandidateSource = Arc<dyn Fn(&str, &str) -> Vec<PhraseSet> + Send + Sync>;

/// Log-probabilities of phrasings on silent audio, per language and token sequence:
/// computed once per phrasing and shared by all workers.
#[derive(Default, Clone)]
pub struct Priors(Arc<Mutex<HashMap<PriorKey, f32>>>);

/// A phrasing's language token and its tokens.
type PriorKey = (i32, Vec<i32>);

struct Decoder<'a> {
    state: &'a mut WhisperState,
}

impl NextToken for Decoder<'_> {
    type Error = WhisperError;

    fn start(&mut self, prefix: &[i32], wanted: &[i32]) -> Result<Vec<f32>, WhisperError> {
        // whisper.cpp keeps logits for the last fed token only, and `get_logits` reads
        // the first row: feed all but the last token, then the last on its own.
        let (last, init) = prefix.split_last().ok_or(WhisperError::NullPointer)?;
        if !init.is_empty() {
            self.state.decode(init, 0, 1)?;
        }
        self.next(*last, init.len(), wanted)
    }

    fn next(
        &mut self,
        token: i32,
        n_past: usize,
        wanted: &[i32],
    ) -> Result<Vec<f32>, WhisperError> {
        self.state.decode(&[token], n_past, 1)?;
        Ok(log_probs(self.state.get_logits()?, wanted))
    }
}

fn lang_token(ctx: &WhisperContext, lang: &str) -> Option<i32> {
    whisper_rs::get_lang_id(lang).map(|id| ctx.token_lang(id))
}

/// The decoder prompt of a transcription without timestamps.
fn prefix(ctx: &WhisperContext, lang: i32) -> [i32; 4] {
    [
        ctx.token_sot(),
        lang,
        ctx.token_transcribe(),
        ctx.token_not(),
    ]
}

/// Whisper's own guess of the language, limited to `a` against `b`: ln(P(a) / P(b))
/// from the language tokens after start-of-transcript, on the audio `state` last
/// encoded.
pub fn language_odds(
    ctx: &WhisperContext,
    state: &mut WhisperState,
    a: &str,
    b: &str,
) -> Result<f32, WhisperError> {
    let (Some(ta), Some(tb)) = (lang_token(ctx, a), lang_token(ctx, b)) else {
        return Ok(0.0);
    };
    let lps = Decoder { state }.start(&[ctx.token_sot()], &[ta, tb])?;
    Ok(lps[0] - lps[1])
}

/// Turns text into the tokens whisper would write for it, ending with end-of-text.
fn tokens(ctx: &WhisperContext, text: &str) -> Option<Vec<i32>> {
    let mut t = ctx.tokenize(&format!(" {}", text.trim()), 64).ok()?;
    t.push(ctx.token_eot());
    Some(t)
}

/// Scores candidates' phrasings on the audio in `state` (encoded by the free
/// transcript), best candidate first. Phrasings go in round by round (each candidate's
/// first, then each one's second, …) while the trie stays within `budget` decoder
/// calls, so the best-ranked candidates get the most phrasings.
pub fn score(
    ctx: &WhisperContext,
    state: &mut WhisperState,
    silence: &mut WhisperState,
    priors: &Priors,
    language: &str,
    sets: &[PhraseSet],
    budget: usize,
) -> Result<Vec<Hint>, WhisperError> {
    let Some(lang) = lang_token(ctx, language) else {
        return Ok(Vec::new());
    };
    let prefix = prefix(ctx, lang);
    let tokenized: Vec<Vec<Vec<i32>>> = sets
        .iter()
        .map(|s| s.phrasings.iter().filter_map(|p| tokens(ctx, p)).collect())
        .collect();
    let mut trie = Trie::new();
    let mut owner: Vec<(usize, usize)> = Vec::new(); // phrasing index -> (set, phrasing)
    let rounds = tokenized.iter().map(Vec::len).max().unwrap_or(0);
    'fill: for round in 0..rounds {
        for (s, phrasings) in tokenized.iter().enumerate() {
            let Some(t) = phrasings.get(round) else {
                continue;
            };
            if trie.decodes() + trie.cost_of(t) > budget {
                if round == 0 {
                    continue; // a later candidate's short phrasing may still fit
                }
                break 'fill;
            }
            trie.insert(t);
            owner.push((s, round));
        }
    }
    if trie.is_empty() {
        return Ok(Vec::new());
    }
    let started = std::time::Instant::now();
    let on_audio = trie.score(&mut Decoder { state }, &prefix)?;
    tracing::debug!(
        decodes = trie.decodes(),
        phrasings = trie.len(),
        secs = started.elapsed().as_secs_f32(),
        "phrasings scored"
    );
    let prior = priors.get(lang, &tokenized, &owner, silence, &prefix)?;
    let mut best = vec![f32::NEG_INFINITY; sets.len()];
    for (i, &(s, r)) in owner.iter().enumerate() {
        let n = tokenized[s][r].len();
        best[s] = best[s].max(normalized(on_audio[i], prior[i], n));
    }
    let mut hints: Vec<Hint> = sets
        .iter()
        .zip(best)
        .filter(|(_, b)| b.is_finite())
        .map(|(s, b)| Hint {
            intent_id: s.intent_id.clone(),
            score: b,
        })
        .collect();
    hints.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(hints)
}

impl Priors {
    /// The prior of every phrasing in `owner` order, computing the missing ones on
    /// `silence` (a state that encoded silent audio).
    fn get(
        &self,
        lang: i32,
        tokenized: &[Vec<Vec<i32>>],
        owner: &[(usize, usize)],
        silence: &mut WhisperState,
        prefix: &[i32],
    ) -> Result<Vec<f32>, WhisperError> {
        let key = |i: usize| (lang, tokenized[owner[i].0][owner[i].1].clone());
        let missing: Vec<usize> = {
            let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
            (0..owner.len())
                .filter(|&i| !known.contains_key(&key(i)))
                .collect()
        };
        if !missing.is_empty() {
            let mut trie = Trie::new();
            for &i in &missing {
                trie.insert(&key(i).1);
            }
            let scores = trie.score(&mut Decoder { state: silence }, prefix)?;
            let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
            for (&i, s) in missing.iter().zip(scores) {
                known.insert(key(i), s);
            }
        }
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Ok((0..owner.len()).map(|i| known[&key(i)]).collect())
    }
}
