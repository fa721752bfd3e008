//! Listening to one caller: cuts the decoded audio stream (at the line's rate: 8 kHz on
//! the phone, 16 kHz from the web) into 20 ms frames and runs each through the voice
//! detector and the endpointer, whose utterances keep that rate.

use super::endpoint::{Endpoint, EndpointConfig, Endpointer};
use super::vad::VoiceDetector;

pub struct Listener {
    vad: VoiceDetector,
    endpointer: Endpointer,
    partial: Vec<i16>,
}

impl Listener {
    pub fn new(cfg: EndpointConfig, rate: u32) -> Self {
        Listener {
            vad: VoiceDetector::new(rate),
            endpointer: Endpointer::new(cfg),
            partial: Vec::new(),
        }
    }

    /// Feeds audio of any length; returns what the endpointer saw.
    pub fn push(&mut self, pcm: &[i16]) -> Vec<Endpoint> {
        self.partial.extend_from_slice(pcm);
        let frame = self.vad.frame();
        let whole = self.partial.len() / frame * frame;
        let frames: Vec<i16> = self.partial.drain(..whole).collect();
        frames
            .chunks_exact(frame)
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

    /// The line closed: the utterance in progress ends (`Endpointer::finish`).
    pub fn finish(&mut self) -> Option<Endpoint> {
        self.endpointer.finish()
    }

    pub fn reset(&mut self) {
        self.endpointer.reset();
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A web caller's 16 kHz audio is heard like a phone caller's 8 kHz: the same
    /// utterance, at twice the samples.
    #[test]
    fn wideband_audio_is_endpointed_like_narrowband_and_keeps_its_rate() {
        let wav = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("audio-fixtures/questions/en-passport.wav");
        let heard = |rate: u32| {
            let mut pcm = vec![0i16; rate as usize];
            pcm.extend(crate::audio::wav::read_at(&wav, rate).unwrap());
            pcm.extend(vec![0i16; rate as usize]);
            let mut listener = Listener::new(EndpointConfig::default(), rate);
            let utterances: Vec<(usize, u64, u64)> = pcm
                .chunks(rate as usize / 100)
                .flat_map(|c| listener.push(c))
                .filter_map(|e| match e {
                    Endpoint::Utterance {
                        audio,
                        start_ms,
                        end_ms,
                        ..
                    } => Some((audio.len(), start_ms, end_ms)),
                    _ => None,
                })
                .collect();
            utterances
        };
        let (narrow, wide) = (heard(8_000), heard(16_000));
        assert!(!narrow.is_empty(), "no utterance at 8 kHz");
        assert_eq!(narrow.len(), wide.len(), "{narrow:?} vs {wide:?}");
        for ((n_len, n_start, n_end), (w_len, w_start, w_end)) in narrow.iter().zip(&wide) {
            assert!(n_start.abs_diff(*w_start) <= 60 && n_end.abs_diff(*w_end) <= 60);
            let ms = |len: usize, rate: usize| len * 1000 / rate;
            assert!(ms(*w_len, 16_000).abs_diff(ms(*n_len, 8_000)) <= 100);
        }
    }
}
