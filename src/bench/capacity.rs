//! `voicebot bench turn --talking 2,4,…`: how many callers the gateway carries at once
//! while they talk. Each caller holds one call and asks several fixture
//! questions in it, speaking about 30% of the time: after each question it listens
//! for 7/3 of the question's length (the answer, and its next question may cut into
//! the follow-up, as callers do). Callers start spread over one question's cycle, so
//! the load is steady, not a burst. Every turn is timed by the gateway, from the
//! caller's last voiced frame to the first packet of the answer itself. The capacity is
//! the most callers carried with an answer p95 within 1.2 s and none refused.

use super::turn::{caller_playing, percentile, questions, start_gateway};
use crate::caller;
use crate::config::Config;

/// Questions per call.
const QUESTIONS: usize = 4;
/// The answer time (p95, seconds) past which callers start repeating themselves.
const TOLERABLE_P95: f64 = 1.2;
/// About the length of one question and its listening time: the callers' starts are
/// spread over this.
const CYCLE_SECS: usize = 12;
/// The greeting plays for about 9.5 s: each call's first question comes after it.
const GREETING_SECS: usize = 11;

pub async fn run(
    config: Config,
    lang: &str,
    levels: &[usize],
    out: &mut String,
) -> anyhow::Result<()> {
    use std::fmt::Write;
    let questions = questions(lang)?;
    let (running, cancel) = start_gateway(config, lang).await?;
    let dir = std::env::temp_dir().join(format!("voicebot-capacity-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    writeln!(
        out,
        "| talking callers | turns asked | answered | answer p50 s | p95 s | max s | refused (recognizer full) |\n|---|---|---|---|---|---|---|"
    )?;
    let mut carried = None;
    let mut crossed = false;
    for &n in levels {
        let before = running.turns.recent().len();
        let refused_before = counter(&super::turn::metrics(running.http).await?, REFUSED);
        let mut jobs = Vec::new();
        for i in 0..n {
            let mut pcm = vec![0i16; 8000 * (GREETING_SECS + CYCLE_SECS * i / n.max(1))];
            for q in 0..QUESTIONS {
                let f = &questions[(i * QUESTIONS + q) % questions.len()];
                let speech = crate::audio::wav::read_at(&f.telephone_wav(), 8000)?;
                let listen = speech.len() * 7 / 3;
                pcm.extend(speech);
                pcm.resize(pcm.len() + listen, 0);
            }
            let wav = dir.join(format!("caller-{n}-{i}.wav"));
            let opts = caller_playing(running.sip, &wav, &pcm, 2.0, &format!("caller-{i}"))?;
            jobs.push(tokio::spawn(caller::place(opts)));
        }
        for j in jobs {
            j.await??;
        }
        let mut answers: Vec<f64> = running.turns.recent()[before..]
            .iter()
            .map(|t| t.answer)
            .collect();
        answers.sort_by(|a, b| a.total_cmp(b));
        let refused = counter(&super::turn::metrics(running.http).await?, REFUSED) - refused_before;
        let p95 = percentile(&answers, 0.95);
        writeln!(
            out,
            "| {n} | {} | {} | {:.3} | {p95:.3} | {:.3} | {refused} |",
            n * QUESTIONS,
            answers.len(),
            percentile(&answers, 0.5),
            answers.last().copied().unwrap_or(f64::NAN),
        )?;
        // The capacity is the last level carried before the first that is not.
        if p95 <= TOLERABLE_P95 && refused == 0 && !crossed {
            carried = Some(n);
        } else {
            crossed = true;
        }
    }
    match carried {
        Some(n) => writeln!(
            out,
            "\ncapacity: {n} talking callers with answer p95 ≤ {TOLERABLE_P95} s and none refused"
        )?,
        None => writeln!(
            out,
            "\ncapacity: below the lowest level tried (answer p95 > {TOLERABLE_P95} s)"
        )?,
    }
    cancel.cancel();
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

const REFUSED: &str = "voicebot_stt_overloads_total";

/// A counter's value in a Prometheus text exposition (0 when absent).
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_counter_and_not_its_neighbours() {
        let page = "HTTP/1.1 200 OK\r\n\r\n# TYPE voicebot_stt_overloads counter\n\
                    voicebot_stt_overloads_total 3\nvoicebot_stt_overloads_total_x 9\n";
        assert_eq!(counter(page, REFUSED), 3);
        assert_eq!(counter(page, "voicebot_stt_utterances_total"), 0);
    }
}
