//! Listening to one caller: cuts the decoded audio stream (at the line's rate: 8 kHz on
//! the phone, 16 kHz from the web) into 20 ms frames and runs each through the VADs
//! (`voices`) and the endpointer, whose utterances keep that rate.

use super::endpoint::{Endpoint, EndpointConfig, Endpointer};
use super::silero::SileroStream;
use super::voices::{PauseRule, Voices};

pub struct Listener {
    voices: Voices,
    endpointer: Endpointer,
    partial: Vec<i16>,
}

impl Listener {
    pub fn new(cfg: EndpointConfig, rate: u32) -> Self {
        Listener {
            voices: Voices::new(rate),
            endpointer: Endpointer::new(cfg),
            partial: Vec::new(),
        }
    }

    /// Takes Silero's voice too in a pause of a turn, as `rule` says (`Voices`).
    pub fn with_silero(mut self, stream: SileroStream, rule: PauseRule) -> Self {
        self.voices = self.voices.with_silero(stream, rule);
        self
    }

    /// Whether the bot's audio is playing to the caller now (`Voices::bot_talking`).
    pub fn bot_talking(&mut self, talking: bool) {
        self.voices.bot_talking(talking);
    }

    /// Feeds audio of any length; returns what the endpointer saw.
    pub fn push(&mut self, pcm: &[i16]) -> Vec<Endpoint> {
        self.partial.extend_from_slice(pcm);
        let frame = self.voices.frame();
        let whole = self.partial.len() / frame * frame;
        let frames: Vec<i16> = self.partial.drain(..whole).collect();
        let mut out = Vec::new();
        for f in frames.chunks_exact(frame) {
            let voiced = self.voices.voiced(f, self.endpointer.in_speech());
            out.extend(self.endpointer.push(f, voiced));
        }
        out
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

    /// Forgets the utterance in progress, if any (it was not the caller's): the next
    /// voice heard opens a new one.
    pub fn drop_speech(&mut self) {
        self.endpointer.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stt::silero::tests::model;

    /// Utterances a listener makes of `pcm`, fed in 10 ms pieces.
    fn utterances(listener: &mut Listener, pcm: &[i16], rate: u32) -> usize {
        pcm.chunks(rate as usize / 100)
            .flat_map(|c| listener.push(c))
            .filter(|e| matches!(e, Endpoint::Utterance { .. }))
            .count()
    }

    /// A Danish question with line noise (15 dB SNR, `make.sh`), after two seconds of
    /// the line as a call's greeting gives: WebRTC's VAD hears 400 ms of silence inside
    /// it and cuts the turn in two; with Silero heard in its pauses the turn is whole.
    #[test]
    fn silero_in_the_pauses_keeps_a_noisy_question_whole() {
        let wav = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("audio-fixtures/understand/committed/da-154.noise.wav");
        let audio = crate::audio::wav::read_at(&wav, 8_000).unwrap();
        let line = &audio[audio.len() - 5_600..];
        let pcm: Vec<i16> = line.repeat(3).into_iter().chain(audio).collect();
        let cfg = EndpointConfig::default();
        let alone = utterances(&mut Listener::new(cfg, 8_000), &pcm, 8_000);
        let mut both =
            Listener::new(cfg, 8_000).with_silero(model().stream(8_000), PauseRule::calls(200));
        assert_eq!((alone, utterances(&mut both, &pcm, 8_000)), (2, 1));
    }

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
