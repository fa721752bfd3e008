//! `voicebot bench tts`: per voice (espeak English, the Piper English voice, espeak
//! Danish, and a Danish Piper voice when `[tts.da]` configures one), on every knowledge-
//! base answer and fixed prompt of its language: time to first audio and real-time
//! factor for uncached text, what warming the cache with them costs, and how well our
//! recogniser understands the voice through G.711 (word error rate; no domain prompt,
//! so the voice is measured and not the prompt).

use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::fixtures::word_error_rate;
use crate::audio::g711::Law;
use crate::call::prompts::PromptSet;
use crate::config::Config;
use crate::intent::kb::Kb;
use crate::intent::resolution::Language;
use crate::stt::recognizer::{Recognizer, SttOptions};
use crate::tts::engines::Engines;
use crate::tts::settings::{Engine, TtsConfig};
use crate::tts::{Priority, Synthesizer, Voice};

/// whisper's window is 30 s: longer speech is transcribed in parts, cut between sentences.
const MAX_PART_SAMPLES: usize = 28 * 8000;

struct Row {
    voice: String,
    language: &'static str,
    texts: usize,
    audio_secs: f64,
    synth_secs: f64,
    first_audio: Vec<f64>,
    wer: f64,
}

pub async fn run(config: &Config, out: &mut String) -> anyhow::Result<()> {
    let mut tts = config.tts.clone();
    if tts.en.engine != Engine::Piper {
        tts.en = TtsConfig::default().en;
    }
    let started = Instant::now();
    let engines = Arc::new(Engines::from_config(&tts)?);
    let load_secs = started.elapsed().as_secs_f64();
    let mut voices = vec![
        ("en", tts.en.as_espeak()),
        ("en", tts.en.clone()),
        ("da", tts.da.as_espeak()),
    ];
    if tts.da.engine == Engine::Piper {
        voices.push(("da", tts.da.clone()));
    }
    let kb = Kb::load_or_embedded(config.intent.kb.as_deref())?;
    let prompts = PromptSet::deserialize(config.prompts.clone())
        .map_err(|e| anyhow::anyhow!("config [prompts]: {e}"))?;
    let stt = Recognizer::load(
        &crate::stt::model_path(&config.stt.model),
        SttOptions {
            workers: 1,
            queue: 1,
            ..Default::default()
        },
    )?;
    let mut rows = Vec::new();
    for (language, voice) in voices {
        let lang: Language = language.parse().map_err(anyhow::Error::msg)?;
        let mut texts: Vec<&str> = prompts.for_language(language).all();
        texts.extend(
            kb.intents
                .iter()
                .filter_map(|i| i.answer.as_ref())
                .map(|a| a.get(lang)),
        );
        rows.push(measure(&engines, &stt, language, &voice, &texts).await?);
    }
    writeln!(
        out,
        "Voices loaded in {load_secs:.2} s ({}); whisper {} for WER.\n",
        engines.describe(&tts.en),
        config.stt.model
    )?;
    writeln!(out, "| voice | lang | texts | audio s | synthesis s (cache warm-up) | RTF | first audio p50 | first audio p95 | WER |")?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    for r in &rows {
        let mut first = r.first_audio.clone();
        first.sort_by(f64::total_cmp);
        let at = |q: f64| first[((first.len() as f64 - 1.0) * q).round() as usize];
        writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.1} | {:.3} | {:.0} ms | {:.0} ms | {:.1}% |",
            r.voice,
            r.language,
            r.texts,
            r.audio_secs,
            r.synth_secs,
            r.synth_secs / r.audio_secs,
            at(0.5) * 1000.0,
            at(0.95) * 1000.0,
            r.wer * 100.0
        )?;
    }
    Ok(())
}

/// Synthesizes every text (nothing cached), then transcribes each through G.711.
async fn measure(
    engines: &Arc<Engines>,
    stt: &Recognizer,
    language: &'static str,
    voice: &Voice,
    texts: &[&str],
) -> anyhow::Result<Row> {
    let mut spoken = Vec::new();
    let (mut synth_secs, mut first_audio) = (0.0, Vec::new());
    for text in texts {
        let started = Instant::now();
        let mut rx = engines.stream(text, voice, Priority::Live)?;
        let mut sentences = Vec::new();
        while let Some(chunk) = rx.recv().await {
            if sentences.is_empty() {
                first_audio.push(started.elapsed().as_secs_f64());
            }
            sentences.push(chunk);
        }
        synth_secs += started.elapsed().as_secs_f64();
        spoken.push(sentences);
    }
    let audio_secs = spoken.iter().flatten().map(Vec::len).sum::<usize>() as f64 / 8000.0;
    let (mut errors, mut words) = (0.0, 0usize);
    for (text, sentences) in texts.iter().zip(&spoken) {
        let mut heard = Vec::new();
        for part in parts(sentences) {
            let line = telephone(&part);
            heard.push(stt.transcribe_8k(&line, language, "").await?.text);
        }
        let n = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .count();
        errors += word_error_rate(text, &heard.join(" ")) as f64 * n as f64;
        words += n;
    }
    Ok(Row {
        voice: engines.describe(voice),
        language,
        texts: texts.len(),
        audio_secs,
        synth_secs,
        first_audio,
        wer: errors / words.max(1) as f64,
    })
}

/// Sentences joined into parts whisper can take at once.
fn parts(sentences: &[Vec<i16>]) -> Vec<Vec<i16>> {
    let mut parts: Vec<Vec<i16>> = vec![Vec::new()];
    for s in sentences {
        let last = parts.last_mut().expect("one part");
        if !last.is_empty() && last.len() + s.len() > MAX_PART_SAMPLES {
            parts.push(s.clone());
        } else {
            last.extend(s);
        }
    }
    parts
}

/// Through the line as the caller gets it: A-law and back.
fn telephone(pcm: &[i16]) -> Vec<i16> {
    let (mut coded, mut decoded) = (Vec::new(), Vec::new());
    Law::Alaw.encode_into(pcm, &mut coded);
    Law::Alaw.decode_into(&coded, &mut decoded);
    decoded
}
