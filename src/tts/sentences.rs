//! Sentence-by-sentence synthesis, shared by every engine: a long answer starts playing
//! once its first sentence is made, while the engine works on the next.

use tokio::sync::mpsc::UnboundedSender;

use crate::audio::resample::{f32_to_i16, resample};

/// 250 ms at 8 kHz: a breath between sentences, easier to follow on a phone, and it
/// lets a caller get a word in.
const SENTENCE_PAUSE_SAMPLES: usize = 2000;

/// Splits text after sentence punctuation so the first sentence can play while the rest
/// is synthesized.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if matches!(c, '.' | '?' | '!') {
            let s = current.trim();
            if !s.is_empty() {
                out.push(s.to_string());
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// Audio an engine made for one sentence, at its own rate.
pub struct Rendered {
    pub pcm: Vec<f32>,
    pub rate: u32,
}

/// Renders `text` one sentence at a time with `render` (None: that sentence is skipped,
/// the engine has logged why) and sends each on as 8 kHz audio the moment it is made.
/// Stops early when the receiver is gone (the caller hung up or barged in).
pub fn stream(
    text: &str,
    out: &UnboundedSender<Vec<i16>>,
    mut render: impl FnMut(&str) -> Option<Rendered>,
) {
    for sentence in sentences(text) {
        if !send(&sentence, out, &mut render) {
            return;
        }
    }
}

/// Renders one sentence and sends it on at 8 kHz with a pause after it; false when
/// the receiver is gone.
pub fn send(
    sentence: &str,
    out: &UnboundedSender<Vec<i16>>,
    render: impl FnOnce(&str) -> Option<Rendered>,
) -> bool {
    if out.is_closed() {
        return false;
    }
    let Some(r) = render(sentence) else {
        return true;
    };
    let mut at_8k = f32_to_i16(&resample(trimmed(&r.pcm, r.rate), r.rate, 8000));
    at_8k.extend(std::iter::repeat_n(0i16, SENTENCE_PAUSE_SAMPLES));
    out.send(at_8k).is_ok()
}

/// Quieter than this (about -60 dBFS) is silence around a sentence.
const SILENCE: f32 = 0.001;

/// `pcm` without its silence before the first sound and after the last, but for 10 ms.
/// espeak-ng pads a sentence with silence whose length depends on what it said before
/// (the same sentence came out 44 ms longer while the prompt cache warmed): trimmed,
/// a sentence sounds the same every time, and its first word comes no later than it must.
fn trimmed(pcm: &[f32], rate: u32) -> &[f32] {
    let margin = rate as usize / 100;
    let Some(first) = pcm.iter().position(|s| s.abs() > SILENCE) else {
        return &[];
    };
    let last = pcm.iter().rposition(|s| s.abs() > SILENCE).unwrap_or(first);
    &pcm[first.saturating_sub(margin)..(last + 1 + margin).min(pcm.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    #[test]
    fn splits_into_sentences() {
        assert_eq!(
            sentences("Hej. Hvordan går det? Godt"),
            vec!["Hej.", "Hvordan går det?", "Godt"]
        );
        assert!(sentences("  ").is_empty());
    }

    /// A slow engine: the last sentence is rendered only once the first one's audio
    /// has reached the listener, so this finishes only if audio streams.
    #[tokio::test]
    async fn the_first_sentence_is_out_before_the_last_is_made() {
        let (out, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (heard_tx, heard_rx) = std_mpsc::channel::<()>();
        let engine = std::thread::spawn(move || {
            let mut rendered = Vec::new();
            stream("One. Two. Three.", &out, |s| {
                if s == "Three." {
                    // Blocks until the listener got sentence one (or gives up).
                    heard_rx.recv_timeout(Duration::from_secs(5)).ok()?;
                }
                rendered.push(s.to_string());
                Some(Rendered {
                    pcm: vec![0.1; 1600],
                    rate: 16000,
                })
            });
            rendered
        });
        let first = rx.recv().await.expect("first sentence");
        assert_eq!(
            first.len(),
            800 + SENTENCE_PAUSE_SAMPLES,
            "8 kHz plus a pause"
        );
        heard_tx.send(()).unwrap();
        let mut rest = 0;
        while rx.recv().await.is_some() {
            rest += 1;
        }
        assert_eq!(engine.join().unwrap(), ["One.", "Two.", "Three."]);
        assert_eq!(rest, 2);
    }

    /// The same speech padded with 15 or 60 ms of silence goes out the same: with
    /// 10 ms of silence either side, then the pause.
    #[test]
    fn silence_around_a_sentence_is_trimmed_to_a_fixed_margin() {
        let speech = vec![0.3f32; 800];
        let padded = |lead: usize, trail: usize| {
            let mut pcm = vec![0.0005f32; lead];
            pcm.extend(&speech);
            pcm.extend(vec![0.0; trail]);
            let (out, mut rx) = tokio::sync::mpsc::unbounded_channel();
            send("S.", &out, |_| Some(Rendered { pcm, rate: 8000 }));
            rx.try_recv().unwrap()
        };
        let short = padded(120, 120);
        assert!(short == padded(480, 480), "the same length and samples");
        assert_eq!(short.len(), 80 + 800 + 80 + SENTENCE_PAUSE_SAMPLES);
        assert!(
            short[80..880].iter().all(|&s| s > 9000),
            "the speech is whole"
        );
        let (out, mut rx) = tokio::sync::mpsc::unbounded_channel();
        send("S.", &out, |_| {
            Some(Rendered {
                pcm: vec![0.0; 800],
                rate: 8000,
            })
        });
        assert_eq!(
            rx.try_recv().unwrap().len(),
            SENTENCE_PAUSE_SAMPLES,
            "silence: a pause"
        );
    }

    #[test]
    fn a_listener_that_left_stops_the_engine() {
        let (out, rx) = tokio::sync::mpsc::unbounded_channel();
        drop(rx);
        let mut calls = 0;
        stream("One. Two.", &out, |_| {
            calls += 1;
            None
        });
        assert_eq!(calls, 0);
    }
}
