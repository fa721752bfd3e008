//! `voicebot bench stt`: per fixture, seconds from speech end to transcript and the
//! real-time factor, for a model, with the encoder context cut to the utterance or
//! whole; then 1, 2 and 4 utterances at once on the worker pool.

use std::time::Instant;

use super::fixtures::{self, word_error_rate};
use crate::config::SttConfig;
use crate::stt::recognizer::{Recognizer, SttOptions};

pub async fn run(model: &str, out: &mut String) -> anyhow::Result<()> {
    use std::fmt::Write;
    let all = fixtures::load().map_err(anyhow::Error::msg)?;
    let cfg = SttConfig::default();
    let path = crate::stt::model_path(model);
    // (adaptive encoder context, flash attention, threads when the pool is idle)
    let variants = [
        (true, false, 1),
        (true, true, 1),
        (true, false, 2),
        (true, true, 2),
        (false, false, 1),
    ];
    for (adaptive, flash_attn, idle_threads) in variants {
        let opts = SttOptions {
            adaptive_audio_ctx: adaptive,
            flash_attn,
            idle_threads,
            ..Default::default()
        };
        let workers = opts.workers;
        let stt = Recognizer::load(&path, opts)?;
        let label = format!(
            "audio_ctx {}, flash attention {}, {idle_threads} thread(s) when idle",
            if adaptive { "adaptive" } else { "1500" },
            if flash_attn { "on" } else { "off" },
        );
        writeln!(out, "\n## {model}, {label}, {workers} workers\n")?;
        writeln!(
            out,
            "| fixture | audio s | decode s | RTF | WER | transcript |\n|---|---|---|---|---|---|"
        )?;
        let mut by_lang: std::collections::BTreeMap<String, (f32, f32, usize)> = Default::default();
        for f in all
            .iter()
            .filter(|f| !(model.ends_with(".en") && f.lang != "en"))
        {
            let pcm = crate::audio::wav::read_at(&f.telephone_wav(), 8000)?;
            let t = stt
                .transcribe_8k(&pcm, &f.lang, cfg.prompt_for(&f.lang))
                .await?;
            let wer = word_error_rate(&f.text, &t.text);
            let e = by_lang.entry(f.lang.clone()).or_default();
            e.0 += wer;
            e.1 += t.decode_secs;
            e.2 += 1;
            writeln!(
                out,
                "| {} | {:.2} | {:.2} | {:.2} | {:.0}% | {} |",
                f.id,
                t.audio_secs,
                t.decode_secs,
                t.decode_secs / t.audio_secs,
                wer * 100.0,
                t.text
            )?;
        }
        for (lang, (wer, secs, n)) in by_lang {
            writeln!(
                out,
                "\n{lang}: mean WER {:.1}%, mean decode {:.2} s over {n} fixtures",
                100.0 * wer / n as f32,
                secs / n as f32
            )?;
        }
        let sample = all
            .iter()
            .find(|f| f.id == "en-passport")
            .unwrap_or(&all[0]);
        let pcm = crate::audio::wav::read_at(&sample.telephone_wav(), 8000)?;
        for concurrent in [1usize, 2, 4] {
            let started = Instant::now();
            let jobs: Vec<_> = (0..concurrent)
                .map(|_| {
                    let stt = stt.clone();
                    let pcm = pcm.clone();
                    let lang = sample.lang.clone();
                    tokio::spawn(async move { stt.transcribe_8k(&pcm, &lang, "").await })
                })
                .collect();
            let mut worst: f32 = 0.0;
            let mut failed = 0;
            for j in jobs {
                match j.await? {
                    Ok(t) => worst = worst.max(t.queued_secs + t.decode_secs),
                    Err(_) => failed += 1,
                }
            }
            writeln!(out, "{concurrent} at once: slowest speech-end→transcript {worst:.2} s, all done in {:.2} s, refused {failed}",
                started.elapsed().as_secs_f32())?;
        }
    }
    writeln!(out, "\npeak RSS {:.0} MiB", peak_rss_mib())?;
    Ok(())
}

pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |k| k / 1024.0)
}
