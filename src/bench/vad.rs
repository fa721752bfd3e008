//! `voicebot bench vad`: WebRTC's VAD (aggressive, with our level floor), its other
//! modes, Silero (`models/fetch.sh vad`) at three thresholds, and the two together as
//! calls use them (`[stt] vad_pause_ms`), on the understanding fixtures: clean, with
//! line noise at 15 dB SNR and hum, and with 3% of the speech frames lost. Each feeds the call's own endpointer, frame by frame, so each figure is what a call
//! would do: when the caller's turn starts (speech start, and the `barge_in_ms` of
//! speech that stops the bot), whether a question is cut in two (the turn taken as over
//! before its last word), how long after the last word voice is still heard (it delays
//! every turn's end), and what line noise alone sets off, on the fixtures' silence
//! around the speech (`make.sh`: 0.4 s before, 1.0 s after).
//!
//! Silero is fed frame by frame as a call feeds it (`stt::silero`): its probabilities
//! come per 32 ms window, and a 20 ms frame takes the last window that ended with it or
//! before (no look-ahead).

use std::fmt::Write;
use std::time::{Duration, Instant};

use crate::bench::turn::percentile;
use crate::bench::understand::{audio_dir, questions};
use crate::config::Config;
use crate::stt::endpoint::{Endpoint, EndpointConfig, Endpointer};
use crate::stt::silero::SileroModel;
use crate::stt::vad::{VadMode, VoiceDetector, FRAME};
use crate::stt::voices::{PauseRule, Voices, SILERO_THRESHOLD};

const FRAME_MS: u64 = 20;
/// The fixtures' silence around the speech (`audio-fixtures/understand/make.sh`).
const PRE_MS: u64 = 400;
const POST_MS: u64 = 1000;
/// After the last word, the tail that is surely silence (voice may fade this long).
const FADE_MS: u64 = 300;
/// A call's line is heard for seconds before the caller's question (the greeting), and
/// a VAD learns its noise meanwhile: the fixture's own tail, this often, goes first.
const LEAD_REPEATS: usize = 3;
const CONDITIONS: [&str; 3] = ["clean", "noise", "loss"];

/// A VAD and its setting.
enum Variant {
    /// WebRTC's mode by its number (0 quality … 3 very aggressive), named.
    WebRtc(u8, &'static str),
    /// The probability from which a window is speech (the wheel's default: 0.5).
    Silero(f32),
    /// WebRTC aggressive, and Silero in an open turn's pauses (`Voices`) from `[stt]
    /// vad_pause_ms` in, at this threshold (calls: `SILERO_THRESHOLD`).
    InTurns(f32),
}

const VARIANTS: [Variant; 9] = [
    Variant::WebRtc(2, "aggressive (calls before)"),
    Variant::WebRtc(3, "very aggressive"),
    Variant::WebRtc(1, "low bitrate"),
    Variant::WebRtc(0, "quality"),
    Variant::Silero(0.3),
    Variant::Silero(0.5),
    Variant::Silero(0.7),
    Variant::InTurns(0.3),
    Variant::InTurns(0.5),
];

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Variant::WebRtc(_, name) => write!(f, "webrtc {name}"),
            Variant::Silero(threshold) => write!(f, "silero {threshold}"),
            Variant::InTurns(threshold) => {
                write!(f, "webrtc + silero {threshold} in a turn's pauses")?;
                if *threshold == SILERO_THRESHOLD {
                    write!(f, " (calls)")?;
                }
                Ok(())
            }
        }
    }
}

/// What one VAD did on one condition's fixtures.
#[derive(Default)]
struct Tally {
    files: usize,
    /// From the first word to the frame that started the turn, and to `barge_in_ms`
    /// of speech confirmed, in ms.
    onset: Vec<f64>,
    barge_in: Vec<f64>,
    missed: usize,
    /// Questions whose turn was taken as over before their last word.
    cut: usize,
    /// From the last word to the end of the last utterance, in ms.
    end_lag: Vec<f64>,
    /// Questions whose turn was not over by the end of the file (1 s after the last word).
    unended: usize,
    /// Frames of the silence around the speech, and how many were called voice.
    quiet_frames: usize,
    quiet_voiced: usize,
    /// Turns started, and barge-ins, in that silence alone.
    false_starts: usize,
    false_barge_ins: usize,
    spent: Duration,
    audio_secs: f64,
}

pub fn run(config: &Config, out: &mut String) -> anyhow::Result<()> {
    let silero = SileroModel::load(&config.stt.onnxruntime_path(), &config.stt.vad_model_path())
        .map_err(|e| anyhow::anyhow!("{e} (models/fetch.sh vad onnxruntime)"))?;
    let ep = EndpointConfig {
        trailing_silence_ms: config.stt.trailing_silence_ms,
        max_utterance_ms: config.stt.max_utterance_ms,
        confirm_ms: config.stt.barge_in_ms,
        ..Default::default()
    };
    let barge_in_ms = u64::from(config.stt.barge_in_ms);
    let after_ms = u64::from(config.stt.vad_pause_ms);
    let mut tallies: Vec<(&str, String, Tally)> = Vec::new();
    for condition in CONDITIONS {
        let mut t: Vec<Tally> = VARIANTS.iter().map(|_| Tally::default()).collect();
        for q in questions(None)? {
            let path = audio_dir().join(format!("{}.{condition}.wav", q.id));
            let audio = crate::audio::wav::read_at(&path, 8000).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e} (audio-fixtures/understand/make.sh)",
                    path.display()
                )
            })?;
            let tail = &audio[audio.len().saturating_sub(8 * (POST_MS - FADE_MS) as usize)..];
            let lead = tail.len() * LEAD_REPEATS;
            let audio: Vec<i16> = tail.repeat(LEAD_REPEATS).into_iter().chain(audio).collect();
            let pre_ms = PRE_MS + (lead / 8) as u64;
            // Silero's probabilities once per file, for each of its thresholds.
            let started = Instant::now();
            let probs = silero_probs(&silero, &audio)?;
            let silero_spent = started.elapsed();
            for (variant, tally) in VARIANTS.iter().zip(&mut t) {
                let started = Instant::now();
                let voiced = match *variant {
                    Variant::WebRtc(mode, _) => {
                        let mode = match mode {
                            0 => VadMode::Quality,
                            1 => VadMode::LowBitrate,
                            2 => VadMode::Aggressive,
                            _ => VadMode::VeryAggressive,
                        };
                        let mut detector = VoiceDetector::with_mode(8000, mode);
                        audio
                            .chunks_exact(FRAME)
                            .map(|f| detector.is_voice(f))
                            .collect()
                    }
                    Variant::Silero(threshold) => {
                        tally.spent += silero_spent;
                        silero_frames(&probs, threshold)
                    }
                    Variant::InTurns(threshold) => {
                        let rule = PauseRule::new(after_ms, threshold);
                        let mut voices = Voices::new(8000).with_silero(silero.stream(8000), rule);
                        let mut turn = Endpointer::new(ep);
                        audio
                            .chunks_exact(FRAME)
                            .map(|f| {
                                let voiced = voices.voiced(f, turn.in_speech());
                                turn.push(f, voiced);
                                voiced
                            })
                            .collect()
                    }
                };
                tally.spent += started.elapsed();
                judge(tally, &voiced, ep, pre_ms);
            }
        }
        for (variant, tally) in VARIANTS.iter().zip(t) {
            tallies.push((condition, variant.to_string(), tally));
        }
    }
    table(&tallies, barge_in_ms, out)
}

/// Silero's speech probability at each 20 ms frame of 8 kHz `audio`, fed as a call
/// feeds it.
fn silero_probs(silero: &SileroModel, audio: &[i16]) -> anyhow::Result<Vec<f32>> {
    let mut stream = silero.stream(8000);
    audio
        .chunks_exact(FRAME)
        .map(|f| stream.push(f).map_err(anyhow::Error::msg))
        .collect()
}

fn silero_frames(probs: &[f32], threshold: f32) -> Vec<bool> {
    probs.iter().map(|&p| p >= threshold).collect()
}

/// One fixture's frames (voiced or not) through the endpointer, against where its
/// speech is: `pre_ms` in, ending `POST_MS` before the end.
fn judge(t: &mut Tally, voiced: &[bool], cfg: EndpointConfig, pre_ms: u64) {
    let len_ms = voiced.len() as u64 * FRAME_MS;
    let (first, last) = (pre_ms, len_ms.saturating_sub(POST_MS));
    let quiet = |ms: u64| ms < first || ms >= last + FADE_MS;
    let mut ep = Endpointer::new(cfg);
    let silent = vec![0i16; FRAME];
    let (mut onset, mut barge, mut end) = (None, None, None);
    let mut cut = false;
    let in_speech = |ms: u64| ms > first && ms <= last + FADE_MS;
    for (i, &v) in voiced.iter().enumerate() {
        let now = (i as u64 + 1) * FRAME_MS;
        if quiet(now - FRAME_MS) {
            t.quiet_frames += 1;
            t.quiet_voiced += usize::from(v);
        }
        match ep.push(&silent, v) {
            Some(Endpoint::SpeechStart { .. }) if in_speech(now) => {
                onset.get_or_insert(now);
            }
            Some(Endpoint::SpeechStart { .. }) if quiet(now) => t.false_starts += 1,
            Some(Endpoint::SpeechConfirmed { .. }) if in_speech(now) => {
                barge.get_or_insert(now);
            }
            Some(Endpoint::SpeechConfirmed { .. }) if quiet(now) => t.false_barge_ins += 1,
            Some(Endpoint::Utterance { end_ms, .. }) => {
                cut |= now < last && end_ms > first;
                if end_ms > first {
                    end = Some(end_ms);
                }
            }
            _ => {}
        }
    }
    if let Some(Endpoint::Utterance { end_ms, .. }) = ep.finish() {
        t.unended += 1;
        end = Some(end_ms);
    }
    t.files += 1;
    t.audio_secs += len_ms as f64 / 1000.0;
    t.cut += usize::from(cut);
    match onset {
        Some(o) => t.onset.push((o - first) as f64),
        None => t.missed += 1,
    }
    if let Some(b) = barge {
        t.barge_in.push((b - first) as f64);
    }
    if let Some(e) = end {
        t.end_lag.push(e as f64 - last as f64);
    }
}

/// "p50 / p95" of `v`, in whole ms.
fn spread(v: &[f64]) -> String {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    format!("{:.0} / {:.0}", percentile(&v, 0.5), percentile(&v, 0.95))
}

/// The mean of `v`, in whole ms: what a rare long lag adds to every turn on average.
fn mean(v: &[f64]) -> String {
    format!("{:.0}", v.iter().sum::<f64>() / v.len().max(1) as f64)
}

fn table(
    tallies: &[(&str, String, Tally)],
    barge_in_ms: u64,
    out: &mut String,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "| condition | VAD | files | turn start p50/p95 ms | barge-in ({barge_in_ms} ms) p50/p95 ms | missed | questions cut | voice after the last word p50/p95 ms | mean ms | turn not over 1 s after | silence called voice | false starts / min | false barge-ins / min | µs per 20 ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )?;
    for (condition, vad, t) in tallies {
        let quiet_min = t.quiet_frames as f64 * FRAME_MS as f64 / 60_000.0;
        let frames = t.audio_secs * 1000.0 / FRAME_MS as f64;
        writeln!(
            out,
            "| {condition} | {vad} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1}% | {:.2} | {:.2} | {:.1} |",
            t.files,
            spread(&t.onset),
            spread(&t.barge_in),
            t.missed,
            t.cut,
            spread(&t.end_lag),
            mean(&t.end_lag),
            t.unended,
            100.0 * t.quiet_voiced as f64 / t.quiet_frames.max(1) as f64,
            t.false_starts as f64 / quiet_min,
            t.false_barge_ins as f64 / quiet_min,
            t.spent.as_secs_f64() * 1e6 / frames,
        )?;
    }
    writeln!(
        out,
        "\nturn start: from the first word to the frame that starts the turn; barge-in: to {barge_in_ms} ms of speech heard (what stops the bot); questions cut: the turn taken as over before the last word; silence: the line before the speech (the fixture's tail three times, then its 0.4 s) and from 0.3 s after the last word to the end"
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames from a pattern: '#' voiced, '.' not, one character per 20 ms.
    fn frames(pattern: &str) -> Vec<bool> {
        pattern.chars().map(|c| c == '#').collect()
    }

    #[test]
    fn a_pause_past_the_trailing_silence_cuts_the_question_and_noise_starts_nothing() {
        let cfg = EndpointConfig {
            confirm_ms: 600,
            ..Default::default()
        };
        // 400 ms of line, 1 s of speech, a 500 ms pause, 1 s of speech, 1 s of line;
        // a 60 ms click in the line before (too short to start a turn).
        let pattern = format!(
            "{}{}{}{}{}{}",
            ".".repeat(4),
            "#".repeat(3),
            ".".repeat(13),
            "#".repeat(50),
            ".".repeat(25),
            "#".repeat(50)
        ) + &".".repeat(50);
        let mut t = Tally::default();
        judge(&mut t, &frames(&pattern), cfg, 400);
        assert_eq!(t.cut, 1, "the 500 ms pause ended the turn mid-question");
        assert_eq!(t.onset, vec![120.0], "6 voiced frames of 10 start a turn");
        assert_eq!(t.barge_in, vec![600.0]);
        assert_eq!(t.end_lag, vec![0.0]);
        assert_eq!((t.missed, t.unended, t.false_starts), (0, 0, 0));
        assert_eq!(t.quiet_voiced, 3, "the click before the speech");
    }

    #[test]
    fn voice_that_never_stops_leaves_the_turn_open_and_is_counted() {
        let cfg = EndpointConfig::default();
        let pattern = ".".repeat(20) + &"#".repeat(100);
        let mut t = Tally::default();
        judge(&mut t, &frames(&pattern), cfg, 400);
        assert_eq!((t.cut, t.unended), (0, 1));
        // The speech "ends" 1 s before the end of the file: voice went on 1 s past it.
        assert_eq!(t.end_lag, vec![1000.0]);
        assert_eq!(t.quiet_voiced, 35, "from 0.3 s after the last word on");
    }
}
