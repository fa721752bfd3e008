//! `voicebot bench turn-end`: would the end-of-turn model end each caller turn at its
//! last pause, and wait at the pauses inside it? Every understanding fixture (clean)
//! goes through the call's own listener (VAD + endpointer, pauses at `[stt] pause_ms`);
//! at each pause the model judges the audio so far. The last pause of an utterance is
//! a finished turn; an earlier one (speech resumed) is not.

use std::fmt::Write;
use std::time::Instant;

use crate::audio::resample::{i16_to_f32, resample};
use crate::bench::understand::{audio_dir, questions};
use crate::config::Config;
use crate::stt::endpoint::{Endpoint, EndpointConfig};
use crate::stt::listener::Listener;
use crate::stt::turn_end::TurnModel;

/// One pause: (language, finished turn, P(complete)).
type Judged = (String, bool, f32);

pub fn run(config: &Config, out: &mut String) -> anyhow::Result<()> {
    let model = TurnModel::load(
        &config.stt.onnxruntime_path(),
        &config.stt.turn_model_path(),
    )?;
    let mut judged: Vec<Judged> = Vec::new();
    let mut secs: Vec<f64> = Vec::new();
    for q in questions(None)? {
        let path = audio_dir().join(format!("{}.clean.wav", q.id));
        let Ok(audio) = crate::audio::wav::read_at(&path, 8000) else {
            anyhow::bail!(
                "{}: missing (audio-fixtures/understand/make.sh)",
                path.display()
            );
        };
        let mut listener = Listener::new(
            EndpointConfig {
                trailing_silence_ms: config.stt.trailing_silence_ms,
                max_utterance_ms: config.stt.max_utterance_ms,
                pause_ms: config.stt.pause_ms.max(1),
                ..Default::default()
            },
            8_000,
        );
        let mut padded = audio;
        padded.extend(std::iter::repeat_n(0i16, 8000));
        let mut pauses: Vec<f32> = Vec::new();
        for ep in listener.push(&padded) {
            match ep {
                Endpoint::Pause { audio, .. } => {
                    let started = Instant::now();
                    let p = model
                        .complete(&resample(&i16_to_f32(&audio), 8000, 16000))
                        .map_err(anyhow::Error::msg)?;
                    secs.push(started.elapsed().as_secs_f64());
                    pauses.push(p);
                }
                Endpoint::Utterance { .. } => {
                    let last = pauses.len().saturating_sub(1);
                    for (i, p) in pauses.drain(..).enumerate() {
                        judged.push((q.lang.clone(), i == last, p));
                    }
                }
                _ => {}
            }
        }
    }
    table(&judged, &mut secs, out);
    Ok(())
}

fn table(judged: &[Judged], secs: &mut [f64], out: &mut String) {
    let _ = writeln!(
        out,
        "| lang | threshold | finished turns ended at once | pauses inside a turn waited out |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    for lang in ["da", "en"] {
        let of = |finished: bool| -> Vec<f32> {
            judged
                .iter()
                .filter(|(l, f, _)| l == lang && *f == finished)
                .map(|j| j.2)
                .collect()
        };
        let (done, inside) = (of(true), of(false));
        for threshold in [0.5f32, 0.7, 0.9] {
            let share = |v: &[f32], ended: bool| {
                let n = v.iter().filter(|&&p| (p >= threshold) == ended).count();
                format!(
                    "{:.0}% of {}",
                    100.0 * n as f64 / v.len().max(1) as f64,
                    v.len()
                )
            };
            let _ = writeln!(
                out,
                "| {lang} | {threshold} | {} | {} |",
                share(&done, true),
                share(&inside, false)
            );
        }
    }
    secs.sort_by(f64::total_cmp);
    let at = |q: f64| {
        secs.get(((secs.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let _ = writeln!(
        out,
        "\nmodel time per pause (1 thread): p50 {:.0} ms, p95 {:.0} ms, {} pauses",
        at(0.5) * 1000.0,
        at(0.95) * 1000.0,
        secs.len()
    );
}
