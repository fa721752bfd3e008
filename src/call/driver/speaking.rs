//! The call's voice: what the conversation says goes through the prompt cache or
//! speech synthesis into the playback queue, which hands it to the media in order.

use super::{CallLoop, Done};
use crate::tts::cache;

impl CallLoop {
    /// Queues `text` after whatever is queued; the turn's first reply is its answer.
    pub(super) fn play(&mut self, text: &str, language: &str) {
        let voice = self.ctx.voice(language).clone();
        let item = match self.ctx.tts.speak(text, &voice) {
            Ok(cache::Speech::Cached(pcm)) => self.playback.ready(pcm.as_ref().clone()),
            Ok(cache::Speech::Streaming(mut rx)) => {
                let item = self.playback.streaming();
                let done = self.done_tx.clone();
                tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    let (mut first, mut sentences) = (None, 0);
                    loop {
                        // A call that is over drops the stream at once: the engine then
                        // skips its sentences instead of making speech for nobody (a
                        // busy engine's queue would otherwise grow with every call).
                        let pcm = tokio::select! {
                            pcm = rx.recv() => pcm,
                            _ = done.closed() => return,
                        };
                        let Some(pcm) = pcm else { break };
                        first.get_or_insert(started.elapsed());
                        sentences += 1;
                        if done.send(Done::Spoken { item, pcm }).is_err() {
                            return;
                        }
                    }
                    done.send(Done::SynthesisOver { item }).ok();
                    // Shows streaming at work: the first sentence plays long before the last is made.
                    tracing::info!(
                        sentences,
                        first_audio_ms = first.unwrap_or_default().as_millis() as u64,
                        all_ms = started.elapsed().as_millis() as u64,
                        "speech synthesized while playing"
                    );
                });
                item
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot speak");
                return;
            }
        };
        if self.replying {
            if let Some(clock) = &mut self.clock {
                clock.answer_item.get_or_insert(item);
            }
        }
        self.release_audio();
    }

    /// Hands the media what the playback queue lets go, in order.
    pub(super) fn release_audio(&mut self) {
        for r in self.playback.release() {
            self.media.play_marked(r.pcm, r.mark);
        }
    }
}
