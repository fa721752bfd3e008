//! The part of whisper's vocabulary the knowledge-base scoring normalises over.
//!
//! A decoder call projects every token it is fed onto all 51,865 vocabulary entries,
//! and that projection is over half of the call's work (whisper base: 26.5 M of about
//! 48 M multiply-adds per token). The scoring only needs the log-probability of each
//! phrasing's own next token, so it asks for the logits of the first `below` tokens
//! (byte-pair merges in the order they were learnt, so the common pieces of both
//! languages) and of the phrasings' own tokens, and normalises over those. The build's
//! whisper.cpp computes just those (`scripts/whisper-patch.cmake`).

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

    #[test]
    fn without_a_cut_only_the_given_tokens_are_columns() {
        let v = Vocab::new(0, [5, 3]);
        assert_eq!(v.width(), 2);
        assert_eq!(v.column(3), Some(0));
        assert_eq!(v.column(5), Some(1));
        assert_eq!(v.column(4), None);
    }
}
