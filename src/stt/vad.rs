//! Frame-level voice activity on a line's audio (WebRTC's VAD, via `webrtc-vad`): 8 kHz
//! on the phone, 16 kHz from the web page.
//!
//! Every frame goes through it: it classifies a 20 ms frame as it arrives, for about a
//! microsecond, and lets go right after the last word. Silero is asked only in the
//! pauses of an open turn, where WebRTC's loses words in line noise (`voices`).

pub use webrtc_vad::VadMode;
use webrtc_vad::{SampleRate, Vad};

/// 20 ms at 8 kHz.
pub const FRAME: usize = 160;
/// About −54 dBFS: quieter than any speech on a phone line, louder than its hiss.
const MIN_SPEECH_LEVEL: f32 = 0.002;

pub struct VoiceDetector {
    vad: Vad,
    /// Samples in 20 ms at the detector's rate.
    frame: usize,
}

// SAFETY: `Vad` owns a heap-allocated fvad instance with no thread affinity; it is only
// !Send because it holds a raw pointer. We never share it (no Sync), only move it.
unsafe impl Send for VoiceDetector {}

impl VoiceDetector {
    /// For audio at `rate`: 16 kHz, else 8 kHz.
    pub fn new(rate: u32) -> Self {
        Self::with_mode(rate, VadMode::Aggressive)
    }

    /// With another of WebRTC's modes (`bench vad` compares them).
    pub fn with_mode(rate: u32, mode: VadMode) -> Self {
        let (rate, frame) = match rate {
            16_000 => (SampleRate::Rate16kHz, 2 * FRAME),
            _ => (SampleRate::Rate8kHz, FRAME),
        };
        VoiceDetector {
            vad: Vad::new_with_rate_and_mode(rate, mode),
            frame,
        }
    }

    /// Samples in a 20 ms frame.
    pub fn frame(&self) -> usize {
        self.frame
    }

    /// Whether a 20 ms frame holds voice; a frame of the wrong size counts as silence.
    ///
    /// The WebRTC VAD adapts its noise model and, after speech, can call steady line
    /// hiss "voice" indefinitely (seen on our fixtures), which would stop a turn from
    /// ever ending. A level floor below any speech keeps quiet noise out.
    pub fn is_voice(&mut self, frame: &[i16]) -> bool {
        frame.len() == self.frame
            && self.vad.is_voice_segment(frame).unwrap_or(false)
            && audible(frame)
    }
}

/// Whether `frame` is loud enough to be speech at all (a muted echo, a line's hiss is not).
pub fn audible(frame: &[i16]) -> bool {
    crate::audio::wav::level(frame) > MIN_SPEECH_LEVEL
}

impl Default for VoiceDetector {
    fn default() -> Self {
        Self::new(8_000)
    }
}
