//! One recognizer worker: a whisper state that decodes a job (the free transcript,
//! the first turn's language check, the knowledge base's phrasings scored on the same
//! encoding) and the transcript's text clean-up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperState};

use super::engine::{Abandon, SttError, Transcript};
use super::forced::{self, Priors};
use super::language::{self, Check};
use super::recognizer::{Job, SttOptions, MIN_SAMPLES_16K};
use super::trie::Feed;

/// Encoder frames for `secs` of audio: 50 per second plus margin, within the model's 1500.
pub fn audio_ctx_for(secs: f32) -> i32 {
    // The epsilon keeps float error (1.2 × 50 = 60.000004) from adding a frame.
    ((secs as f64 * 50.0 - 1e-3).ceil() as i32 + 50).clamp(100, 1500)
}

/// One worker's whisper states: the utterance's, and one that encoded silence (for
/// the phrasings' priors), both reused turn after turn.
pub(super) struct Worker {
    pub(super) state: WhisperState,
    pub(super) silence: Option<WhisperState>,
    pub(super) ctx: Arc<WhisperContext>,
    pub(super) priors: Priors,
    /// What a decoder call takes in this build (checked with the silence).
    pub(super) feed: Feed,
    /// Set when the recognizer is going: stops encoding the silence.
    pub(super) closing: Abandon,
}

impl Worker {
    pub(super) fn decode(
        &mut self,
        job: &Job,
        opts: &SttOptions,
        threads: i32,
        queued: Duration,
    ) -> Result<Transcript, SttError> {
        let abandoned = || {
            job.abandon
                .as_ref()
                .is_some_and(|a| a.load(Ordering::Relaxed))
        };
        if abandoned() {
            // Given up while it was queued (the caller went on): whisper would only
            // look at the flag after the whole encoder.
            return Err(SttError::Abandoned);
        }
        let started = Instant::now();
        let mut audio = job.audio_16k.clone();
        let audio_secs = audio.len() as f32 / 16000.0;
        if audio.len() < MIN_SAMPLES_16K {
            audio.resize(MIN_SAMPLES_16K, 0.0);
        }
        let turn = &job.turn;
        let heard = transcribe(
            &mut self.state,
            &audio,
            (&turn.language, &turn.prompt),
            opts,
            threads,
            job.abandon.as_ref(),
        );
        if abandoned() {
            // whisper reports an aborted encode as a failure (-6): it is not one.
            return Err(SttError::Abandoned);
        }
        let (mut text, mut confidence) = heard?;
        // Past the free transcript whisper's abort callback is not consulted: the
        // language check and the scoring look at the flag themselves.
        let failed = |e: String| {
            if abandoned() {
                SttError::Abandoned
            } else {
                SttError::Failed(e)
            }
        };
        let mut language = turn.language.clone();
        let mut other_language_log_odds = None;
        if let Some(other) = turn.detect.as_deref().filter(|o| *o != language) {
            if abandoned() {
                return Err(SttError::Abandoned);
            }
            let odds = forced::language_odds(&self.ctx, &mut self.state, other, &language)
                .map_err(|e| failed(e.to_string()))?;
            tracing::debug!(%other, odds, "language check");
            other_language_log_odds = Some(odds);
            let check = language::by_odds(odds);
            if check != Check::Line {
                // The encoding stays the same, so the scoring below can follow either.
                let (other_text, other_confidence) = transcribe(
                    &mut self.state,
                    &audio,
                    (other, &turn.detect_prompt),
                    opts,
                    threads,
                    job.abandon.as_ref(),
                )
                .map_err(|e| if abandoned() { SttError::Abandoned } else { e })?;
                let switch = check == Check::Other
                    || language::other_wins(confidence, &other_text, other_confidence);
                if check == Check::Doubt {
                    tracing::debug!(%other, odds, confidence, other_confidence, switch, "language check in doubt");
                }
                if switch {
                    (text, confidence) = (other_text, other_confidence);
                    language = other.to_string();
                }
            }
        }
        let rescore_started = Instant::now();
        let sets = match &turn.candidates {
            Some(source) if confidence < turn.rescore_below => source(&text, &language, confidence),
            _ => Vec::new(),
        };
        let hints = if sets.is_empty() {
            Vec::new()
        } else {
            tracing::trace!(%text, "scoring phrasings");
            self.ensure_silence(opts)?;
            let silence = self.silence.as_mut().expect("made above");
            forced::score(
                &self.ctx,
                &mut self.state,
                silence,
                &self.priors,
                &language,
                &sets,
                forced::Budget {
                    calls: opts.rescore_budget,
                    feed: self.feed,
                    threads: threads.max(1) as usize,
                    stop: job.abandon.as_deref(),
                    vocab: opts.rescore_vocab,
                },
            )
            .map_err(|e| failed(e.to_string()))?
        };
        Ok(Transcript {
            text,
            language,
            confidence,
            audio_secs,
            decode_secs: started.elapsed().as_secs_f32(),
            queued_secs: queued.as_secs_f32(),
            rescore_secs: rescore_started.elapsed().as_secs_f32(),
            hints,
            other_language_log_odds,
        })
    }

    /// Makes the state holding encoded silence, once (given up when `closing` is set).
    pub(super) fn ensure_silence(&mut self, opts: &SttOptions) -> Result<(), SttError> {
        if self.silence.is_none() {
            let (state, feed) = encode_silence(&self.ctx, opts, &self.closing)?;
            self.feed = feed;
            self.silence = Some(state);
        }
        Ok(())
    }
}

/// A state holding encoded silence (what phrasings' priors are scored on), and
/// what a decoder call takes in this build (`forced::feeding`).
pub(super) fn encode_silence(
    ctx: &WhisperContext,
    opts: &SttOptions,
    closing: &Abandon,
) -> Result<(WhisperState, Feed), SttError> {
    let mut state = ctx
        .create_state()
        .map_err(|e| SttError::Failed(e.to_string()))?;
    transcribe(
        &mut state,
        &vec![0.0; 3 * 16000],
        ("da", ""),
        opts,
        1,
        Some(closing),
    )?;
    let feed = forced::feeding(ctx, &mut state).map_err(|e| SttError::Failed(e.to_string()))?;
    if feed != Feed::Tree {
        tracing::warn!(
            ?feed,
            "whisper.cpp does not take a tree of tokens in one call (not built with \
             scripts/whisper-patch.cmake): phrasings are scored in more decoder calls"
        );
    }
    Ok((state, feed))
}

/// Whisper's free transcript of `audio` and its mean token probability; leaves the
/// encoded audio in `state` for forced decoding.
fn transcribe(
    state: &mut WhisperState,
    audio: &[f32],
    (language, prompt): (&str, &str),
    opts: &SttOptions,
    threads: i32,
    abandon: Option<&Abandon>,
) -> Result<(String, f32), SttError> {
    let audio_secs = audio.len() as f32 / 16000.0;
    let strategy = match opts.beam_size {
        0 | 1 => SamplingStrategy::Greedy { best_of: 1 },
        n => SamplingStrategy::BeamSearch {
            beam_size: n as i32,
            patience: -1.0,
        },
    };
    let mut params = FullParams::new(strategy);
    params.set_n_threads(threads);
    params.set_language(Some(language));
    params.set_translate(false);
    params.set_no_context(true);
    params.set_single_segment(true);
    params.set_no_timestamps(true);
    params.set_print_special(false);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_timestamps(false);
    params.set_suppress_blank(true);
    params.set_temperature(0.0);
    params.set_temperature_inc(0.0);
    params.set_max_tokens(max_tokens_for(audio_secs, opts.max_tokens));
    if opts.adaptive_audio_ctx {
        params.set_audio_ctx(audio_ctx_for(audio_secs));
    }
    if !prompt.is_empty() {
        params.set_initial_prompt(prompt);
    }
    if let Some(abandon) = abandon {
        // whisper-rs 0.16's `set_abort_callback_safe` casts its boxed `dyn FnMut` back
        // to the closure's own type and reads garbage (aborting decodes at random), so
        // the flag is handed over directly.
        // SAFETY: the flag's Arc is borrowed for this function, and whisper calls the
        // callback only inside `full` below.
        unsafe {
            params.set_abort_callback(Some(abandon_requested));
            params.set_abort_callback_user_data(Arc::as_ptr(abandon) as *mut std::ffi::c_void);
        }
    }
    state
        .full(params, audio)
        .map_err(|e| SttError::Failed(e.to_string()))?;
    let mut text = String::new();
    let (mut prob_sum, mut tokens) = (0.0f32, 0usize);
    for segment in state.as_iter() {
        text.push_str(
            &segment
                .to_str_lossy()
                .map_err(|e| SttError::Failed(e.to_string()))?,
        );
        for t in 0..segment.n_tokens() {
            if let Some(tok) = segment.get_token(t) {
                let is_text = tok
                    .to_str_lossy()
                    .map(|s| !s.starts_with("[_") && !s.starts_with("<|"))
                    .unwrap_or(false);
                if is_text {
                    prob_sum += tok.token_probability();
                    tokens += 1;
                }
            }
        }
    }
    let confidence = if tokens > 0 {
        prob_sum / tokens as f32
    } else {
        0.0
    };
    let text = collapse_repeats(text.trim());
    let confidence = confidence.min(plausibility_cap(&text, audio_secs));
    Ok((text, confidence))
}

/// Whisper can be sure of a transcript that cannot be the whole utterance: a few words
/// for seconds of speech (it stopped early), or one word over and over (a loop). Such
/// a transcript is not trusted, whatever its token probabilities say.
fn plausibility_cap(text: &str, audio_secs: f32) -> f32 {
    /// Fewer words a second than this over the voiced part means a cut transcript
    /// (people say 2 to 3; the utterance carries up to a second of silence).
    const MIN_WORDS_PER_SEC: f32 = 0.8;
    /// The same word this many times in a row is a decoding loop.
    const LOOP: usize = 3;
    const UNSURE: f32 = 0.5;
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let cut = (words.len() as f32) < (audio_secs - 1.0) * MIN_WORDS_PER_SEC;
    let looped = words.windows(LOOP).any(|w| w.iter().all(|x| *x == w[0]));
    if cut || looped {
        UNSURE
    } else {
        1.0
    }
}

/// whisper's abort callback: the job's `Abandon` flag.
unsafe extern "C" fn abandon_requested(flag: *mut std::ffi::c_void) -> bool {
    // SAFETY: `flag` is the AtomicBool `transcribe` registered, alive while whisper runs.
    unsafe { (*(flag as *const AtomicBool)).load(Ordering::Relaxed) }
}

/// Tokens a turn of this length can need (people say ~3 words a second): without
/// temperature fallback, a short "yes please" otherwise loops until the cap.
fn max_tokens_for(audio_secs: f32, cap: i32) -> i32 {
    ((audio_secs * 8.0).ceil() as i32 + 8).min(cap)
}

/// Drops phrases (or runs of up to three phrases) repeated back to back ("yes please,
/// yes please, yes please"), whisper's way of filling padded silence.
pub fn collapse_repeats(text: &str) -> String {
    let mut phrases: Vec<&str> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .find(['.', ',', '!', '?'])
            .map_or(rest.len(), |i| i + 1);
        let (phrase, tail) = rest.split_at(end);
        if !phrase.trim().is_empty() {
            phrases.push(phrase);
        }
        rest = tail;
    }
    let norm = |p: &&str| {
        p.trim()
            .trim_end_matches(['.', ',', '!', '?'])
            .to_lowercase()
    };
    let mut out: Vec<&str> = Vec::new();
    let mut i = 0;
    'next: while i < phrases.len() {
        for k in (1..=3).rev() {
            let repeats = out.len() >= k
                && i + k <= phrases.len()
                && out[out.len() - k..]
                    .iter()
                    .map(norm)
                    .eq(phrases[i..i + k].iter().map(norm));
            if repeats {
                i += k;
                continue 'next;
            }
        }
        out.push(phrases[i]);
        i += 1;
    }
    out.concat().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_phrases_collapse_but_real_text_stays() {
        assert_eq!(
            collapse_repeats("Yes, please. Yes, please. Yes, please."),
            "Yes, please."
        );
        assert_eq!(
            collapse_repeats("no bank, no bank, no bank, no bank"),
            "no bank,"
        );
        assert_eq!(
            collapse_repeats("My passport ran out. How do I renew it?"),
            "My passport ran out. How do I renew it?"
        );
        assert_eq!(
            collapse_repeats("Nej, nej, det var det hele."),
            "Nej, det var det hele."
        );
        assert_eq!(collapse_repeats(""), "");
    }

    #[test]
    fn short_turns_get_few_tokens() {
        assert_eq!(max_tokens_for(1.2, 64), 18);
        assert_eq!(max_tokens_for(30.0, 64), 64);
    }

    #[test]
    fn a_cut_or_looping_transcript_is_not_sure() {
        assert_eq!(plausibility_cap("Ja, jeg,", 6.0), 0.5);
        assert_eq!(plausibility_cap("Må jeg et et et et et", 4.0), 0.5);
        assert_eq!(
            plausibility_cap("When do you empty the bins on my street?", 3.5),
            1.0
        );
        assert_eq!(plausibility_cap("Yes.", 0.9), 1.0);
        assert_eq!(
            plausibility_cap("Jeg og min mand og vores søn og datter og hunden", 4.0),
            1.0
        );
        assert_eq!(plausibility_cap("", 0.5), 1.0);
    }

    #[test]
    fn audio_ctx_follows_the_utterance() {
        assert_eq!(audio_ctx_for(1.2), 110);
        assert_eq!(audio_ctx_for(3.0), 200);
        assert_eq!(audio_ctx_for(0.1), 100);
        assert_eq!(audio_ctx_for(40.0), 1500);
    }
}
