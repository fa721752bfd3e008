//! Phrasings' priors worked out in the background at start, so the first unsure turns
//! do not compute them on the caller's time (seen: +1.3 s on the first unsure turn).
//!
//! A thread of its own at the lowest CPU priority (nice 19) does it, with its own
//! encoded silence: callers' turns, on the workers, always go first, whatever else
//! runs on the machine (several test gateways at once, a neural voice warming up).
//! Only the silence's one encode (about 0.3 s of CPU) runs at normal priority, so the
//! gateway's stop never waits for a starved encoder.
//!
//! What it works out is kept in a file beside the model ([`PriorsFile`]) and read at
//! the next start: on a busy machine the nice-19 thread starved, and the first unsure
//! turns after a start worked their priors out on the caller's time (8 s seen).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use whisper_rs::WhisperContext;

use super::engine::{Abandon, SttError};
use super::forced::{self, PriorKey, Priors};
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

/// Bumped when what a prior is (or how the file is written) changes.
const FILE_FORMAT: u32 = 1;

/// The priors of one model under one scoring setup, kept between starts.
pub(super) struct PriorsFile(PathBuf);

impl PriorsFile {
    /// The file beside `model` for its size and time and the options a prior depends
    /// on: another model, or another scoring, never reads these.
    pub(super) fn for_model(model: &Path, opts: &SttOptions) -> Option<PriorsFile> {
        let meta = std::fs::metadata(model).ok()?;
        let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        let setup = format!(
            "{FILE_FORMAT} {} {} {} {} {}",
            meta.len(),
            modified.as_nanos(),
            opts.adaptive_audio_ctx,
            opts.rescore_vocab,
            opts.flash_attn
        );
        let digest = Sha256::digest(setup.as_bytes());
        let id: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        let name = model.file_name()?.to_string_lossy();
        Some(PriorsFile(
            model.with_file_name(format!("{name}.priors-{id}.json")),
        ))
    }

    /// Adds the priors kept last time to `priors`.
    pub(super) fn load(&self, priors: &Priors) {
        if let Some(kept) = self.read() {
            tracing::info!(path = %self.0.display(), priors = kept.len(), "phrasing priors read");
            priors.learn(kept);
        }
    }

    fn read(&self) -> Option<Vec<(PriorKey, f32)>> {
        let text = match std::fs::read_to_string(&self.0) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %self.0.display(), error = %e, "phrasing priors file not read");
                return None;
            }
        };
        serde_json::from_str(&text)
            .inspect_err(|e| {
                tracing::warn!(path = %self.0.display(), error = %e, "phrasing priors file unreadable: ignored")
            })
            .ok()
    }

    /// Keeps every prior known now, with those another gateway on this model kept
    /// since (learnt here too). Written aside and renamed, so a gateway starting beside
    /// this one reads the old file or the new, never half of one.
    fn save(&self, priors: &Priors) {
        if let Some(kept) = self.read() {
            priors.learn(kept);
        }
        let aside = self.0.with_extension(format!("{}.tmp", std::process::id()));
        // JSON has no infinity (it would be written as null and spoil the whole file).
        let mut known = priors.known();
        known.retain(|(_, prior)| prior.is_finite());
        let written = serde_json::to_vec(&known)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(&aside, json))
            .and_then(|()| std::fs::rename(&aside, &self.0));
        if let Err(e) = written {
            std::fs::remove_file(&aside).ok();
            tracing::info!(path = %self.0.display(), error = %e, "phrasing priors not kept for the next start");
        }
    }
}

/// Starts the thread; it ends when the `PriorWork` is dropped or `closing` is set.
/// The priors it works out are kept in `file`.
pub(super) fn spawn(
    ctx: Arc<WhisperContext>,
    (priors, file): (Priors, Option<PriorsFile>),
    opts: SttOptions,
    closing: Abandon,
) -> Result<(PriorWork, JoinHandle<()>), SttError> {
    let (tx, rx) = channel::<(String, Vec<String>)>();
    let handle = std::thread::Builder::new()
        .name("stt-priors".into())
        .spawn(move || {
            let mut silence = None;
            // Priors known when the file was last read or written.
            let mut kept = priors.count();
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
                let (state, feed) = silence.as_mut().expect("made above");
                for chunk in phrasings.chunks(PHRASINGS_AT_A_TIME) {
                    if closing.load(Ordering::Relaxed) {
                        return;
                    }
                    let budget = forced::Budget {
                        calls: opts.rescore_budget,
                        feed: *feed,
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
                    // A chunk at a time: a gateway stopped before the end (a short test,
                    // a busy machine starving this thread) still leaves its work.
                    if let Some(file) = file.as_ref().filter(|_| priors.count() > kept) {
                        file.save(&priors);
                        kept = priors.count();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priors_are_kept_for_one_model_and_scoring_setup() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("ggml-test.bin");
        std::fs::write(&model, b"weights").unwrap();
        let opts = SttOptions::default();
        let file = PriorsFile::for_model(&model, &opts).unwrap();
        let worked_out = Priors::default();
        worked_out.learn([((50, vec![1, 2, 3]), -4.5), ((51, vec![7]), -1.25)]);
        // Not kept: it would spoil the file (JSON has no infinity).
        worked_out.learn([((52, vec![8]), f32::NEG_INFINITY)]);
        file.save(&worked_out);

        let read = Priors::default();
        PriorsFile::for_model(&model, &opts).unwrap().load(&read);
        let mut known = read.known();
        known.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            known,
            vec![((50, vec![1, 2, 3]), -4.5), ((51, vec![7]), -1.25)]
        );

        // A gateway beside it keeps its own work without losing the first one's.
        let beside = Priors::default();
        beside.learn([((50, vec![9, 9]), -2.0)]);
        file.save(&beside);
        assert_eq!(beside.count(), 3, "it learnt what the file held");
        let read = Priors::default();
        file.load(&read);
        assert_eq!(read.count(), 3);

        // Another scoring setup, or another model in the same place, starts afresh.
        let other = SttOptions {
            rescore_vocab: opts.rescore_vocab + 1,
            ..opts.clone()
        };
        let fresh = Priors::default();
        PriorsFile::for_model(&model, &other).unwrap().load(&fresh);
        assert_eq!(fresh.count(), 0);
        std::fs::write(&model, b"other weights").unwrap();
        PriorsFile::for_model(&model, &opts).unwrap().load(&fresh);
        assert_eq!(fresh.count(), 0);
        // Nothing left aside.
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 2, "the model and one priors file");
    }

    #[test]
    fn an_unreadable_priors_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("ggml-test.bin");
        std::fs::write(&model, b"weights").unwrap();
        let file = PriorsFile::for_model(&model, &SttOptions::default()).unwrap();
        std::fs::write(&file.0, b"[[[50, [1]], -1.0], trunc").unwrap();
        let priors = Priors::default();
        file.load(&priors);
        assert_eq!(priors.count(), 0);
    }
}
