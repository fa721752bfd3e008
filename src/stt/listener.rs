//! Listening to one caller: cuts the decoded audio stream into 20 ms frames and runs
//! each through the voice detector and the endpointer.

use super::endpoint::{Endpoint, EndpointConfig, Endpointer};
use super::vad::{VoiceDetector, FRAME};

pub struct Listener {
    vad: VoiceDetector,
    endpointer: Endpointer,
    partial: Vec<i16>,
}

impl Listener {
    pub fn new(cfg: EndpointConfig) -> Self {
        Listener {
            vad: VoiceDetector::new(),
            endpointer: Endpointer::new(cfg),
            partial: Vec::new(),
        }
    }

    /// Feeds 8 kHz audio of any length; returns what the endpointer saw.
    pub fn push(&mut self, pcm: &[i16]) -> Vec<Endpoint> {
        self.partial.extend_from_slice(pcm);
        let whole = self.partial.len() / FRAME * FRAME;
        let frames: Vec<i16> = self.partial.drain(..whole).collect();
        frames
            .chunks_exact(FRAME)
            .filter_map(|f| {
                let voiced = self.vad.is_voice(f);
                self.endpointer.push(f, voiced)
            })
            .collect()
    }

    /// Audio time heard so far (the endpointer's clock).
    pub fn now_ms(&self) -> u64 {
        self.endpointer.now_ms()
    }

    pub fn in_speech(&self) -> bool {
        self.endpointer.in_speech()
    }

    pub fn reset(&mut self) {
        self.endpointer.reset();
        self.partial.clear();
    }
}
