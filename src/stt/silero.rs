//! Silero VAD 6.2 (`silero_vad.onnx` from the PyPI `silero-vad` wheel, `models/fetch.sh
//! vad`) run window by window on a line's audio, at its own rate: 32 ms windows (256
//! samples at 8 kHz, 512 at 16 kHz) after the last 4 ms of the one before, and an LSTM
//! state carried from window to window, as the wheel's own `OnnxWrapper` runs it.
//!
//! Slower than WebRTC's VAD (~0.1 ms a window) and slow to let go after the last word
//! (it hears voice 100-200 ms past it), but it keeps hearing speech in line noise that
//! WebRTC's VAD calls silence: `bench vad`, and `voices` for how calls use it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use ort::session::Session;
use ort::value::Tensor;

use crate::onnx::OnnxError;

/// The LSTM state: 2 × batch 1 × 128.
const STATE: usize = 2 * 128;

/// The model, shared by every call (one window at a time, on one thread).
#[derive(Clone)]
pub struct SileroModel {
    session: Arc<Mutex<Session>>,
}

impl SileroModel {
    pub fn load(runtime: &Path, model: &Path) -> Result<SileroModel, OnnxError> {
        let session = crate::onnx::session(runtime, model, 1)?;
        Ok(SileroModel {
            session: Arc::new(Mutex::new(session)),
        })
    }

    /// A stream for one line's audio at `rate` (16 kHz, else 8 kHz).
    pub fn stream(&self, rate: u32) -> SileroStream {
        let rate = if rate == 16_000 { 16_000 } else { 8_000 };
        let window = rate as usize / 1000 * 32;
        let context = rate as usize / 1000 * 4;
        SileroStream {
            model: self.clone(),
            rate: i64::from(rate),
            window,
            context,
            samples: vec![0.0; context],
            state: vec![0.0; STATE],
            probability: 0.0,
        }
    }
}

/// One line's audio through the model.
pub struct SileroStream {
    model: SileroModel,
    rate: i64,
    window: usize,
    context: usize,
    /// The previous window's last `context` samples, then what is not yet a window.
    samples: Vec<f32>,
    state: Vec<f32>,
    probability: f32,
}

impl SileroStream {
    /// Forgets what it heard: the next window starts from silence.
    pub fn reset(&mut self) {
        self.samples = vec![0.0; self.context];
        self.state = vec![0.0; STATE];
        self.probability = 0.0;
    }

    /// Feeds audio of any length; returns the speech probability of the last whole
    /// window heard (0 before the first).
    pub fn push(&mut self, pcm: &[i16]) -> Result<f32, String> {
        self.samples
            .extend(pcm.iter().map(|&s| f32::from(s) / 32768.0));
        while self.samples.len() >= self.context + self.window {
            let input: Vec<f32> = self.samples[..self.context + self.window].to_vec();
            self.samples.drain(..self.window);
            self.probability = self.run(input)?;
        }
        Ok(self.probability)
    }

    fn run(&mut self, input: Vec<f32>) -> Result<f32, String> {
        let err = |e: ort::Error| format!("silero: {e}");
        let len = input.len();
        let input = Tensor::from_array(([1usize, len], input)).map_err(err)?;
        let state = Tensor::from_array(([2usize, 1, 128], self.state.clone())).map_err(err)?;
        let sr = Tensor::from_array(((), vec![self.rate])).map_err(err)?;
        let mut session = self.model.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session
            .run(ort::inputs!["input" => input, "state" => state, "sr" => sr])
            .map_err(err)?;
        let (_, p) = outputs["output"].try_extract_tensor::<f32>().map_err(err)?;
        let p = p.first().copied().ok_or("silero: no output")?;
        let (_, state) = outputs["stateN"].try_extract_tensor::<f32>().map_err(err)?;
        if state.len() != STATE {
            return Err(format!("silero: state of {} values", state.len()));
        }
        self.state.copy_from_slice(state);
        Ok(p)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The probability at which a window counts as speech (the wheel's default).
    const THRESHOLD: f32 = 0.5;

    /// The model `models/fetch.sh vad onnxruntime` put in the cache (setup runs it).
    pub(crate) fn model() -> SileroModel {
        let stt = crate::config::SttConfig::default();
        SileroModel::load(&stt.onnxruntime_path(), &stt.vad_model_path())
            .unwrap_or_else(|e| panic!("{e} (models/fetch.sh vad onnxruntime)"))
    }

    /// A committed question, at `rate`, with a second of silence either side.
    fn question(rate: u32) -> Vec<i16> {
        let wav =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/questions/en-passport.wav");
        let mut pcm = vec![0i16; rate as usize];
        pcm.extend(crate::audio::wav::read_at(&wav, rate).unwrap());
        pcm.extend(vec![0i16; rate as usize]);
        pcm
    }

    /// Speech is heard as speech and silence as silence at both of a line's rates,
    /// fed in 20 ms frames as a call feeds it.
    #[test]
    fn hears_speech_and_not_silence_at_8_and_16_khz() {
        let model = model();
        for rate in [8_000, 16_000] {
            let mut stream = model.stream(rate);
            let frame = rate as usize / 50;
            let probs: Vec<f32> = question(rate)
                .chunks_exact(frame)
                .map(|f| stream.push(f).unwrap())
                .collect();
            let speech = &probs[55..probs.len() - 55];
            let voiced = speech.iter().filter(|&&p| p >= THRESHOLD).count();
            assert!(
                voiced * 2 > speech.len(),
                "{rate} Hz: {voiced} of {} speech frames",
                speech.len()
            );
            let silence = probs[..45].iter().chain(&probs[probs.len() - 30..]);
            assert!(
                silence.clone().all(|&p| p < THRESHOLD),
                "{rate} Hz: {probs:?}"
            );
        }
    }
}
