//! Phrasings' priors worked out while the recognizer has nothing else to do, so the
//! first unsure turns after a start do not compute them on the caller's time (seen:
//! +1.3 s on the first unsure turn). The first worker takes a few phrasings at a time
//! while no turn waits, so callers go first. (Work queued while it waits for a turn is
//! taken up after that turn: it is queued at start, before the workers wait.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a worker waits for a turn before it works on priors.
pub(super) const IDLE_BEFORE_PRIORS: Duration = Duration::from_millis(50);
/// Phrasings per piece of work (a few decoder calls each): what a turn that arrives
/// meanwhile waits for at most.
pub(super) const PHRASINGS_AT_A_TIME: usize = 4;

#[derive(Default, Clone)]
pub struct PriorWork(Arc<Mutex<Pending>>);

#[derive(Default)]
struct Pending {
    /// (language, phrasing), in the order they are wanted.
    queue: VecDeque<(String, String)>,
    queued: usize,
    done: usize,
    started: Option<Instant>,
}

impl PriorWork {
    pub fn push(&self, language: &str, phrasings: Vec<String>) {
        let mut p = self.lock();
        p.queued += phrasings.len();
        p.started.get_or_insert_with(Instant::now);
        p.queue
            .extend(phrasings.into_iter().map(|t| (language.to_string(), t)));
    }

    pub fn is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    /// Up to `n` phrasings of one language, oldest first.
    pub fn take(&self, n: usize) -> Option<(String, Vec<String>)> {
        let mut p = self.lock();
        let language = p.queue.front()?.0.clone();
        let mut taken = Vec::new();
        while taken.len() < n && p.queue.front().is_some_and(|(l, _)| *l == language) {
            taken.extend(p.queue.pop_front().map(|(_, t)| t));
        }
        Some((language, taken))
    }

    /// `n` taken phrasings are done; the last piece logs the whole.
    pub fn done(&self, n: usize) {
        let mut p = self.lock();
        p.done += n;
        if p.queue.is_empty() && p.done >= p.queued {
            if let Some(started) = p.started.take() {
                tracing::info!(
                    phrasings = p.done,
                    secs = started.elapsed().as_secs_f32(),
                    "phrasing priors ready"
                );
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_taken_a_language_at_a_time_in_order() {
        let w = PriorWork::default();
        assert!(w.take(4).is_none());
        w.push("da", vec!["a".into(), "b".into(), "c".into()]);
        w.push("en", vec!["x".into()]);
        assert_eq!(w.take(2), Some(("da".into(), vec!["a".into(), "b".into()])));
        assert_eq!(w.take(4), Some(("da".into(), vec!["c".into()])));
        assert!(!w.is_empty());
        assert_eq!(w.take(4), Some(("en".into(), vec!["x".into()])));
        assert!(w.is_empty());
    }
}
