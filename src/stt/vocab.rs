//! The part of whisper's vocabulary the knowledge-base scoring normalises over.
//!
//! A decoder call projects every token it is fed onto all 51,865 vocabulary entries,
//! and that projection is over half of the call's work (whisper base: 26.5 M of about
//! 48 M multiply-adds per token). The scoring only needs the log-probability of each
//! phrasing's own next token, so it asks for the logits of the first `below` tokens
//! (byte-pair merges in the order they were learnt, so the common pieces of both
//! languages) and of the phrasings' own tokens, and normalises each token over the first
//! ones and itself. The build's whisper.cpp computes just those logits
//! (`scripts/whisper-patch.cmake`).

use std::marker::PhantomData;

extern "C" {
    /// Narrows the logits of this thread's following `whisper_decode_with_state`
    /// calls to tokens [0, below) then `extra`; (0, null, 0) widens them again.
    fn whisper_voicebot_vocab(below: i32, extra: *const i32, n_extra: i32);
}

/// Tokens [0, below) and `extra` (sorted, each at least `below`), in that column order.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocab {
    below: i32,
    extra: Vec<i32>,
}

impl Vocab {
    /// The first `below` tokens and whichever of `tokens` are not among them.
    pub fn new(below: usize, tokens: impl IntoIterator<Item = i32>) -> Vocab {
        let below = i32::try_from(below).unwrap_or(i32::MAX);
        let mut extra: Vec<i32> = tokens.into_iter().filter(|&t| t >= below).collect();
        extra.sort_unstable();
        extra.dedup();
        Vocab { below, extra }
    }

    /// Columns of a row of logits.
    pub fn width(&self) -> usize {
        self.below as usize + self.extra.len()
    }

    /// The column of `token`, if it is in the vocabulary.
    pub fn column(&self, token: i32) -> Option<usize> {
        if (0..self.below).contains(&token) {
            return Some(token as usize);
        }
        let at = self.extra.binary_search(&token).ok()?;
        Some(self.below as usize + at)
    }

    /// Log-probabilities of `wanted` from a row in this vocabulary's columns, each
    /// normalised over the first `below` tokens and itself, not over the other extra
    /// tokens: a phrasing's score must not depend on which phrasings were decoded with
    /// it (its prior on silence is worked out in other company than its turn's).
    pub fn log_probs(&self, row: &[f32], wanted: &[i32]) -> Vec<f32> {
        let head = &row[..self.below as usize];
        let max = head.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = head.iter().map(|&l| (l - max).exp()).sum();
        wanted
            .iter()
            .map(|&t| {
                let Some(c) = self.column(t) else {
                    return f32::NEG_INFINITY;
                };
                let l = row[c];
                if c < head.len() {
                    return l - (max + sum.ln());
                }
                let m = max.max(l);
                l - (m + (sum * (max - m).exp() + (l - m).exp()).ln())
            })
            .collect()
    }

    /// While the result lives, whisper's decoder on this thread returns rows of this
    /// vocabulary's `width()` (in `column` order) instead of the whole vocabulary.
    pub fn narrow_decoder(&self) -> Narrowed<'_> {
        let n_extra = i32::try_from(self.extra.len()).expect("fewer tokens than i32::MAX");
        // SAFETY: whisper.cpp copies `extra` before returning (built with
        // scripts/whisper-patch.cmake, which the link needs); the setting is the calling
        // thread's own.
        unsafe { whisper_voicebot_vocab(self.below, self.extra.as_ptr(), n_extra) };
        Narrowed(PhantomData)
    }
}

/// The decoder narrowed to a `Vocab` until this is dropped. Not `Send`: the setting
/// belongs to the thread that made it.
pub struct Narrowed<'a>(PhantomData<(&'a Vocab, *const ())>);

impl Drop for Narrowed<'_> {
    fn drop(&mut self) {
        // SAFETY: as in `narrow_decoder`; an empty setting reads no pointer.
        unsafe { whisper_voicebot_vocab(0, std::ptr::null(), 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_below_the_cut_keep_their_column_and_the_rest_follow_in_order() {
        let v = Vocab::new(100, [50257, 7, 120, 50257, 99]);
        assert_eq!(v.width(), 102);
        assert_eq!(v.column(7), Some(7));
        assert_eq!(v.column(99), Some(99));
        assert_eq!(v.column(120), Some(100));
        assert_eq!(v.column(50257), Some(101));
        assert_eq!(v.column(121), None);
        assert_eq!(v.column(-1), None);
    }

    fn ln_p(logit: f32, others: &[f32]) -> f32 {
        let z: f32 = others.iter().map(|l| l.exp()).sum::<f32>() + logit.exp();
        logit - z.ln()
    }

    #[test]
    fn each_token_is_normalised_over_the_head_and_itself() {
        let v = Vocab::new(3, [10, 20]);
        let row = [0.5, 1.0, -1.0, 2.0, 0.0];
        let lp = v.log_probs(&row, &[1, 10, 20, 11]);
        let head = [0.5, -1.0]; // the head without token 1
        assert!((lp[0] - ln_p(1.0, &head)).abs() < 1e-5);
        assert!((lp[1] - ln_p(2.0, &row[..3])).abs() < 1e-5);
        assert!((lp[2] - ln_p(0.0, &row[..3])).abs() < 1e-5);
        assert_eq!(lp[3], f32::NEG_INFINITY);
    }

    #[test]
    fn a_tokens_log_probability_does_not_depend_on_the_other_extras() {
        let alone = Vocab::new(3, [10]).log_probs(&[0.5, 1.0, -1.0, 2.0], &[10, 1]);
        let with_more =
            Vocab::new(3, [10, 20, 30]).log_probs(&[0.5, 1.0, -1.0, 2.0, 9.0, 5.0], &[10, 1]);
        assert_eq!(alone, with_more);
    }

    #[test]
    fn without_a_cut_only_the_given_tokens_are_columns() {
        let v = Vocab::new(0, [5, 3]);
        assert_eq!(v.width(), 2);
        assert_eq!(v.column(3), Some(0));
        assert_eq!(v.column(5), Some(1));
        assert_eq!(v.column(4), None);
    }
}
