//! The endpointer: decides when a caller started and stopped talking. Sans-IO: it is
//! fed 20 ms frames with a voiced/unvoiced verdict, and its clock is the audio itself
//! (frame count), so tests run on fixtures far faster than real time.
//!
//! Speech starts when most of the last 200 ms was voiced (a click is not a word);
//! it ends after `trailing_silence_ms` of unvoiced frames, or at `max_utterance_ms`.
//! The utterance handed on includes a little audio before the onset, because the
//! VAD is late on soft consonants. A short pause (`pause_ms`) inside speech is reported
//! too, with the audio so far, so recognition can start before the turn is known to be
//! over.

use std::collections::VecDeque;

const FRAME_MS: u32 = 20;
/// Frames in the onset window, and how many of them must be voiced.
const ONSET_WINDOW: usize = 10;
const ONSET_VOICED: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointConfig {
    pub trailing_silence_ms: u32,
    pub max_utterance_ms: u32,
    /// Shorter utterances are reported as noise (coughs, clicks), not as speech.
    pub min_utterance_ms: u32,
    pub preroll_ms: u32,
    pub confirm_ms: u32,
    /// Silence after which a pause is reported (0: never); shorter than the trailing
    /// silence that ends the utterance.
    pub pause_ms: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            trailing_silence_ms: 400,
            max_utterance_ms: 15_000,
            min_utterance_ms: 300,
            preroll_ms: 300,
            confirm_ms: 300,
            pause_ms: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    Silence,
    MaxLength,
    /// The caller hung up while speaking.
    LineClosed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The caller started talking; `at_ms` is where the onset window began.
    SpeechStart { at_ms: u64 },
    /// A finished utterance (at the line's rate), from before the onset to the end of speech.
    Utterance {
        audio: Vec<i16>,
        start_ms: u64,
        end_ms: u64,
        reason: EndReason,
    },
    /// The speech has lasted `confirm_ms`: long enough not to be a cough (barge-in).
    SpeechConfirmed { at_ms: u64 },
    /// The caller paused for `pause_ms`: the audio so far, which is the utterance if
    /// no more speech comes before the trailing silence ends it.
    Pause { audio: Vec<i16>, end_ms: u64 },
    /// Speech again after a reported pause: the audio of that pause is not the whole turn.
    Resumed { at_ms: u64 },
    /// Voice too short to be a word.
    Noise { start_ms: u64, end_ms: u64 },
}

impl Endpoint {
    /// The event without its audio, for a log line.
    pub fn brief(&self) -> String {
        match self {
            Endpoint::Utterance {
                audio,
                start_ms,
                end_ms,
                reason,
            } => format!(
                "Utterance {start_ms}-{end_ms} ms ({} samples, {reason:?})",
                audio.len()
            ),
            Endpoint::Pause { audio, end_ms } => {
                format!("Pause at {end_ms} ms ({} samples)", audio.len())
            }
            other => format!("{other:?}"),
        }
    }
}

pub struct Endpointer {
    cfg: EndpointConfig,
    frames_seen: u64,
    /// Recent frames (audio, voiced) kept for the pre-roll and the onset window.
    recent: VecDeque<(Vec<i16>, bool)>,
    speech: Option<Speech>,
}

struct Speech {
    confirmed: bool,
    /// A pause was reported and no speech has come since.
    paused: bool,
    start_frame: u64,
    last_voiced_frame: u64,
    audio: Vec<i16>,
}

impl Endpointer {
    pub fn new(cfg: EndpointConfig) -> Self {
        Endpointer {
            cfg,
            frames_seen: 0,
            recent: VecDeque::new(),
            speech: None,
        }
    }

    pub fn in_speech(&self) -> bool {
        self.speech.is_some()
    }

    /// Audio time of the end of the last frame pushed.
    pub fn now_ms(&self) -> u64 {
        Self::ms(self.frames_seen)
    }

    /// Drops any utterance in progress (e.g. the caller pressed a key instead).
    pub fn reset(&mut self) {
        self.speech = None;
        self.recent.clear();
    }

    fn ms(frames: u64) -> u64 {
        frames * FRAME_MS as u64
    }

    /// The line closed (the caller hung up): the utterance in progress, if any, ends
    /// here, as one or as noise.
    pub fn finish(&mut self) -> Option<Endpoint> {
        self.close(EndReason::LineClosed)
    }

    fn close(&mut self, reason: EndReason) -> Option<Endpoint> {
        let speech = self.speech.take()?;
        self.recent.clear();
        let start_ms = Self::ms(speech.start_frame);
        let end_ms = Self::ms(speech.last_voiced_frame + 1);
        if end_ms - start_ms < self.cfg.min_utterance_ms as u64 && reason != EndReason::MaxLength {
            return Some(Endpoint::Noise { start_ms, end_ms });
        }
        Some(Endpoint::Utterance {
            audio: speech.audio,
            start_ms,
            end_ms,
            reason,
        })
    }

    /// Feeds one 20 ms frame (at any rate: the audio is only carried) and its voice verdict.
    pub fn push(&mut self, frame: &[i16], voiced: bool) -> Option<Endpoint> {
        let index = self.frames_seen;
        self.frames_seen += 1;
        let keep = (self.cfg.preroll_ms / FRAME_MS) as usize + ONSET_WINDOW;
        self.recent.push_back((frame.to_vec(), voiced));
        while self.recent.len() > keep {
            self.recent.pop_front();
        }

        if let Some(speech) = &mut self.speech {
            speech.audio.extend_from_slice(frame);
            if voiced {
                speech.last_voiced_frame = index;
                if speech.paused {
                    speech.paused = false;
                    return Some(Endpoint::Resumed {
                        at_ms: Self::ms(index),
                    });
                }
            }
            let silent_ms = Self::ms(index - speech.last_voiced_frame);
            let length_ms = Self::ms(index + 1 - speech.start_frame);
            let reason = if silent_ms >= self.cfg.trailing_silence_ms as u64 {
                EndReason::Silence
            } else if length_ms >= self.cfg.max_utterance_ms as u64 {
                EndReason::MaxLength
            } else if !speech.confirmed && voiced && length_ms >= self.cfg.confirm_ms as u64 {
                speech.confirmed = true;
                return Some(Endpoint::SpeechConfirmed {
                    at_ms: Self::ms(index + 1),
                });
            } else if self.cfg.pause_ms > 0 && silent_ms == self.cfg.pause_ms as u64 {
                let end_ms = Self::ms(speech.last_voiced_frame + 1);
                let spoken_ms = end_ms - Self::ms(speech.start_frame);
                speech.paused = spoken_ms >= self.cfg.min_utterance_ms as u64;
                return speech.paused.then(|| Endpoint::Pause {
                    audio: speech.audio.clone(),
                    end_ms,
                });
            } else {
                return None;
            };
            return self.close(reason);
        }

        let window = self.recent.iter().rev().take(ONSET_WINDOW);
        if window.filter(|(_, v)| *v).count() < ONSET_VOICED {
            return None;
        }
        // Onset: the first voiced frame in the window starts the speech.
        let window_len = self.recent.len().min(ONSET_WINDOW);
        let first_in_window = self.recent.len() - window_len;
        let first_voiced = (first_in_window..self.recent.len())
            .find(|&i| self.recent[i].1)
            .unwrap_or(first_in_window);
        let start_frame = index + 1 - (self.recent.len() - first_voiced) as u64;
        let preroll = (self.cfg.preroll_ms / FRAME_MS) as usize;
        let from = first_voiced.saturating_sub(preroll);
        let audio: Vec<i16> = self
            .recent
            .iter()
            .skip(from)
            .flat_map(|(f, _)| f.iter().copied())
            .collect();
        self.speech = Some(Speech {
            confirmed: false,
            paused: false,
            start_frame,
            last_voiced_frame: index,
            audio,
        });
        Some(Endpoint::SpeechStart {
            at_ms: Self::ms(start_frame),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stt::vad::{VoiceDetector, FRAME};

    fn run(ep: &mut Endpointer, pattern: &str) -> Vec<Endpoint> {
        // One character per 20 ms frame: '#' voiced, '.' silent.
        pattern
            .chars()
            .filter_map(|c| {
                let v = c == '#';
                let frame = vec![if v { 1000 } else { 0 }; FRAME];
                ep.push(&frame, v)
            })
            .collect()
    }

    fn summary(events: &[Endpoint]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Endpoint::SpeechStart { at_ms } => format!("start@{at_ms}"),
                Endpoint::Utterance {
                    start_ms,
                    end_ms,
                    reason,
                    ..
                } => format!("utt {start_ms}-{end_ms} {reason:?}"),
                Endpoint::Noise { start_ms, end_ms } => format!("noise {start_ms}-{end_ms}"),
                Endpoint::SpeechConfirmed { at_ms } => format!("confirmed@{at_ms}"),
                Endpoint::Pause { end_ms, audio } => format!("pause@{end_ms} {}", audio.len()),
                Endpoint::Resumed { at_ms } => format!("resumed@{at_ms}"),
            })
            .collect()
    }

    #[test]
    fn speech_then_silence_is_one_utterance() {
        let mut ep = Endpointer::new(EndpointConfig::default());
        let ev = run(
            &mut ep,
            &format!("{}{}{}", ".".repeat(20), "#".repeat(50), ".".repeat(30)),
        );
        assert_eq!(
            summary(&ev),
            vec!["start@400", "confirmed@700", "utt 400-1400 Silence"]
        );
    }

    #[test]
    fn a_caller_who_hangs_up_mid_sentence_ends_the_utterance_there() {
        let mut ep = Endpointer::new(EndpointConfig::default());
        let ev = run(&mut ep, &format!("{}{}", ".".repeat(20), "#".repeat(50)));
        assert_eq!(summary(&ev), vec!["start@400", "confirmed@700"]);
        let last = ep.finish().into_iter().collect::<Vec<_>>();
        assert_eq!(summary(&last), vec!["utt 400-1400 LineClosed"]);
        assert!(ep.finish().is_none(), "ended once");
        // A cough as the line closes is no utterance; silence has none to end.
        run(&mut ep, &format!("{}{}", ".".repeat(20), "#".repeat(10)));
        assert_eq!(
            summary(&ep.finish().into_iter().collect::<Vec<_>>()),
            vec!["noise 1800-2000"]
        );
        run(&mut ep, &".".repeat(30));
        assert!(ep.finish().is_none());
    }

    #[test]
    fn a_short_pause_does_not_end_the_utterance() {
        let mut ep = Endpointer::new(EndpointConfig::default());
        let pattern = format!(
            "{}{}{}{}",
            "#".repeat(30),
            ".".repeat(15),
            "#".repeat(30),
            ".".repeat(25)
        );
        let ev = run(&mut ep, &pattern);
        assert_eq!(
            summary(&ev),
            vec!["start@0", "confirmed@300", "utt 0-1500 Silence"]
        );
    }

    #[test]
    fn each_short_pause_is_reported_with_the_audio_so_far() {
        let mut ep = Endpointer::new(EndpointConfig {
            pause_ms: 200,
            ..Default::default()
        });
        // 600 ms speech, 300 ms pause, 400 ms speech, then silence.
        let pattern = format!(
            "{}{}{}{}",
            "#".repeat(30),
            ".".repeat(15),
            "#".repeat(20),
            ".".repeat(25)
        );
        let ev = run(&mut ep, &pattern);
        // The audio of a pause runs to the frame where it was seen (600 + 200 ms).
        assert_eq!(
            summary(&ev),
            vec![
                "start@0",
                "confirmed@300",
                &format!("pause@600 {}", 40 * FRAME),
                "resumed@900",
                &format!("pause@1300 {}", 75 * FRAME),
                "utt 0-1300 Silence"
            ]
        );
        assert_eq!(ep.now_ms(), 90 * 20);
    }

    #[test]
    fn a_pause_after_a_cough_is_not_reported() {
        let mut ep = Endpointer::new(EndpointConfig {
            pause_ms: 200,
            ..Default::default()
        });
        let ev = run(&mut ep, &format!("{}{}", "#".repeat(10), ".".repeat(25)));
        assert_eq!(summary(&ev), vec!["start@0", "noise 0-200"]);
    }

    #[test]
    fn the_end_comes_after_the_configured_trailing_silence() {
        for trailing in [200u32, 400, 800] {
            let cfg = EndpointConfig {
                trailing_silence_ms: trailing,
                ..Default::default()
            };
            let mut ep = Endpointer::new(cfg);
            let mut frames_after_speech = None;
            for i in 0..200 {
                let v = i < 40;
                if let Some(Endpoint::Utterance { .. }) = ep.push(&[0; FRAME], v) {
                    frames_after_speech = Some(i + 1 - 40);
                    break;
                }
            }
            assert_eq!(
                frames_after_speech,
                Some(trailing as usize / 20),
                "trailing {trailing}"
            );
        }
    }

    #[test]
    fn clicks_and_coughs_are_noise() {
        let mut ep = Endpointer::new(EndpointConfig::default());
        // A lone voiced frame never starts speech.
        assert!(run(&mut ep, "....#....#.....#....").is_empty());
        // 200 ms of voice starts speech but is too short to be an utterance, or a barge-in.
        let mut ep = Endpointer::new(EndpointConfig::default());
        let ev = run(
            &mut ep,
            &format!("{}{}{}", ".".repeat(20), "#".repeat(10), ".".repeat(30)),
        );
        assert_eq!(summary(&ev), vec!["start@400", "noise 400-600"]);
    }

    #[test]
    fn long_speech_is_cut_at_the_maximum() {
        let cfg = EndpointConfig {
            max_utterance_ms: 2000,
            ..Default::default()
        };
        let mut ep = Endpointer::new(cfg);
        let ev = run(&mut ep, &"#".repeat(150));
        assert_eq!(
            summary(&ev)[..3],
            ["start@0", "confirmed@300", "utt 0-2000 MaxLength"]
        );
    }

    #[test]
    fn the_utterance_keeps_audio_from_before_the_onset() {
        let mut ep = Endpointer::new(EndpointConfig::default());
        let ev = run(
            &mut ep,
            &format!("{}{}{}", ".".repeat(40), "#".repeat(25), ".".repeat(25)),
        );
        let Some(Endpoint::Utterance { audio, .. }) = ev.last() else {
            panic!("{ev:?}")
        };
        // 300 ms pre-roll + 500 ms speech + 400 ms trailing silence.
        assert_eq!(audio.len(), (15 + 25 + 20) * FRAME);
    }

    #[test]
    fn finds_the_spoken_region_in_a_fixture_with_noise_around_it() {
        // Greeting fixture, with 1 s of low hiss before and 1 s after.
        let speech = crate::audio::wav::read_at(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("audio-fixtures/greeting-da.wav"),
            8000,
        )
        .unwrap();
        let mut seed = 7u32;
        let mut hiss = |n: usize| -> Vec<i16> {
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    ((seed >> 16) as i16 % 60) - 30
                })
                .collect()
        };
        let mut audio = hiss(8000);
        audio.extend(&speech);
        audio.extend(hiss(8000));
        let mut vad = VoiceDetector::new(8_000);
        let mut ep = Endpointer::new(EndpointConfig {
            max_utterance_ms: 30_000,
            trailing_silence_ms: 700,
            ..Default::default()
        });
        let events: Vec<Endpoint> = audio
            .chunks_exact(FRAME)
            .filter_map(|f| ep.push(f, vad.is_voice(f)))
            .collect();
        let utterances: Vec<(u64, u64)> = events
            .iter()
            .filter_map(|e| match e {
                Endpoint::Utterance {
                    start_ms, end_ms, ..
                } => Some((*start_ms, *end_ms)),
                _ => None,
            })
            .collect();
        assert!(!utterances.is_empty(), "{events:?}");
        let (first, last) = (utterances[0].0, utterances.last().unwrap().1);
        // Speech occupies 1.0 s .. 1.0 s + greeting length (8.5 s) in this audio.
        assert!((900..1400).contains(&first), "speech found from {first} ms");
        assert!((8800..9700).contains(&last), "speech found until {last} ms");
    }
}
