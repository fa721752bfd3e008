//! Barge-in: the caller's confirmed speech stops the bot's audio, unless it may be the
//! bot's own voice coming back. Until the line's echo gate has judged the line (it
//! learns the echo from the bot's first words: `audio::echo`), speech heard while the
//! bot talks is held: dropped if the gate then learns an echo, confirmed (a barge-in,
//! and the turn it ended in) if it finds none. On a busy machine the greeting's audio
//! can come in gaps, and the gate learnt its echo after the echo's 600 ms of "speech"
//! had already stopped the greeting.

use super::CallLoop;
use crate::call::conversation::Event;
use crate::media::LineEcho;
use crate::stt::endpoint::Endpoint;

/// Speech held while the line's echo is judged.
#[derive(Default)]
pub(super) struct Held {
    /// The echo gate has yet to judge the line (a phone line's first seconds).
    judging: bool,
    /// Confirmed speech under the bot's audio, waiting for the gate.
    speech: bool,
    /// Its utterance, if it ended meanwhile.
    utterance: Option<Endpoint>,
}

impl CallLoop {
    /// The caller's speech has lasted long enough not to be a cough.
    pub(super) async fn speech_confirmed(&mut self) {
        let barge_in = self.conversation.interruptible() && self.media.is_playing();
        if barge_in && self.held.judging {
            tracing::info!("speech under the bot's audio before the line's echo is judged: held");
            self.held.speech = true;
            return;
        }
        if barge_in {
            tracing::info!("barge-in");
            self.ctx.metrics.barge_ins.inc();
            if let Some(last) = &mut self.last_turn {
                last.barged_in = true;
            }
        }
        self.step(Event::SpeechConfirmed).await;
    }

    /// An utterance of held speech waits for the gate too; None: it is not held.
    pub(super) fn hold_utterance(&mut self, ep: Endpoint) -> Option<Endpoint> {
        if !self.held.speech || !matches!(ep, Endpoint::Utterance { .. }) {
            return Some(ep);
        }
        self.held.utterance = Some(ep);
        None
    }

    pub(super) async fn on_line_echo(&mut self, echo: LineEcho) {
        self.held.judging = echo == LineEcho::Judging;
        match echo {
            LineEcho::Judging => {}
            LineEcho::Learnt => {
                self.echo_learnt();
                self.release().await;
            }
            LineEcho::None => self.release().await,
        }
    }

    /// The bot's audio is over: held speech is the caller's whatever the gate finds.
    pub(super) async fn playback_over(&mut self) {
        self.release().await;
    }

    /// Held speech still heard (or its utterance) is confirmed now.
    async fn release(&mut self) {
        if !std::mem::take(&mut self.held.speech) {
            return;
        }
        let utterance = self.held.utterance.take();
        if utterance.is_none() && !self.listener.in_speech() {
            return;
        }
        tracing::info!("held speech is the caller's");
        self.speech_confirmed().await;
        if let Some(ep) = utterance {
            self.on_endpoint(ep).await;
        }
    }

    /// The line's echo gate has just learnt the bot's voice coming back. Speech heard
    /// under the bot's audio that has not barged in began before the gate could mute
    /// that echo, and on a noisy line it is most likely the echo: it is dropped (a
    /// caller who was talking is heard afresh). Kept, the echo's "speech" stayed open
    /// after the gate muted it, until a frame of line noise confirmed it as a barge-in
    /// on the greeting.
    fn echo_learnt(&mut self) {
        if self.media.is_playing() && (self.listener.in_speech() || self.held.speech) {
            tracing::info!("speech under the bot's audio dropped: the line's echo is learnt");
            self.listener.drop_speech();
            self.abandon_partial();
            self.held.speech = false;
            self.held.utterance = None;
        }
    }
}
