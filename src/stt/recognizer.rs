//! Whisper speech-to-text: one shared model, a pool of workers, a bounded queue.
//!
//! ggml's threads busy-wait, so two threads per job on two cores collapse under load;
//! each worker decodes with one thread and the pool is sized to the cores. A full
//! queue is an overload that is counted and refused at once, never a backlog that
//! makes every caller wait. Decoding is tuned for short telephone turns: the encoder
//! context is cut to the utterance's length (about 8× faster than the full 30 s
//! window), temperature fallback is off (it causes 10 s outliers) with the token count
//! capped instead, and the language is fixed rather than detected.

use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::oneshot;
use whisper_rs::{WhisperContext, WhisperContextParameters};

use super::engine::{Abandon, Decode, PendingTranscript, SpeechToText, SttError, Transcript, Turn};
use super::forced::Priors;
use super::priors_warmup::{self, PriorWork, PriorsFile};
use super::worker::Worker;
pub use super::worker::{audio_ctx_for, collapse_repeats};
use crate::audio::resample::{i16_to_f32, resample};

#[derive(Debug, Clone)]
pub struct SttOptions {
    pub workers: usize,
    pub queue: usize,
    /// Cut the encoder context to the utterance's length.
    pub adaptive_audio_ctx: bool,
    pub max_tokens: i32,
    /// Decoder calls one turn's knowledge-base scoring may take (see `forced::score`).
    pub rescore_budget: usize,
    /// The scoring normalises each token over this many of the vocabulary's first tokens
    /// and itself (see `stt::vocab`); 0: over the whole vocabulary.
    pub rescore_vocab: usize,
    /// Hypotheses kept while transcribing (beam search); 1: greedy.
    pub beam_size: u32,
    /// whisper.cpp's flash attention in the encoder and decoder.
    pub flash_attn: bool,
    /// Threads a job may use when no other job is running or waiting: a lone caller
    /// gets both cores, a busy pool stays at one thread per job. A job that starts
    /// while one runs on two threads overcommits the cores for a while: ggml's threads
    /// yield while they wait for each other (scripts/whisper-patch.cmake), so that
    /// costs a little, not the seconds a spinning wait cost.
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
            rescore_vocab: DEFAULT_RESCORE_VOCAB,
            beam_size: 1,
            flash_attn: false,
            idle_threads: 1,
        }
    }
}

/// Decoder calls for scoring, counted as runs of tokens would take them: a call feeds the
/// rest of a phrasing after the prefix it shares with others (~15 ms on one thread,
/// release build, narrowed vocabulary): 50 cover about two phrasings of each of 16
/// candidates and the replies, in ~0.75 s. Fed as a tree (`trie::Feed::Tree`) the
/// same phrasings (~400 tokens) take one or two calls: 0.50-0.58 s on two threads
/// where runs took 0.55-0.63 s (a lone Danish caller, `bench turn --lang da`). 75
/// measured no better (8192-token vocabulary) (Danish tune 22% → 24% right or confirmed but wrong 1% → 2%;
/// holdout 21% → 18%).
pub const DEFAULT_RESCORE_BUDGET: usize = 50;
/// Tokens each scored token is normalised over besides itself (`stt::vocab`). Against
/// the whole vocabulary, on the 200 Danish questions (clean): the scoring's p50 1.46 s →
/// 0.76 s, 192 questions end the same, right or confirmed 30 → 30 of 134 (tune) and
/// 14 → 13 of 66 (holdout), wrong answers unchanged. 8192 was as fast and as accurate on
/// the benchmark, but turned a close call in `tests/understanding.rs` (da-041 through a
/// call, under load) to the wrong intent; 16384 keeps the whole vocabulary's top
/// candidate on 185 of 197 questions (8192: 179).
pub const DEFAULT_RESCORE_VOCAB: usize = 16_384;

/// Counters the metrics registry shares.
#[derive(Debug, Default, Clone)]
pub struct SttMetrics {
    pub queue_depth: Gauge,
    pub overloads: Counter,
    pub utterances: Counter,
}

pub(super) struct Job {
    pub(super) audio_16k: Vec<f32>,
    pub(super) turn: Turn,
    pub(super) abandon: Option<Abandon>,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Transcript, SttError>>,
}

/// How many jobs wait and how many are being decoded: what decides whether a job runs
/// alone (and may take every idle thread) and whether a partial decode may start.
#[derive(Clone)]
struct Load {
    /// Jobs submitted and not yet picked up (the queue-depth metric).
    waiting: Gauge,
    busy: Arc<AtomicUsize>,
    workers: usize,
    /// Recent decodes' mean time in seconds (an f32's bits; 0 before the first).
    decode_secs: Arc<AtomicU32>,
}

impl Load {
    /// Counted before the job enters the queue: a worker that picks it up at once must
    /// not see the queue one short (it saw -1 and decoded on one thread; seen on about
    /// half of a lone caller's turns).
    fn submitting(&self) {
        self.waiting.inc();
    }

    /// The job did not enter the queue after all.
    fn refused(&self) {
        self.waiting.dec();
    }

    /// A worker took a job: whether it is the only one, running or waiting.
    fn picked(&self) -> bool {
        // Busy before no longer waiting, so an idle check never sees neither.
        let others = self.busy.fetch_add(1, Ordering::SeqCst);
        self.waiting.dec();
        others == 0 && self.waiting.get() == 0
    }

    fn finished(&self) {
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }

    /// A worker is free and nothing waits.
    fn idle(&self) -> bool {
        self.waiting.get() == 0 && self.busy.load(Ordering::SeqCst) < self.workers
    }

    /// A decode took `secs`: the mean moves a fifth of the way to it.
    fn timed(&self, secs: f32) {
        let mean = f32::from_bits(self.decode_secs.load(Ordering::Relaxed));
        let mean = if mean == 0.0 {
            secs
        } else {
            mean + (secs - mean) / 5.0
        };
        self.decode_secs.store(mean.to_bits(), Ordering::Relaxed);
    }

    /// The last job in: as many rounds of the workers as the jobs in the pool fill,
    /// each a mean decode (a running job is counted whole: a little pessimistic).
    fn expected_wait(&self) -> Duration {
        let jobs = self.waiting.get().max(0) as usize + self.busy.load(Ordering::SeqCst);
        let rounds = jobs.div_ceil(self.workers);
        let mean = f32::from_bits(self.decode_secs.load(Ordering::Relaxed));
        Duration::from_secs_f32(rounds as f32 * mean)
    }
}

#[derive(Clone)]
pub struct Recognizer {
    // Dropped before `_threads`: with the last sender gone the workers' queue closes.
    jobs: SyncSender<Job>,
    queue: usize,
    pub metrics: SttMetrics,
    load: Load,
    // Dropped before `_threads` too: the priors thread's queue closes.
    prior_work: Arc<PriorWork>,
    _threads: Arc<Threads>,
}

/// The worker threads, stopped and joined when the last `Recognizer` goes: a worker
/// still inside whisper when the process exits reads ggml's freed globals (seen: a
/// SIGSEGV at exit, a worker still encoding its silence).
struct Threads {
    closing: Abandon,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        for handle in self.handles.drain(..) {
            handle.join().ok();
        }
    }
}

/// Whisper needs at least a second of audio; shorter turns ("ja") are padded.
pub(super) const MIN_SAMPLES_16K: usize = 16_000 + 3_200;

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
        let load = Load {
            waiting: metrics.queue_depth.clone(),
            busy: Arc::new(AtomicUsize::new(0)),
            workers: opts.workers.max(1),
            decode_secs: Arc::default(),
        };
        let closing = Abandon::default();
        let mut handles = Vec::new();
        for i in 0..opts.workers.max(1) {
            let invalid = |e: whisper_rs::WhisperError| SttError::ModelInvalid {
                path: model.to_path_buf(),
                reason: e.to_string(),
            };
            let mut worker = Worker {
                state: ctx.create_state().map_err(invalid)?,
                silence: None,
                feed: super::trie::Feed::Token,
                ctx: ctx.clone(),
                priors: priors.clone(),
                closing: closing.clone(),
            };
            let rx = rx.clone();
            let opts = opts.clone();
            let load = load.clone();
            let handle = std::thread::Builder::new()
                .name(format!("stt-{i}"))
                .spawn(move || {
                    // The silence the phrasings' priors are scored on is encoded now,
                    // not in the middle of the first unsure turn (seconds of encoder).
                    if opts.rescore_budget > 0 {
                        match worker.ensure_silence(&opts) {
                            Err(_) if worker.closing.load(Ordering::Relaxed) => return,
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot encode silence for scoring")
                            }
                            Ok(()) => {}
                        }
                    }
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let threads = if load.picked() {
                            opts.idle_threads.max(1)
                        } else {
                            1
                        };
                        let queued = job.enqueued.elapsed();
                        let result = worker.decode(&job, &opts, threads, queued);
                        if let Ok(t) = &result {
                            load.timed(t.decode_secs);
                        }
                        load.finished();
                        job.reply.send(result).ok();
                    }
                })
                .map_err(|e| SttError::Failed(e.to_string()))?;
            handles.push(handle);
        }
        let file = PriorsFile::for_model(model, &opts);
        if let Some(file) = &file {
            file.load(&priors);
        }
        let (prior_work, priors_thread) =
            priors_warmup::spawn(ctx.clone(), (priors, file), opts.clone(), closing.clone())?;
        handles.push(priors_thread);
        Ok(Recognizer {
            jobs: tx,
            queue: opts.queue,
            metrics,
            load,
            prior_work: Arc::new(prior_work),
            _threads: Arc::new(Threads { closing, handles }),
        })
    }

    /// Phrasings in `language` a turn may score: their priors are worked out in the
    /// background, after every caller's turn.
    pub fn warm_priors(&self, language: &str, phrasings: Vec<String>) {
        self.prior_work.push(language, phrasings);
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
        super::engine::recognize(self, audio_16k, turn).await
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
        self.load.submitting();
        let sent = self.jobs.try_send(job);
        if sent.is_err() {
            self.load.refused();
        }
        match sent {
            Ok(()) => {
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
}

impl SpeechToText for Recognizer {
    fn submit(&self, decode: Decode) -> Result<PendingTranscript, SttError> {
        let pending = self.submit_16k(decode.audio_16k, decode.turn, decode.abandon)?;
        Ok(Box::pin(pending))
    }

    /// A worker is free and nothing waits.
    fn has_idle_worker(&self) -> bool {
        self.load.idle()
    }

    fn expected_wait(&self) -> Duration {
        self.load.expected_wait()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(workers: usize) -> Load {
        Load {
            waiting: Gauge::default(),
            busy: Arc::new(AtomicUsize::new(0)),
            workers,
            decode_secs: Arc::default(),
        }
    }

    #[test]
    fn the_wait_is_as_many_mean_decodes_as_the_pool_has_rounds_of_jobs() {
        let load = load(2);
        load.submitting();
        assert_eq!(load.expected_wait(), Duration::ZERO, "no decode timed yet");
        load.timed(0.4);
        load.timed(0.9);
        let mean = 0.4 + 0.5 / 5.0;
        let secs = |d: Duration| (d.as_secs_f32() * 1000.0).round() / 1000.0;
        assert_eq!(
            secs(load.expected_wait()),
            mean,
            "a lone job: its own decode"
        );
        load.picked();
        for _ in 0..4 {
            load.submitting();
        }
        // Five jobs on two workers: three rounds.
        assert_eq!(secs(load.expected_wait()), 3.0 * mean);
    }

    #[test]
    fn a_lone_job_runs_alone_however_soon_it_is_picked_up() {
        let load = load(2);
        assert!(load.idle());
        load.submitting();
        assert!(!load.idle(), "a job waits");
        assert!(load.picked(), "nothing else runs or waits");
        assert!(load.idle(), "the other worker is free");
        load.finished();
        assert!(load.idle());
        assert_eq!(load.waiting.get(), 0);
    }

    #[test]
    fn a_job_beside_another_is_not_alone() {
        let load = load(2);
        load.submitting();
        load.submitting();
        assert!(!load.picked(), "one more waits");
        assert!(!load.picked(), "one more runs");
        assert!(!load.idle(), "both workers busy");
        load.finished();
        assert!(load.idle());
        load.submitting();
        load.refused();
        assert_eq!(load.waiting.get(), 0, "a refused job is not counted");
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
