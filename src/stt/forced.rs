//! Forced decoding on whisper's encoded audio: candidate phrasings scored against the
//! utterance (see `rescore`), and which of two languages the caller spoke.
//!
//! Both reuse the encoder output the free transcript already computed, so they cost
//! decoder calls only (a few milliseconds each), never a second encoding.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use whisper_rs::{WhisperContext, WhisperError, WhisperState};

use super::rescore::{candidate_score, log_probs, normalized};
use super::trie::{Feed, NextToken, Trie};
use super::vocab::Vocab;

pub use crate::intent::candidates::PhraseSet;
pub use crate::intent::resolution::Hint;

/// Candidates for a transcript in a language, best first (from the knowledge base).
/// The phrasings to score for (transcript, language, whisper's confidence in it);
/// none when the audio could not change what the text match decides.
pub type CandidateSource = Arc<dyn Fn(&str, &str, f32) -> Vec<PhraseSet> + Send + Sync>;

/// Log-probabilities of phrasings on silent audio, per language and token sequence:
/// computed once per phrasing and shared by all workers.
#[derive(Default, Clone)]
pub struct Priors(Arc<Mutex<HashMap<PriorKey, f32>>>);

/// A phrasing's language token and its tokens.
pub(super) type PriorKey = (i32, Vec<i32>);

extern "C" {
    /// Makes this thread's next `whisper_decode_with_state` call of `n` tokens take them
    /// as a tree: token i follows token `parent[i]` of the call, or the cache when -1
    /// (scripts/whisper-patch.cmake); (null, 0) ends it.
    fn whisper_voicebot_tree(parent: *const i32, n: i32);
}

/// `decode` with this thread's decoder taking its tokens as a tree (`parents`: each
/// token's parent in the call, -1 for the cache); the setting is cleared after it,
/// however it ends, so no other call takes it.
fn as_tree<T>(parents: &[i32], decode: impl FnOnce() -> T) -> T {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            // SAFETY: (null, 0) is an empty setting, this thread's own.
            unsafe { whisper_voicebot_tree(std::ptr::null(), 0) };
        }
    }
    let n = i32::try_from(parents.len()).expect("a tree call is a few hundred tokens");
    // SAFETY: whisper.cpp copies `parents` before returning; the setting is this
    // thread's own (scripts/whisper-patch.cmake).
    unsafe { whisper_voicebot_tree(parents.as_ptr(), n) };
    let _clear = Clear;
    decode()
}

struct Decoder<'a> {
    state: &'a mut WhisperState,
    threads: usize,
    stop: Option<&'a AtomicBool>,
    /// The tokens the decoder's rows cover (narrowed while the scoring runs); none:
    /// the whole vocabulary.
    vocab: Option<&'a Vocab>,
}

impl NextToken for Decoder<'_> {
    type Error = WhisperError;

    fn feed(
        &mut self,
        tokens: &[i32],
        n_past: usize,
        wanted: &[Vec<i32>],
    ) -> Result<Vec<Vec<f32>>, WhisperError> {
        if self.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            // whisper's own code for an aborted computation.
            return Err(WhisperError::GenericError(-6));
        }
        self.state.decode(tokens, n_past, self.threads)?;
        let n_vocab = self.state.n_vocab() as usize;
        let width = self.vocab.map_or(n_vocab, Vocab::width);
        let rows = logit_rows(self.state, tokens.len(), width)?;
        Ok(wanted
            .iter()
            .zip(rows.chunks_exact(width.max(1)))
            .map(|(w, row)| {
                if w.is_empty() {
                    return Vec::new();
                }
                match self.vocab {
                    Some(vocab) => vocab.log_probs(row, w),
                    None => log_probs(row, w),
                }
            })
            .collect())
    }

    fn feed_tree(
        &mut self,
        tokens: &[i32],
        parents: &[Option<usize>],
        n_past: usize,
        wanted: &[Vec<i32>],
    ) -> Result<Vec<Vec<f32>>, WhisperError> {
        let index = |i: usize| i32::try_from(i).expect("a tree call is a few hundred tokens");
        let parents: Vec<i32> = parents.iter().map(|p| p.map_or(-1, index)).collect();
        as_tree(&parents, || self.feed(tokens, n_past, wanted))
    }
}

/// The logits of the last decode, `n` rows of `width` (the vocabulary's size, or the
/// narrowed one's). Stock whisper.cpp fills only the last row; built with
/// `scripts/whisper-patch.cmake` it fills all (see `rows_come_back`).
fn logit_rows(state: &WhisperState, n: usize, width: usize) -> Result<&[f32], WhisperError> {
    let first = state.get_logits()?;
    assert!(width <= first.len(), "rows no wider than the vocabulary");
    // SAFETY: whisper_decode_with_state sizes the state's logits vector to
    // n_tokens × n_vocab before copying rows of `width` into it, packed (whisper.cpp
    // 1.8.3, whisper_decode_internal, as patched), and `first` points at its start;
    // the vector is not touched again while `state` stays borrowed.
    Ok(unsafe { std::slice::from_raw_parts(first.as_ptr(), n * width) })
}

/// What one decoder call takes in this build (checked once per worker, on the state
/// that encoded silence): every token's logits (else phrasings are scored one token per
/// call), and then a tree of tokens (else a run per branch).
pub fn feeding(ctx: &WhisperContext, state: &mut WhisperState) -> Result<Feed, WhisperError> {
    Ok(if !rows_come_back(ctx, state)? {
        Feed::Token
    } else if tree_comes_back(ctx, state)? {
        Feed::Tree
    } else {
        Feed::Run
    })
}

/// How far two computations of the same logits may differ: ggml's matrix multiply
/// (tinyBLAS, `.cargo/config.toml`) sums in another order for one token than for
/// several, and for a tree than for a run: up to ~0.01 measured. Logits in another
/// context (a row the patch did not fill, a tree taken as a run) differ by 15-20.
const ROUNDING: f32 = 0.05;

fn same_row(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| (a - b).abs() <= ROUNDING)
}

/// Whether a tree call's rows are what its paths give fed one at a time: after
/// start-of-transcript, the tree {transcribe → no-timestamps, a language token}.
fn tree_comes_back(ctx: &WhisperContext, state: &mut WhisperState) -> Result<bool, WhisperError> {
    let n_vocab = state.n_vocab() as usize;
    let (sot, a, b) = (ctx.token_sot(), ctx.token_transcribe(), ctx.token_not());
    let c = lang_token(ctx, "da").unwrap_or(a);
    let mut last_row = |tokens: &[i32]| -> Result<Vec<f32>, WhisperError> {
        state.decode(tokens, 0, 1)?;
        Ok(logit_rows(state, tokens.len(), n_vocab)?[(tokens.len() - 1) * n_vocab..].to_vec())
    };
    let (path_b, path_c) = (last_row(&[sot, a, b])?, last_row(&[sot, c])?);
    state.decode(&[sot], 0, 1)?;
    as_tree(&[-1, 0, -1], || state.decode(&[a, b, c], 1, 1))?;
    let rows = logit_rows(state, 3, n_vocab)?;
    Ok(same_row(&rows[n_vocab..2 * n_vocab], &path_b) && same_row(&rows[2 * n_vocab..], &path_c))
}

/// Whether one decoder call returns logits for every token fed: the first row of a
/// two-token call must equal the logits of feeding its first token alone. A call of
/// another token comes first, because an unfilled row keeps the previous call's.
fn rows_come_back(ctx: &WhisperContext, state: &mut WhisperState) -> Result<bool, WhisperError> {
    let (first, second) = (ctx.token_sot(), ctx.token_transcribe());
    state.decode(&[second], 0, 1)?;
    state.decode(&[first, second], 0, 1)?;
    let row = logit_rows(state, 2, state.n_vocab() as usize)?;
    let row = row[..row.len() / 2].to_vec();
    state.decode(&[first], 0, 1)?;
    let alone = state.get_logits()?;
    Ok(same_row(&row, alone))
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
    let lps = Decoder {
        state,
        threads: 1,
        stop: None,
        vocab: None,
    }
    .feed(&[ctx.token_sot()], 0, &[vec![ta, tb]])?;
    Ok(lps[0][0] - lps[0][1])
}

/// Phrasings longer than this are not scored (their shorter siblings are): decoder
/// calls grow with the tokens fed.
const MAX_PHRASING_TOKENS: usize = 64;

/// Turns text into the tokens whisper would write for it, ending with end-of-text;
/// none for a phrasing too long to score.
fn tokens(ctx: &WhisperContext, text: &str) -> Option<Vec<i32>> {
    let text = format!(" {}", text.trim());
    // Room for every token the text can have (each covers at least one byte): given
    // less, whisper-rs 0.16 takes whisper.cpp's "too many, n needed" (-n) for the
    // length and reads far past its buffer. A taught example of 200 Danish characters
    // can be 70 tokens: the gateway crashed on the next turn that scored it.
    let mut t = ctx.tokenize(&text, text.len() + 1).ok()?;
    if t.len() > MAX_PHRASING_TOKENS {
        return None;
    }
    t.push(ctx.token_eot());
    Some(t)
}

/// How much decoding one utterance's scoring may take.
#[derive(Debug, Clone, Copy)]
pub struct Budget<'a> {
    /// Decoder calls, as runs would make them (`Trie::decodes`).
    pub calls: usize,
    /// What a decoder call takes (`feeding`).
    pub feed: Feed,
    /// Threads per decoder call (more than one only when the other workers are idle).
    pub threads: usize,
    /// Set when the result is no longer wanted (a partial decode whose caller went on
    /// speaking): the scoring stops before its next decoder call, so the worker is free
    /// for the turn's final decode at once instead of after up to a second and a half.
    pub stop: Option<&'a AtomicBool>,
    /// Each token's log-probability is normalised over the first `vocab` tokens and
    /// itself (see `vocab`); 0: over the whole vocabulary.
    pub vocab: usize,
}

impl Budget<'_> {
    /// Every phrasing of `trie` scored after `prefix` on the audio `state` encoded, with
    /// the decoder narrowed to the budget's vocabulary while it runs.
    fn score_trie(
        &self,
        trie: &Trie,
        state: &mut WhisperState,
        prefix: &[i32],
    ) -> Result<Vec<f32>, WhisperError> {
        let n_vocab = state.n_vocab() as usize;
        let vocab = Some(Vocab::new(self.vocab.min(n_vocab), trie.tokens()))
            .filter(|v| self.vocab > 0 && v.width() < n_vocab);
        let _narrowed = vocab.as_ref().map(Vocab::narrow_decoder);
        let mut decoder = Decoder {
            state,
            threads: self.threads,
            stop: self.stop,
            vocab: vocab.as_ref(),
        };
        trie.score(&mut decoder, prefix)
    }
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
    budget: Budget<'_>,
) -> Result<Vec<Hint>, WhisperError> {
    let Some(lang) = lang_token(ctx, language) else {
        return Ok(Vec::new());
    };
    let prefix = prefix(ctx, lang);
    let tokenized: Vec<Vec<Vec<i32>>> = sets
        .iter()
        .map(|s| s.phrasings.iter().filter_map(|p| tokens(ctx, p)).collect())
        .collect();
    let mut trie = Trie::new(budget.feed);
    let mut owner: Vec<(usize, usize)> = Vec::new(); // phrasing index -> (set, phrasing)
    let rounds = tokenized.iter().map(Vec::len).max().unwrap_or(0);
    'fill: for round in 0..rounds {
        for (s, phrasings) in tokenized.iter().enumerate() {
            let Some(t) = phrasings.get(round) else {
                continue;
            };
            if trie.decodes() + trie.cost_of(t) > budget.calls {
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
    let on_audio = budget.score_trie(&trie, state, &prefix)?;
    tracing::debug!(
        decodes = trie.decodes(),
        tokens = trie.fed(),
        phrasings = trie.len(),
        secs = started.elapsed().as_secs_f32(),
        "phrasings scored"
    );
    let prior = priors.get(lang, &tokenized, &owner, silence, (&prefix, budget))?;
    let mut fits: Vec<Vec<f32>> = vec![Vec::new(); sets.len()];
    for (i, &(s, r)) in owner.iter().enumerate() {
        let n = tokenized[s][r].len();
        fits[s].push(normalized(on_audio[i], prior[i], n));
    }
    let best = sets
        .iter()
        .zip(fits)
        .map(|(set, f)| candidate_score(f, set.text_rank));
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

/// Works out the priors of `phrasings` in `language` not known yet, on `silence`.
pub fn warm_priors(
    ctx: &WhisperContext,
    silence: &mut WhisperState,
    priors: &Priors,
    language: &str,
    phrasings: &[String],
    budget: Budget<'_>,
) -> Result<(), WhisperError> {
    let Some(lang) = lang_token(ctx, language) else {
        return Ok(());
    };
    let tokenized = vec![phrasings
        .iter()
        .filter_map(|p| tokens(ctx, p))
        .collect::<Vec<_>>()];
    let owner: Vec<(usize, usize)> = (0..tokenized[0].len()).map(|i| (0, i)).collect();
    priors.get(
        lang,
        &tokenized,
        &owner,
        silence,
        (&prefix(ctx, lang), budget),
    )?;
    Ok(())
}

impl Priors {
    /// Every prior known.
    pub(super) fn known(&self) -> Vec<(PriorKey, f32)> {
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        known.iter().map(|(k, &v)| (k.clone(), v)).collect()
    }

    pub(super) fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Priors worked out before (read back from the priors file).
    pub(super) fn learn(&self, priors: impl IntoIterator<Item = (PriorKey, f32)>) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        known.extend(priors);
    }

    /// The prior of every phrasing in `owner` order, computing the missing ones on
    /// `silence` (a state that encoded silent audio).
    fn get(
        &self,
        lang: i32,
        tokenized: &[Vec<Vec<i32>>],
        owner: &[(usize, usize)],
        silence: &mut WhisperState,
        (prefix, budget): (&[i32], Budget<'_>),
    ) -> Result<Vec<f32>, WhisperError> {
        let key = |i: usize| (lang, tokenized[owner[i].0][owner[i].1].clone());
        let missing: Vec<usize> = {
            let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
            (0..owner.len())
                .filter(|&i| !known.contains_key(&key(i)))
                .collect()
        };
        if !missing.is_empty() {
            let mut trie = Trie::new(budget.feed);
            for &i in &missing {
                trie.insert(&key(i).1);
            }
            let scores = budget.score_trie(&trie, silence, prefix)?;
            let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
            for (&i, s) in missing.iter().zip(scores) {
                known.insert(key(i), s);
            }
        }
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Ok((0..owner.len()).map(|i| known[&key(i)]).collect())
    }
}
