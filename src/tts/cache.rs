//! Prompt cache: every fixed prompt and knowledge-base answer is synthesized once and
//! kept, so a cached answer starts playing with no synthesis on the turn's critical path.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::sentences::sentences;
use super::{Priority, Synthesizer, TtsError, Voice};
use crate::audio::resample::{f32_to_i16, resample};

/// (voice key, text) → 8 kHz audio.
type Entries = HashMap<(String, String), Arc<Vec<i16>>>;

#[derive(Clone)]
pub struct PromptCache {
    tts: Arc<dyn Synthesizer>,
    entries: Arc<Mutex<Entries>>,
}

impl PromptCache {
    pub fn new(tts: Arc<dyn Synthesizer>) -> Self {
        PromptCache {
            tts,
            entries: Arc::default(),
        }
    }

    pub fn get(&self, text: &str, voice: &Voice) -> Option<Arc<Vec<i16>>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&(voice.key(), text.to_string())).cloned()
    }

    /// Synthesizes (whole, after whatever a call is waiting for) and stores a prompt.
    pub async fn warm(&self, text: &str, voice: &Voice) -> Result<Arc<Vec<i16>>, TtsError> {
        if let Some(hit) = self.get(text, voice) {
            return Ok(hit);
        }
        let mut rx = self.tts.stream(text, voice, Priority::Warm)?;
        let mut pcm = Vec::new();
        while let Some(chunk) = rx.recv().await {
            pcm.extend(chunk);
        }
        let pcm = Arc::new(pcm);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert((voice.key(), text.to_string()), pcm.clone());
        Ok(pcm)
    }

    /// Puts a person's recording of `text` in the cache (read once, resampled to 8 kHz),
    /// so `text` in `voice` is never synthesized.
    pub fn record(&self, text: &str, voice: &Voice, wav: &Path) -> Result<(), TtsError> {
        let (pcm, rate) = crate::audio::wav::read_mono(wav).map_err(|e| TtsError::Recording {
            path: wav.into(),
            message: e.to_string(),
        })?;
        let at_8k = f32_to_i16(&resample(&pcm, rate, 8000));
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert((voice.key(), text.to_string()), Arc::new(at_8k));
        Ok(())
    }

    /// Cached audio in one piece, or a stream of sentences from the synthesizer.
    pub fn speak(&self, text: &str, voice: &Voice) -> Result<Speech, TtsError> {
        match self.get(text, voice).or_else(|| self.pieced(text, voice)) {
            Some(pcm) => Ok(Speech::Cached(pcm)),
            None => Ok(Speech::Streaming(self.tts.stream(
                text,
                voice,
                Priority::Live,
            )?)),
        }
    }

    /// `text` made of cached runs of whole sentences ("{link_elsewhere} {anything_else}",
    /// a clarifying question whose sentences were warmed per title), longest runs first.
    /// The same audio as synthesising it whole: engines render sentence by sentence.
    fn pieced(&self, text: &str, voice: &Voice) -> Option<Arc<Vec<i16>>> {
        let parts = sentences(text);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (key, mut pcm, mut i) = (voice.key(), Vec::new(), 0);
        while i < parts.len() {
            let (j, hit) = (i + 1..=parts.len()).rev().find_map(|j| {
                let run = parts[i..j].join(" ");
                entries.get(&(key.clone(), run)).map(|hit| (j, hit))
            })?;
            pcm.extend_from_slice(hit);
            i = j;
        }
        Some(Arc::new(pcm))
    }

    /// Warms each sentence of `text` on its own, for texts built per call from parts
    /// that repeat (see `pieced`).
    pub async fn warm_sentences(&self, text: &str, voice: &Voice) -> Result<(), TtsError> {
        for sentence in sentences(text) {
            self.warm(&sentence, voice).await?;
        }
        Ok(())
    }

    /// (entries, bytes of audio held)
    pub fn size(&self) -> (usize, usize) {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        (entries.len(), entries.values().map(|v| v.len() * 2).sum())
    }
}

pub enum Speech {
    Cached(Arc<Vec<i16>>),
    Streaming(tokio::sync::mpsc::UnboundedReceiver<Vec<i16>>),
}
