//! An engine thread's queue: what a caller is waiting for goes before warm-up.
//!
//! Each engine has one thread, so a prompt cache warming at start would make the first
//! callers wait behind it (seen: an English greeting's first sentence 608 ms late,
//! queued behind whole warm-up texts). Live speech is made at once; warm-up speech a
//! sentence at a time, only while nothing live waits.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, TryRecvError};

use tokio::sync::mpsc::UnboundedSender;

use super::sentences::{self, Rendered};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// A call is waiting for it.
    Live,
    /// Filling the prompt cache: whenever the engine is otherwise idle.
    Warm,
}

/// Text for an engine to speak in `voice` (whatever the engine needs to know of it).
pub struct Speak<V> {
    pub text: String,
    pub voice: V,
    pub out: UnboundedSender<Vec<i16>>,
    pub priority: Priority,
}

/// Serves `rx` on the engine's thread until every sender is gone and the warm-up is
/// done. `take` handles each job: it does what is not speech itself (None) and hands
/// speech back; `render` makes one sentence in a voice.
pub fn serve<J, V>(
    rx: Receiver<J>,
    mut take: impl FnMut(J) -> Option<Speak<V>>,
    mut render: impl FnMut(&str, &V) -> Option<Rendered>,
) {
    let mut warming: VecDeque<(VecDeque<String>, Speak<V>)> = VecDeque::new();
    loop {
        let job = if warming.is_empty() {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        } else {
            match rx.try_recv() {
                Ok(job) => job,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                    warm_one_sentence(&mut warming, &mut render);
                    continue;
                }
            }
        };
        let Some(speak) = take(job) else { continue };
        match speak.priority {
            Priority::Live => {
                sentences::stream(&speak.text, &speak.out, |s| render(s, &speak.voice))
            }
            Priority::Warm => warming.push_back((sentences::sentences(&speak.text).into(), speak)),
        }
    }
}

/// The next sentence of the oldest warm-up text; a finished text is dropped at once,
/// which closes its stream.
fn warm_one_sentence<V>(
    warming: &mut VecDeque<(VecDeque<String>, Speak<V>)>,
    render: &mut impl FnMut(&str, &V) -> Option<Rendered>,
) {
    let Some((pending, speak)) = warming.front_mut() else {
        return;
    };
    if let Some(sentence) = pending.pop_front() {
        sentences::send(&sentence, &speak.out, |s| render(s, &speak.voice));
    }
    if pending.is_empty() || speak.out.is_closed() {
        warming.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc as std_mpsc;
    use tokio::sync::mpsc::unbounded_channel;

    /// A live text sent while a two-text warm-up is under way is made after at most
    /// the one warm-up sentence in progress, and the warm-up then finishes whole.
    #[tokio::test]
    async fn live_speech_goes_before_the_warm_up_between_two_sentences() {
        let (jobs, rx) = std_mpsc::channel::<Speak<()>>();
        let (rendered_tx, rendered) = std_mpsc::channel::<String>();
        let (go_tx, go) = std_mpsc::channel::<()>();
        let engine = std::thread::spawn(move || {
            serve(rx, Some, |s, _| {
                rendered_tx.send(s.to_string()).unwrap();
                // The first warm-up sentence waits for the test's go: the live text
                // arrives while it is being made.
                if s == "W1a." {
                    go.recv().unwrap();
                }
                Some(Rendered {
                    pcm: vec![0.1; 80],
                    rate: 8000,
                })
            })
        });
        let speak = |text: &str, priority| {
            let (out, rx) = unbounded_channel();
            let job = Speak {
                text: text.into(),
                voice: (),
                out,
                priority,
            };
            (job, rx)
        };
        let (w1, mut w1_rx) = speak("W1a. W1b. W1c.", Priority::Warm);
        let (w2, mut w2_rx) = speak("W2a.", Priority::Warm);
        jobs.send(w1).unwrap();
        jobs.send(w2).unwrap();
        assert_eq!(rendered.recv().unwrap(), "W1a.");
        let (live, mut live_rx) = speak("L1. L2.", Priority::Live);
        jobs.send(live).unwrap();
        go_tx.send(()).unwrap();
        let order: Vec<String> = (0..5).map(|_| rendered.recv().unwrap()).collect();
        assert_eq!(order, ["L1.", "L2.", "W1b.", "W1c.", "W2a."]);
        let count = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<i16>>| {
            let mut n = 0;
            while rx.blocking_recv().is_some() {
                n += 1;
            }
            n
        };
        drop(jobs);
        let counts = tokio::task::spawn_blocking(move || {
            (count(&mut live_rx), count(&mut w1_rx), count(&mut w2_rx))
        })
        .await
        .unwrap();
        assert_eq!(counts, (2, 3, 1), "every sentence reached its listener");
        engine.join().unwrap();
    }
}
