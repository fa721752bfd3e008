//! Piper neural voices (VITS exported to ONNX): espeak-ng's IPA → the voice's phoneme
//! ids → ONNX Runtime → audio at the voice's rate, streamed sentence by sentence.
//!
//! Each voice owns one inference thread (a session runs one inference at a time, and
//! one thread of inference per voice keeps the second core for whisper): jobs queue,
//! a call's before the warm-up's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::espeak::Espeak;
use super::phonemes::PhonemeIds;
use super::queue::{self, Priority, Speak};
use super::sentences::Rendered;
use super::TtsError;

/// The parts of a voice's `.onnx.json` that synthesis reads.
#[derive(Debug, Deserialize)]
struct VoiceFile {
    audio: AudioInfo,
    espeak: EspeakInfo,
    #[serde(default)]
    inference: Inference,
    #[serde(default)]
    num_speakers: u32,
    phoneme_id_map: HashMap<String, Vec<i64>>,
}

#[derive(Debug, Deserialize)]
struct AudioInfo {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct EspeakInfo {
    voice: String,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct Inference {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

impl Default for Inference {
    fn default() -> Self {
        // piper's own defaults
        Inference {
            noise_scale: 0.667,
            length_scale: 1.0,
            noise_w: 0.8,
        }
    }
}

/// One loaded voice; cloning shares its inference thread.
#[derive(Clone)]
pub struct PiperVoice {
    jobs: std_mpsc::Sender<Speak<()>>,
    pub rate: u32,
}

/// Everything the inference thread owns.
struct Model {
    session: Session,
    ids: PhonemeIds,
    language: String,
    scales: [f32; 3],
    speaker: bool,
    rate: u32,
    espeak: Arc<Espeak>,
}

/// Peak level of each sentence (piper normalises to full scale; a little headroom
/// keeps the 8 kHz resampler from clipping).
const PEAK: f32 = 0.9;

impl PiperVoice {
    /// Loads `model` and its `.onnx.json` and speaks one word, so a voice that cannot
    /// speak fails here, at start, with its file named.
    pub fn load(model: &Path, runtime: &Path, espeak: Arc<Espeak>) -> Result<Self, TtsError> {
        let json = json_path(model);
        let bad = |file: &Path, message: String| TtsError::Voice {
            path: file.into(),
            message,
        };
        let text = std::fs::read_to_string(&json).map_err(|e| bad(&json, e.to_string()))?;
        let file: VoiceFile = serde_json::from_str(&text).map_err(|e| bad(&json, e.to_string()))?;
        let ids = PhonemeIds::new(file.phoneme_id_map).map_err(|e| bad(&json, e))?;
        let session = crate::onnx::session(runtime, model, 1).map_err(|e| match e {
            crate::onnx::OnnxError::Model { path, message } => bad(&path, message),
            runtime => TtsError::Init(runtime.to_string()),
        })?;
        let mut m = Model {
            session,
            ids,
            language: file.espeak.voice,
            scales: [
                file.inference.noise_scale,
                file.inference.length_scale,
                file.inference.noise_w,
            ],
            speaker: file.num_speakers > 1,
            rate: file.audio.sample_rate,
            espeak,
        };
        let probe = m.render("Hello.").map_err(|e| bad(model, e))?;
        if probe.pcm.is_empty() {
            return Err(bad(model, "the voice made no audio for a test word".into()));
        }
        let rate = m.rate;
        let (jobs, rx) = std_mpsc::channel::<Speak<()>>();
        std::thread::Builder::new()
            .name("tts-piper".into())
            .spawn(move || {
                queue::serve(rx, Some, |sentence, ()| match m.render(sentence) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::error!(error = %e, sentence, "piper voice failed");
                        None
                    }
                })
            })
            .map_err(|e| TtsError::Init(e.to_string()))?;
        Ok(PiperVoice { jobs, rate })
    }

    pub fn stream(
        &self,
        text: &str,
        priority: Priority,
    ) -> Result<mpsc::UnboundedReceiver<Vec<i16>>, TtsError> {
        let (out, rx) = mpsc::unbounded_channel();
        self.jobs
            .send(Speak {
                text: text.into(),
                voice: (),
                out,
                priority,
            })
            .map_err(|_| TtsError::Init("piper thread is gone".into()))?;
        Ok(rx)
    }
}

/// `voice.onnx` → `voice.onnx.json`
fn json_path(model: &Path) -> PathBuf {
    let mut name = model.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

impl Model {
    fn render(&mut self, sentence: &str) -> Result<Rendered, String> {
        let ipa = self
            .espeak
            .phonemes(sentence, &self.language)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("espeak has no language {:?}", self.language))?;
        let ids = self.ids.ids(&ipa);
        let n = ids.len();
        let err = |e: ort::Error| e.to_string();
        let input = Tensor::from_array(([1usize, n], ids)).map_err(err)?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(err)?;
        let scales = Tensor::from_array(([3usize], self.scales.to_vec())).map_err(err)?;
        let outputs = if self.speaker {
            let sid = Tensor::from_array(([1usize], vec![0i64])).map_err(err)?;
            self.session.run(ort::inputs![
                "input" => input, "input_lengths" => lengths, "scales" => scales, "sid" => sid
            ])
        } else {
            self.session.run(ort::inputs![
                "input" => input, "input_lengths" => lengths, "scales" => scales
            ])
        }
        .map_err(err)?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        let peak = audio.iter().fold(0f32, |m, s| m.max(s.abs()));
        let gain = if peak > 1e-6 { PEAK / peak } else { 0.0 };
        Ok(Rendered {
            pcm: audio.iter().map(|s| s * gain).collect(),
            rate: self.rate,
        })
    }
}
