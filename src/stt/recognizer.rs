//! Whisper speech-to-text: one shared model, a pool of workers, a bounded queue.
//!
//! ggml's threads busy-wait, so two threads per job on two cores collapse under load;
//! each worker decodes with one thread and the pool is sized to the cores. A full
//! queue is an overload that is counted and refused at once, never a backlog that
//! makes every caller wait. Decoding is tuned for short telephone turns: the encoder
//! context is cut to the utterance's length (about 8× faster than the full 30 s
//! window), temperature fallback is off (it causes 10 s outliers) with the token count
//! capped instead, and the language is fixed rather than detected.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::oneshot;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::forced::{self, CandidateSource, Hint, Priors};
use crate::audio::resample::{i16_to_f32, resample};

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("speech model {path} is missing: run `voicebot models fetch` (or models/fetch.sh)")]
    ModelMissing { path: PathBuf },
    #[error("speech model {path} cannot be loaded ({reason}): it may be corrupt; rerun `voicebot models fetch`")]
    ModelInvalid { path: PathBuf, reason: String },
    #[error("speech recognizer overloaded: {0} utterances already waiting")]
    Overloaded(usize),
    #[error("speech recognition failed: {0}")]
    Failed(String),
    #[error("speech recognizer stopped")]
    Stopped,
    #[error("decode abandoned: the caller went on speaking")]
    Abandoned,
}

#[derive(Debug, Clone)]
pub struct SttOptions {
    pub workers: usize,
    pub queue: usize,
    /// Cut the encoder context to the utterance's length.
    pub adaptive_audio_ctx: bool,
    pub max_tokens: i32,
    /// Decoder calls one turn's knowledge-base scoring may take (see `forced::score`).
    pub rescore_budget: usize,
    /// Hypotheses kept while transcribing (beam search); 1: greedy.
    pub beam_size: u32,
    /// whisper.cpp's flash attention in the encoder and decoder.
    pub flash_attn: bool,
    /// Threads a job may use when no other job is running or waiting: a lone caller
    /// gets both cores, a busy pool stays at one thread per job (ggml busy-waits).
    pub idle_threads: i32,
}

impl Default for SttOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        SttOptions {
            workers: cores,
            queue: cores * 2,
            adaptive_audio_ctx: true,
            max_tokens: 64,
            rescore_budget: DEFAULT_RESCORE_BUDGET,
            beam_size: 1,
            flash_attn: false,
            idle_threads: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    pub language: String,
    /// Mean token probability, 0..1.
    pub confidence: f32,
    pub audio_secs: f32,
    /// Time spent decoding (excludes time waiting in the queue).
    pub decode_secs: f32,
    pub queued_secs: f32,
    /// Knowledge-base candidates scored on the audio, best first; empty when not asked.
    pub hints: Vec<Hint>,
    /// Time the scoring took (part of `decode_secs`).
    pub rescore_secs: f32,
    /// ln(P(other language) / P(line's language)) when `Turn::detect` asked for it.
    pub other_language_log_odds: Option<f32>,
}

/// What to do with one utterance besides transcribing it.
#[derive(Clone, Default)]
pub struct Turn {
    pub language: String,
    pub prompt: String,
    /// Score these candidates' phrasings on the audio (knowledge-base-aware recognition)
    /// when the transcript's confidence is below `rescore_below`.
    pub candidates: Option<CandidateSource>,
    pub rescore_below: f32,
    /// Another language the caller may be speaking: if whisper hears it rather than
    /// `language`, the utterance is transcribed (with `detect_prompt`) and scored in it.
    pub detect: Option<String>,
    pub detect_prompt: String,
}

/// Decoder calls for scoring, ~6.5 ms each on one thread. On the Danish tune set 75
/// kept the right intent named as often as 100–150 (with 6–8 candidates) did, for
/// ~0.15 s less per turn.
pub const DEFAULT_RESCORE_BUDGET: usize = 75;
/// Log-odds of the other language over the line's above which a turn is taken as
/// spoken in it. Whisper base leans to English on anything unclear: espeak-ng Danish
/// reached 8.3 on the fixtures, English on a Danish line never fell below 10.8.
pub const SWITCH_LANGUAGE_LOG_ODDS: f32 = 9.5;

/// Counters the metrics registry shares.
#[derive(Debug, Default, Clone)]
pub struct SttMetrics {
    pub queue_depth: Gauge,
    pub overloads: Counter,
    pub utterances: Counter,
}

/// Set to stop a decode early (whisper checks it during computation).
pub type Abandon = Arc<AtomicBool>;

struct Job {
    audio_16k: Vec<f32>,
    turn: Turn,
    abandon: Option<Abandon>,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Transcript, SttError>>,
}

#[derive(Clone)]
pub struct Recognizer {
    jobs: SyncSender<Job>,
    queue: usize,
    pub metrics: SttMetrics,
    /// Workers decoding now.
    busy: Arc<AtomicUsize>,
    workers: usize,
}

/// Whisper needs at least a second of audio; shorter turns ("ja") are padded.
const MIN_SAMPLES_16K: usize = 16_000 + 3_200;

impl Recognizer {
    pub fn load(model: &Path, opts: SttOptions) -> Result<Recognizer, SttError> {
        if !model.is_file() {
            return Err(SttError::ModelMissing {
                path: model.to_path_buf(),
            });
        }
        whisper_rs::install_logging_hooks();
        let mut params = WhisperContextParameters::default();
        params.flash_attn(opts.flash_attn);
        let ctx =
            WhisperContext::new_with_params(model, params).map_err(|e| SttError::ModelInvalid {
                path: model.to_path_buf(),
                reason: e.to_string(),
            })?;
        let ctx = Arc::new(ctx);
        let (tx, rx) = sync_channel::<Job>(opts.queue);
        let rx = Arc::new(Mutex::new(rx));
        let metrics = SttMetrics::default();
        let priors = Priors::default();
        let busy = Arc::new(AtomicUsize::new(0));
        for i in 0..opts.workers.max(1) {
            let invalid = |e: whisper_rs::WhisperError| SttError::ModelInvalid {
                path: model.to_path_buf(),
                reason: e.to_string(),
            };
            let mut worker = Worker {
                state: ctx.create_state().map_err(invalid)?,
                silence: None,
                ctx: ctx.clone(),
                priors: priors.clone(),
            };
            let rx = rx.clone();
            let opts = opts.clone();
            let depth = metrics.queue_depth.clone();
            let busy = busy.clone();
            std::thread::Builder::new()
                .name(format!("stt-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    // Busy before no longer queued, so an idle check never sees neither.
                    let others = busy.fetch_add(1, Ordering::SeqCst);
                    depth.dec();
                    let alone = others == 0 && depth.get() == 0;
                    let threads = if alone { opts.idle_threads.max(1) } else { 1 };
                    let queued = job.enqueued.elapsed();
                    let result = worker.decode(&job, &opts, threads, queued);
                    busy.fetch_sub(1, Ordering::SeqCst);
                    job.reply.send(result).ok();
                })
                .map_err(|e| SttError::Failed(e.to_string()))?;
        }
        Ok(Recognizer {
            jobs: tx,
            queue: opts.queue,
            metrics,
            busy,
            workers: opts.workers.max(1),
        })
    }

    /// Transcribes 8 kHz telephone audio.
    pub async fn transcribe_8k(
        &self,
        pcm: &[i16],
        language: &str,
        prompt: &str,
    ) -> Result<Transcript, SttError> {
        let audio = resample(&i16_to_f32(pcm), 8000, 16000);
        self.transcribe_16k(audio, language, prompt).await
    }

    pub async fn transcribe_16k(
        &self,
        audio_16k: Vec<f32>,
        language: &str,
        prompt: &str,
    ) -> Result<Transcript, SttError> {
        let turn = Turn {
            language: language.to_string(),
            prompt: prompt.to_string(),
            ..Turn::default()
        };
        self.recognize_16k(audio_16k, turn).await
    }

    /// Transcribes 8 kHz telephone audio and does what `turn` asks besides.
    pub async fn recognize_8k(&self, pcm: &[i16], turn: Turn) -> Result<Transcript, SttError> {
        self.recognize_16k(resample(&i16_to_f32(pcm), 8000, 16000), turn)
            .await
    }

    pub async fn recognize_16k(
        &self,
        audio_16k: Vec<f32>,
        turn: Turn,
    ) -> Result<Transcript, SttError> {
        self.submit_16k(audio_16k, turn, None)?.await
    }

    /// Queues 8 kHz audio at once (refused when the queue is full); the transcript
    /// comes from the returned future.
    pub fn submit_8k(
        &self,
        pcm: &[i16],
        turn: Turn,
        abandon: Option<Abandon>,
    ) -> Result<impl std::future::Future<Output = Result<Transcript, SttError>>, SttError> {
        self.submit_16k(resample(&i16_to_f32(pcm), 8000, 16000), turn, abandon)
    }

    fn submit_16k(
        &self,
        audio_16k: Vec<f32>,
        turn: Turn,
        abandon: Option<Abandon>,
    ) -> Result<impl std::future::Future<Output = Result<Transcript, SttError>>, SttError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            audio_16k,
            turn,
            abandon,
            enqueued: Instant::now(),
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {
                self.metrics.queue_depth.inc();
                self.metrics.utterances.inc();
            }
            Err(TrySendError::Full(_)) => {
                self.metrics.overloads.inc();
                tracing::warn!(queue = self.queue, "speech recognizer overloaded");
                return Err(SttError::Overloaded(self.queue));
            }
            Err(TrySendError::Disconnected(_)) => return Err(SttError::Stopped),
        }
        Ok(async move { rx.await.map_err(|_| SttError::Stopped)? })
    }

    /// A worker is free and nothing waits: a decode submitted now starts at once.
    pub fn has_idle_worker(&self) -> bool {
        self.metrics.queue_depth.get() == 0 && self.busy.load(Ordering::SeqCst) < self.workers
    }
}

/// Encoder frames for `secs` of audio: 50 per second plus margin, within the model's 1500.
pub fn audio_ctx_for(secs: f32) -> i32 {
    // The epsilon keeps float error (1.2 × 50 = 60.000004) from adding a frame.
    ((secs as f64 * 50.0 - 1e-3).ceil() as i32 + 50).clamp(100, 1500)
}

/// One worker's whisper states: the utterance's, and one that encoded silence (for
/// the phrasings' priors), both reused turn after turn.
struct Worker {
    state: WhisperState,
    silence: Option<WhisperState>,
    ctx: Arc<WhisperContext>,
    priors: Priors,
}

impl Worker {
    fn decode(
        &mut self,
        job: &Job,
        opts: &SttOptions,
        threads: i32,
        queued: Duration,
    ) -> Result<Transcript, SttError> {
        let started = Instant::now();
        let mut audio = job.audio_16k.clone();
        let audio_secs = audio.len() as f32 / 16000.0;
        if audio.len() < MIN_SAMPLES_16K {
            audio.resize(MIN_SAMPLES_16K, 0.0);
        }
        let turn = &job.turn;
        let abandon = job.abandon.clone();
        let abandoned = || abandon.as_ref().is_some_and(|a| a.load(Ordering::Relaxed));
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
        let mut language = turn.language.clone();
        let mut other_language_log_odds = None;
        if let Some(other) = turn.detect.as_deref().filter(|o| *o != language) {
            let odds = forced::language_odds(&self.ctx, &mut self.state, other, &language)
                .map_err(|e| SttError::Failed(e.to_string()))?;
            tracing::debug!(%other, odds, "language check");
            other_language_log_odds = Some(odds);
            if odds > SWITCH_LANGUAGE_LOG_ODDS {
                (text, confidence) = transcribe(
                    &mut self.state,
                    &audio,
                    (other, &turn.detect_prompt),
                    opts,
                    threads,
                    job.abandon.as_ref(),
                )?;
                language = other.to_string();
            }
        }
        let rescore_started = Instant::now();
        let hints = match &turn.candidates {
            Some(source) if confidence < turn.rescore_below => {
                let sets = source(&text, &language);
                self.ensure_silence(opts)?;
                let silence = self.silence.as_mut().expect("made above");
                forced::score(
                    &self.ctx,
                    &mut self.state,
                    silence,
                    &self.priors,
                    &language,
                    &sets,
                    opts.rescore_budget,
                )
                .map_err(|e| SttError::Failed(e.to_string()))?
            }
            _ => Vec::new(),
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

    /// Makes the state holding encoded silence, on first use.
    fn ensure_silence(&mut self, opts: &SttOptions) -> Result<(), SttError> {
        if self.silence.is_none() {
            let mut state = self
                .ctx
                .create_state()
                .map_err(|e| SttError::Failed(e.to_string()))?;
            transcribe(&mut state, &vec![0.0; 3 * 16000], ("da", ""), opts, 1, None)?;
            self.silence = Some(state);
        }
        Ok(())
    }
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

    #[test]
    fn a_missing_model_names_the_fix() {
        let err = Recognizer::load(
            Path::new("/nonexistent/ggml-base.bin"),
            SttOptions::default(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("voicebot models fetch"), "{err}");
    }

    #[test]
    fn a_corrupt_model_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ggml-base.bin");
        std::fs::write(&bad, b"not a model at all").unwrap();
        let err = Recognizer::load(&bad, SttOptions::default()).err().unwrap();
        assert!(matches!(err, SttError::ModelInvalid { .. }), "{err}");
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}
