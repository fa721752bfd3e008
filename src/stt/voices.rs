//! Whether each 20 ms frame of a caller's audio holds voice: WebRTC's VAD on every
//! frame, and Silero's second opinion in the pauses of an open turn.
//!
//! With line noise WebRTC's VAD hears silence for 400 ms inside one question in five,
//! and the turn ends before the caller's last word. Silero hears those words, but also
//! hears voice 100-200 ms past the last one, which would slow every turn's end. Asked
//! only once a pause has lasted, it catches the one without the other (`bench vad`).
//! A turn starts only on voice both hear: on a noisy line (15 dB SNR with hum) WebRTC's
//! VAD took the line's own noise for voice for seconds after the bot's talk (never
//! after the caller's), and that noise became a turn of its own, answered over the
//! caller's question. Silero is asked then only about frames WebRTC's VAD calls voice,
//! so the line's quiet time (most of a call: the caller listening) costs it nothing.
//!
//! Nor is it asked in a turn's pauses while the bot talks, and for as long after as its
//! voice can still come back (`echo::MAX_DELAY_MS`): Silero hears voice at any level,
//! so the echo the gate leaves (muted to silence or not yet learnt) would hold a turn
//! open under the bot's audio until it barges in. Speech over the bot (barge-in) is
//! judged by WebRTC's VAD alone, as before Silero.

use std::collections::VecDeque;

use super::silero::SileroStream;
use super::vad::{audible, VoiceDetector};
use crate::audio::echo::MAX_DELAY_MS;

/// Milliseconds in a frame.
const FRAME_MS: u64 = 20;
/// Silero's probability from which a pause holds voice (the wheel's default). `bench
/// vad`, 303 questions with line noise: cut 19 at 0.5 and 12 at 0.3, but at 0.3 its fall
/// after the last word still reaches 200 ms into the pause often enough to end the turn
/// 41 ms later on average (0.5: 10 ms later), and under load (`bench turn --talking 24,32`)
/// the pause's early decode was dropped for that in one turn in twenty (answer p50 +80
/// ms). Only requiring it to be rising (not its fall) ended turns on time, but kept 38 cuts.
pub const SILERO_THRESHOLD: f32 = 0.5;
/// The line's audio Silero hears first when a turn opens (the onset and what was
/// before it), so that it does not judge the turn's first pause cold.
const WARM_MS: usize = 500;

pub struct Voices {
    webrtc: VoiceDetector,
    silero: Option<InPauses>,
    /// Audio time since the bot's audio last played.
    bot_quiet_ms: u64,
}

struct InPauses {
    stream: SileroStream,
    rule: PauseRule,
    /// The last `WARM_MS` of samples before the turn opened.
    recent: VecDeque<i16>,
    /// Silero has heard the open turn from its start.
    warm: bool,
}

impl Voices {
    /// WebRTC's VAD alone, for audio at `rate` (16 kHz, else 8 kHz).
    pub fn new(rate: u32) -> Self {
        Voices {
            webrtc: VoiceDetector::new(rate),
            silero: None,
            bot_quiet_ms: MAX_DELAY_MS,
        }
    }

    /// Whether the bot's audio is playing to the caller now.
    pub fn bot_talking(&mut self, talking: bool) {
        if talking {
            self.bot_quiet_ms = 0;
        }
    }

    /// Silero's voice taken too in a pause of an open turn, as `rule` says.
    pub fn with_silero(mut self, stream: SileroStream, rule: PauseRule) -> Self {
        self.silero = Some(InPauses {
            stream,
            rule,
            recent: VecDeque::new(),
            warm: false,
        });
        self
    }

    /// Samples in a 20 ms frame.
    pub fn frame(&self) -> usize {
        self.webrtc.frame()
    }

    /// Whether `frame` holds voice; `in_turn`: the caller's turn is open (the
    /// endpointer is in speech).
    pub fn voiced(&mut self, frame: &[i16], in_turn: bool) -> bool {
        let webrtc = self.webrtc.is_voice(frame);
        let echo_due = self.bot_quiet_ms < MAX_DELAY_MS;
        let bot_talking_now = self.bot_quiet_ms == 0;
        self.bot_quiet_ms = self.bot_quiet_ms.saturating_add(FRAME_MS);
        let Some(s) = &mut self.silero else {
            return webrtc;
        };
        if !in_turn || echo_due {
            // A turn starts on voice to Silero too: on a noisy line WebRTC's VAD took
            // the line's own noise for voice after the bot's talk (and not after the
            // caller's), for seconds, and that noise became a turn.
            let voiced = if !in_turn && !bot_talking_now && webrtc {
                match s.hear(frame) {
                    Ok(p) => p >= SILERO_THRESHOLD,
                    Err(_) => webrtc,
                }
            } else {
                s.warm = false;
                webrtc
            };
            // 50 frames a second per call: a ring of samples, not a buffer per frame.
            let keep = WARM_MS / FRAME_MS as usize * frame.len();
            s.recent.extend(frame);
            let over = s.recent.len().saturating_sub(keep);
            s.recent.drain(..over);
            return voiced;
        }
        match s.hear(frame) {
            Ok(p) => s.rule.voiced(webrtc, if audible(frame) { p } else { 0.0 }),
            Err(e) => {
                // WebRTC's VAD alone is what calls had before: worse in noise, not broken.
                tracing::warn!(error = %e, "silero VAD failed; this call goes on with WebRTC's alone");
                self.silero = None;
                webrtc
            }
        }
    }
}

impl InPauses {
    /// Silero's probability for a frame of the open turn.
    fn hear(&mut self, frame: &[i16]) -> Result<f32, String> {
        if !self.warm {
            self.stream.reset();
            let (a, b) = self.recent.as_slices();
            self.stream.push(a)?;
            self.stream.push(b)?;
            self.recent.clear();
            self.rule = self.rule.restart();
            self.warm = true;
        }
        self.stream.push(frame)
    }
}

/// WebRTC's verdict on each frame, with Silero's voice (its probability at `threshold`
/// or more) taken too once a pause has lasted `after_ms`.
#[derive(Debug, Clone, Copy)]
pub struct PauseRule {
    after_ms: u64,
    threshold: f32,
    pause_ms: u64,
}

impl PauseRule {
    pub fn new(after_ms: u64, threshold: f32) -> Self {
        PauseRule {
            after_ms,
            threshold,
            pause_ms: 0,
        }
    }

    /// As calls hear: at `SILERO_THRESHOLD`.
    pub fn calls(after_ms: u64) -> Self {
        Self::new(after_ms, SILERO_THRESHOLD)
    }

    /// The same rule for a new turn.
    pub fn restart(self) -> Self {
        Self::new(self.after_ms, self.threshold)
    }

    /// The frame's verdict from WebRTC's and Silero's probability `p`.
    pub fn voiced(&mut self, webrtc: bool, p: f32) -> bool {
        let silero = p >= self.threshold;
        let voiced = webrtc || (silero && self.pause_ms >= self.after_ms);
        self.pause_ms = if voiced { 0 } else { self.pause_ms + FRAME_MS };
        voiced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stt::silero::tests::model;

    /// A turn open over a noisy Danish question (`make.sh`): Silero hears words in it
    /// that WebRTC's VAD loses, but not while the bot talks, nor for as long after as
    /// its echo may come back.
    #[test]
    fn silero_is_not_heard_while_the_bots_voice_may_come_back() {
        let wav = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("audio-fixtures/understand/committed/da-154.noise.wav");
        let audio = crate::audio::wav::read_at(&wav, 8_000).unwrap();
        let frames: Vec<&[i16]> = audio.chunks_exact(160).collect();
        let mut webrtc = VoiceDetector::new(8_000);
        let alone: Vec<bool> = frames.iter().map(|f| webrtc.is_voice(f)).collect();
        // The bot's audio plays for the first `talking` frames.
        let heard = |talking: usize| -> Vec<bool> {
            let mut voices =
                Voices::new(8_000).with_silero(model().stream(8_000), PauseRule::calls(200));
            let mut out = Vec::new();
            for (i, f) in frames.iter().enumerate() {
                voices.bot_talking(i < talking);
                out.push(voices.voiced(f, true));
            }
            out
        };
        assert_ne!(heard(0), alone, "Silero hears what WebRTC's VAD does not");
        assert_eq!(heard(frames.len()), alone);
        let tail = frames.len() / 2 + MAX_DELAY_MS as usize / 20;
        let after = heard(frames.len() / 2);
        assert_eq!(after[..tail], alone[..tail]);
    }

    #[test]
    fn silero_counts_only_once_a_pause_has_lasted() {
        let verdicts = |webrtc: &str, silero: &str| -> String {
            let mut rule = PauseRule::new(60, 0.5);
            webrtc
                .chars()
                .zip(silero.chars())
                .map(|(w, s)| {
                    if rule.voiced(w == '#', if s == '#' { 0.9 } else { 0.1 }) {
                        '#'
                    } else {
                        '.'
                    }
                })
                .collect()
        };
        assert_eq!(
            verdicts("##.........##", "####..##....."),
            "##....#....##",
            "its tail right after the voice is not heard; voice later in the pause is"
        );
    }
}
