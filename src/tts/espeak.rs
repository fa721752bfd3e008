//! espeak-ng through `espeakng-sys` (Debian's libespeak-ng): formant speech, Danish and
//! English, ~500× faster than real time.
//!
//! espeak keeps global state and is not thread-safe, so one dedicated thread owns it and
//! takes jobs over a channel: speech, streamed sentence by sentence, and IPA phonemes
//! for the Piper voices (which read espeak's phonemes, as piper-phonemize does).

use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::{c_int, c_short};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, OnceLock};

use espeakng_sys as es;
use tokio::sync::mpsc;

use super::queue::{self, Priority, Speak};
use super::sentences::Rendered;
use super::{Synthesizer, TtsError, Voice};
use crate::audio::resample::i16_to_f32;

enum Job {
    Speak(Speak<Voice>),
    Phonemes {
        text: String,
        /// An espeak language code ("en-us"), as a Piper voice's `espeak.voice` names it.
        language: String,
        reply: std_mpsc::Sender<Option<String>>,
    },
}

pub struct Espeak {
    jobs: std_mpsc::Sender<Job>,
}

thread_local! {
    /// Where the synthesis callback puts samples; only the espeak thread touches it.
    static SINK: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
    /// The voice espeak has selected: selecting one leaks ~1 KB inside libespeak-ng
    /// 1.51, so it is done only when the voice changes, not for every text.
    static SELECTED: RefCell<String> = const { RefCell::new(String::new()) };
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
                let take = |job| match job {
                    Job::Speak(speak) => select_voice_of(speak),
                    Job::Phonemes {
                        text,
                        language,
                        reply,
                    } => {
                        reply.send(phonemes(&text, &language)).ok();
                        None
                    }
                };
                queue::serve(rx, take, |sentence, voice| {
                    render(sentence, voice, rate as u32)
                });
            })
            .map_err(|e| TtsError::Init(e.to_string()))?;
        ready_rx
            .recv()
            .map_err(|_| TtsError::Init("espeak thread died".into()))??;
        Ok(Espeak { jobs })
    }
}

/// Speech in a voice espeak has, else nothing: never speak one language with
/// another's voice, that is gibberish to a caller.
fn select_voice_of(speak: Speak<Voice>) -> Option<Speak<Voice>> {
    if select_voice(&speak.voice.name) {
        Some(speak)
    } else {
        tracing::error!(voice = %speak.voice.name, "espeak has no such voice");
        None
    }
}

/// One sentence in `voice` (selected again: a job between two sentences of a warm-up
/// text may have changed it).
fn render(sentence: &str, voice: &Voice, rate: u32) -> Option<Rendered> {
    if !select_voice(&voice.name) {
        return None;
    }
    let text = CString::new(sentence).ok()?;
    // SAFETY: plain setters on the thread that owns espeak.
    unsafe {
        es::espeak_SetParameter(es::espeak_PARAMETER_espeakRATE, voice.rate as c_int, 0);
        es::espeak_SetParameter(es::espeak_PARAMETER_espeakPITCH, voice.pitch as c_int, 0);
    }
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
    Some(Rendered {
        pcm: i16_to_f32(&pcm),
        rate,
    })
}

/// `phonememode` bit 1 of `espeak_TextToPhonemes`: IPA in UTF-8, as Piper voices expect.
const PHONEMES_IPA: c_int = 0x02;

/// IPA for one sentence, clause by clause with its punctuation kept (Piper voices were
/// trained on it). Debian's libespeak-ng 1.51 has no `espeak_TextToPhonemesWithTerminator`,
/// so the clauses are cut here, where espeak would cut them.
fn phonemes(text: &str, language: &str) -> Option<String> {
    if !select_voice(language) {
        tracing::error!(%language, "espeak has no voice for this Piper voice's language");
        return None;
    }
    let mut ipa = String::new();
    for (clause, punctuation) in super::phonemes::clauses(text) {
        let c_text = CString::new(clause).ok()?;
        let mut ptr: *const std::os::raw::c_void = c_text.as_ptr().cast();
        let mut words = Vec::new();
        while !ptr.is_null() {
            // SAFETY: `ptr` points into `c_text` (NUL-terminated), which outlives the
            // loop; espeak advances it or sets it to null at the end. The returned
            // string is espeak's buffer, copied before the next call.
            let out = unsafe {
                es::espeak_TextToPhonemes(&mut ptr, es::espeakCHARS_UTF8 as c_int, PHONEMES_IPA)
            };
            if out.is_null() {
                break;
            }
            let s = unsafe { std::ffi::CStr::from_ptr(out) }.to_string_lossy();
            if !s.trim().is_empty() {
                words.push(s.trim().to_string());
            }
        }
        ipa.push_str(&words.join(" "));
        if let Some(p) = punctuation {
            ipa.push(p);
            if matches!(p, ',' | ':' | ';') {
                ipa.push(' ');
            }
        }
    }
    Some(ipa)
}

/// Selects a voice by language code ("da", "en-gb") or, failing that, by voice name
/// ("Danish", "gmw/en"). A failed selection keeps the previous voice, so it is checked.
fn select_voice(name: &str) -> bool {
    if SELECTED.with(|v| *v.borrow() == name) {
        return true;
    }
    let Ok(c_name) = CString::new(name) else {
        return false;
    };
    // SAFETY: both calls copy what they need from the NUL-terminated string.
    let selected = unsafe {
        let mut spec: es::espeak_VOICE = std::mem::zeroed();
        spec.languages = c_name.as_ptr();
        es::espeak_SetVoiceByProperties(&mut spec) == es::espeak_ERROR_EE_OK
            || es::espeak_SetVoiceByName(c_name.as_ptr()) == es::espeak_ERROR_EE_OK
    };
    if selected {
        SELECTED.with(|v| *v.borrow_mut() = name.to_string());
    }
    selected
}

impl Espeak {
    /// IPA phonemes of one sentence in `language`, waiting for the espeak thread (fast:
    /// no audio is made). None when espeak has no such language.
    pub fn phonemes(&self, text: &str, language: &str) -> Result<Option<String>, TtsError> {
        let (reply, answer) = std_mpsc::channel();
        self.jobs
            .send(Job::Phonemes {
                text: text.into(),
                language: language.into(),
                reply,
            })
            .map_err(|_| TtsError::Init("espeak thread is gone".into()))?;
        answer
            .recv()
            .map_err(|_| TtsError::Init("espeak thread is gone".into()))
    }
}

impl Synthesizer for Espeak {
    fn stream(
        &self,
        text: &str,
        voice: &Voice,
        priority: Priority,
    ) -> Result<mpsc::UnboundedReceiver<Vec<i16>>, TtsError> {
        let (out, rx) = mpsc::unbounded_channel();
        self.jobs
            .send(Job::Speak(Speak {
                text: text.to_string(),
                voice: voice.clone(),
                out,
                priority,
            }))
            .map_err(|_| TtsError::Init("espeak thread is gone".into()))?;
        Ok(rx)
    }
}
