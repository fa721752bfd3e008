//! espeak-ng through `espeakng-sys` (Debian's libespeak-ng): formant speech, Danish and
//! English, ~500× faster than real time.
//!
//! espeak keeps global state and is not thread-safe, so one dedicated thread owns it and
//! takes jobs over a channel. Each sentence is synthesized, resampled to 8 kHz and sent
//! on at once, so a long answer starts playing after its first sentence.

use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::{c_int, c_short};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, OnceLock};

use espeakng_sys as es;
use tokio::sync::mpsc;

use super::{Synthesizer, TtsError, Voice};
use crate::audio::resample::{f32_to_i16, i16_to_f32, resample};

struct Job {
    text: String,
    voice: Voice,
    out: mpsc::UnboundedSender<Vec<i16>>,
}

pub struct Espeak {
    jobs: std_mpsc::Sender<Job>,
}

/// 250 ms at 8 kHz.
const SENTENCE_PAUSE_SAMPLES: usize = 2000;

thread_local! {
    /// Where the synthesis callback puts samples; only the espeak thread touches it.
    static SINK: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
}

unsafe extern "C" fn on_samples(
    wav: *mut c_short,
    n: c_int,
    _events: *mut es::espeak_EVENT,
) -> c_int {
    if !wav.is_null() && n > 0 {
        // SAFETY: espeak hands us `n` valid samples for the duration of the call.
        let samples = unsafe { std::slice::from_raw_parts(wav, n as usize) };
        SINK.with(|s| s.borrow_mut().extend_from_slice(samples));
    }
    0
}

static SHARED: OnceLock<Result<Arc<Espeak>, String>> = OnceLock::new();

impl Espeak {
    /// The process's one espeak instance (its state is global: a second one would abort).
    pub fn shared() -> Result<Arc<Espeak>, TtsError> {
        SHARED
            .get_or_init(|| Espeak::start().map(Arc::new).map_err(|e| e.to_string()))
            .clone()
            .map_err(TtsError::Init)
    }

    fn start() -> Result<Espeak, TtsError> {
        let (jobs, rx) = std_mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("tts-espeak".into())
            .spawn(move || {
                // SAFETY: espeak is used from this thread only. 0x8000: do not exit() on error.
                let rate = unsafe {
                    es::espeak_Initialize(
                        es::espeak_AUDIO_OUTPUT_AUDIO_OUTPUT_SYNCHRONOUS,
                        0,
                        std::ptr::null(),
                        es::espeakINITIALIZE_DONT_EXIT as c_int,
                    )
                };
                if rate <= 0 {
                    ready_tx
                        .send(Err(TtsError::Init(
                            "espeak_Initialize failed (is espeak-ng-data installed?)".into(),
                        )))
                        .ok();
                    return;
                }
                unsafe { es::espeak_SetSynthCallback(Some(on_samples)) };
                ready_tx.send(Ok(())).ok();
                while let Ok(job) = rx.recv() {
                    synthesize(job, rate as u32);
                }
            })
            .map_err(|e| TtsError::Init(e.to_string()))?;
        ready_rx
            .recv()
            .map_err(|_| TtsError::Init("espeak thread died".into()))??;
        Ok(Espeak { jobs })
    }
}

fn synthesize(job: Job, rate: u32) {
    if !select_voice(&job.voice.name) {
        // Never speak one language with another's voice: that is gibberish to a caller.
        tracing::error!(voice = %job.voice.name, "espeak has no such voice");
        return;
    }
    // SAFETY: plain setters on the thread that owns espeak.
    unsafe {
        es::espeak_SetParameter(es::espeak_PARAMETER_espeakRATE, job.voice.rate as c_int, 0);
        es::espeak_SetParameter(
            es::espeak_PARAMETER_espeakPITCH,
            job.voice.pitch as c_int,
            0,
        );
    }
    for sentence in super::sentences(&job.text) {
        let Ok(text) = CString::new(sentence) else {
            continue;
        };
        SINK.with(|s| s.borrow_mut().clear());
        // SAFETY: `text` is NUL-terminated UTF-8 and outlives the synchronous call.
        unsafe {
            es::espeak_Synth(
                text.as_ptr().cast(),
                text.as_bytes_with_nul().len(),
                0,
                es::espeak_POSITION_TYPE_POS_CHARACTER,
                0,
                es::espeakCHARS_UTF8,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
        let pcm = SINK.with(|s| std::mem::take(&mut *s.borrow_mut()));
        let mut at_8k = f32_to_i16(&resample(&i16_to_f32(&pcm), rate, 8000));
        // A breath between sentences: easier to follow on a phone, and it lets a
        // caller get a word in.
        at_8k.extend(std::iter::repeat_n(0i16, SENTENCE_PAUSE_SAMPLES));
        if job.out.send(at_8k).is_err() {
            return; // the caller hung up or barged in
        }
    }
}

/// Selects a voice by language code ("da", "en-gb") or, failing that, by voice name
/// ("Danish", "gmw/en"). A failed selection keeps the previous voice, so it is checked.
fn select_voice(name: &str) -> bool {
    let Ok(c_name) = CString::new(name) else {
        return false;
    };
    // SAFETY: both calls copy what they need from the NUL-terminated string.
    unsafe {
        let mut spec: es::espeak_VOICE = std::mem::zeroed();
        spec.languages = c_name.as_ptr();
        if es::espeak_SetVoiceByProperties(&mut spec) == es::espeak_ERROR_EE_OK {
            return true;
        }
        es::espeak_SetVoiceByName(c_name.as_ptr()) == es::espeak_ERROR_EE_OK
    }
}

impl Synthesizer for Espeak {
    fn stream(
        &self,
        text: &str,
        voice: &Voice,
    ) -> Result<mpsc::UnboundedReceiver<Vec<i16>>, TtsError> {
        let (out, rx) = mpsc::unbounded_channel();
        self.jobs
            .send(Job {
                text: text.to_string(),
                voice: voice.clone(),
                out,
            })
            .map_err(|_| TtsError::Init("espeak thread is gone".into()))?;
        Ok(rx)
    }
}
