//! Phrasings' priors worked out in the background at start, so the first unsure turns
//! do not compute them on the caller's time (seen: +1.3 s on the first unsure turn).
//!
//! A thread of its own at the lowest CPU priority (nice 19) does it, with its own
//! encoded silence: callers' turns, on the workers, always go first, whatever else
//! runs on the machine (several test gateways at once, a neural voice warming up).
//! Only the silence's one encode (about 0.3 s of CPU) runs at normal priority, so the
//! gateway's stop never waits for a starved encoder.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use whisper_rs::WhisperContext;

use super::engine::{Abandon, SttError};
use super::forced::{self, Priors};
use super::recognizer::SttOptions;
use super::worker::encode_silence;

/// Phrasings worked out at a time: what the recognizer's stop waits for at most.
const PHRASINGS_AT_A_TIME: usize = 16;

/// Where phrasings go to have their priors worked out.
pub struct PriorWork(Sender<(String, Vec<String>)>);

impl PriorWork {
    pub fn push(&self, language: &str, phrasings: Vec<String>) {
        self.0.send((language.to_string(), phrasings)).ok();
    }
}

/// Starts the thread; it ends when the `PriorWork` is dropped or `closing` is set.
pub(super) fn spawn(
    ctx: Arc<WhisperContext>,
    priors: Priors,
    opts: SttOptions,
    closing: Abandon,
) -> Result<(PriorWork, JoinHandle<()>), SttError> {
    let (tx, rx) = channel::<(String, Vec<String>)>();
    let handle = std::thread::Builder::new()
        .name("stt-priors".into())
        .spawn(move || {
            let mut silence = None;
            while let Ok((language, phrasings)) = rx.recv() {
                let started = Instant::now();
                if silence.is_none() {
                    // At the thread's own priority: whisper.cpp checks for an abort only
                    // after the whole encoder, so an encode starved at nice 19 on a busy
                    // machine held the gateway's exit (joined below) for over 30 s.
                    // Decoder calls, checked between, are short.
                    let encoded = encode_silence(&ctx, &opts, &closing);
                    lowest_priority();
                    match encoded {
                        Ok(made) => silence = Some(made),
                        Err(_) if closing.load(Ordering::Relaxed) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "phrasing priors not worked out ahead");
                            return;
                        }
                    }
                }
                let (state, runs) = silence.as_mut().expect("made above");
                for chunk in phrasings.chunks(PHRASINGS_AT_A_TIME) {
                    if closing.load(Ordering::Relaxed) {
                        return;
                    }
                    let budget = forced::Budget {
                        calls: opts.rescore_budget,
                        runs: *runs,
                        threads: 1,
                        stop: Some(closing.as_ref()),
                        vocab: opts.rescore_vocab,
                    };
                    match forced::warm_priors(&ctx, state, &priors, &language, chunk, budget) {
                        Err(_) if closing.load(Ordering::Relaxed) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "phrasing priors not worked out ahead")
                        }
                        Ok(()) => {}
                    }
                }
                tracing::info!(
                    %language,
                    phrasings = phrasings.len(),
                    secs = started.elapsed().as_secs_f32(),
                    "phrasing priors ready"
                );
            }
        })
        .map_err(|e| SttError::Failed(e.to_string()))?;
    Ok((PriorWork(tx), handle))
}

/// Nice 19 for this thread alone (Linux schedules threads by their own nice value).
fn lowest_priority() {
    // SAFETY: plain syscalls about the calling thread.
    let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
    if failed != 0 {
        tracing::debug!("the phrasing priors thread keeps its CPU priority");
    }
}
