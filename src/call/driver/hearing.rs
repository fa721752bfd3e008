//! The call's ears: the endpointer's events become decodes (scheduled by `Decodes`),
//! transcripts become the conversation's events, and the turn's clock runs from the
//! caller's last word until the answer's first packet.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use super::{CallLoop, Done};
use crate::audio::resample::{i16_to_f32, resample};
use crate::call::conversation::Event;
use crate::call::decoding::{Do, Speech};
use crate::call::turn_metrics::TurnClock;
use crate::stt::endpoint::Endpoint;
use crate::stt::engine::{Abandon, Decode, Transcript};

/// How long a call that hung up waits for the recognition of the caller's last words.
const LAST_WORDS_WAIT: Duration = Duration::from_secs(30);
/// The most of a turn the caller went on with that is decoded (whisper hears 30 s).
const TURN_MAX_SECS: usize = 28;
/// Speech that barged in on our reply and began this soon after its first packet went
/// out was not said in answer to it: the reply takes a round trip (100-300 ms) to
/// reach the caller and come back, and the quickest spoken reaction takes some 200 ms
/// after what is answered was heard; by then a caller has heard no more of the reply
/// than "Is it about…" (and a "ja" is too short to barge in).
const REACTION_MS: u64 = 900;

/// The audio of the caller's last turn: they may go on with it before its transcript
/// comes, or over the first moment of its reply, and the turn is then all they said.
pub(super) struct LastTurn {
    audio: Vec<i16>,
    /// Its transcript came: the reply is being found, or given.
    heard: bool,
    /// Where the caller's audio was when the reply's first packet went out.
    reply_ms: Option<u64>,
    /// The caller barged in on the reply.
    pub(super) barged_in: bool,
}

impl LastTurn {
    fn new(audio: Vec<i16>) -> LastTurn {
        LastTurn {
            audio,
            heard: false,
            reply_ms: None,
            barged_in: false,
        }
    }
}

impl CallLoop {
    pub(super) async fn on_endpoint(&mut self, ep: Endpoint) {
        tracing::debug!(event = ?ep.brief(), playing = self.media.is_playing(), "heard");
        let Some(ep) = self.hold_utterance(ep) else {
            return;
        };
        match ep {
            Endpoint::SpeechStart { .. } | Endpoint::Noise { .. } => {}
            Endpoint::SpeechConfirmed { .. } => self.speech_confirmed().await,
            Endpoint::Resumed { .. } => self.abandon_partial(),
            Endpoint::Pause { audio, end_ms } => {
                // Speech under the bot's audio is a backchannel until it barges in
                // (which stops the audio): not worth a worker.
                let idle = self.ctx.stt.has_idle_worker() && !self.media.is_playing();
                if let Some(d) = self.decodes.pause(Speech { audio, end_ms }, idle) {
                    self.hearing(d).await;
                }
            }
            Endpoint::Utterance {
                audio,
                start_ms,
                end_ms,
                ..
            } => {
                let now = Instant::now();
                if self.conversation.awaits_transcript() {
                    self.step(Event::UtteranceEnded).await;
                    self.went_on(now, audio, end_ms).await;
                    return;
                }
                if let Some(turn) = self.over_reply(start_ms) {
                    tracing::info!(
                        "the caller went on over the first moment of the reply to their \
                         turn: it is taken back, and the turn is all they said"
                    );
                    self.step(Event::WentOnOverReply).await;
                    self.step(Event::UtteranceEnded).await;
                    let turn = self.joined(turn, &audio);
                    self.decode_all(now, turn, end_ms).await;
                    return;
                }
                self.step(Event::UtteranceEnded).await;
                if !self.conversation.awaits_transcript() {
                    tracing::debug!(end_ms, "speech over the bot's audio, not a turn");
                    return;
                }
                self.ctx.metrics.turns.inc();
                self.start_clock(now, end_ms);
                self.last_turn = Some(LastTurn::new(audio.clone()));
                // A decode at the pause may have heard it all already: then only the
                // intent is awaited, and the recognizer's queue says nothing about it.
                let awaited = match self.decodes.utterance(Speech { audio, end_ms }) {
                    Some(heard @ Do::Heard(..)) => {
                        self.hearing(heard).await;
                        false
                    }
                    Some(decode) => {
                        self.hearing(decode).await;
                        true
                    }
                    None => true,
                };
                if awaited {
                    // With callers queued ahead, "one moment" now rather than over the answer.
                    let wait = self.ctx.stt.expected_wait();
                    self.step(Event::TranscriptExpected(wait)).await;
                }
            }
        }
    }

    /// The turn's latency runs from the end of the caller's speech at `end_ms`.
    fn start_clock(&mut self, now: Instant, end_ms: u64) {
        let silence = self.listener.now_ms().saturating_sub(end_ms);
        let endpointing = Duration::from_millis(silence) + self.media.held();
        self.clock = Some(TurnClock::start(now.into_std(), endpointing));
        self.turn_started = Some(now);
    }

    /// The caller spoke again after their turn ended and before it was answered (a
    /// long pause mid-question, with the recognizer busy). Before its transcript came,
    /// the turn becomes all they said, decoded once: the decode of the first part is
    /// abandoned. Answered from the first part alone, the rest was decoded for
    /// nothing and never heard. Once the transcript is in, the reply is on its way:
    /// what they say is speech over it (`over_reply`).
    async fn went_on(&mut self, now: Instant, audio: Vec<i16>, end_ms: u64) {
        let Some(last) = self.last_turn.take_if(|t| !t.heard) else {
            tracing::debug!(
                end_ms,
                "speech while the turn's answer is found, not a turn"
            );
            return;
        };
        tracing::info!("the caller went on before their turn was heard: decoding all they said");
        let turn = self.joined(last.audio, &audio);
        self.decode_all(now, turn, end_ms).await;
    }

    /// Decodes `turn`, all the caller said in the turn they went on with: anything
    /// decoding or decoded of a part of it (the first part, or a pause in the rest)
    /// is of no use now.
    async fn decode_all(&mut self, now: Instant, turn: Vec<i16>, end_ms: u64) {
        self.start_clock(now, end_ms);
        self.last_turn = Some(LastTurn::new(turn.clone()));
        let (superseded, start) = self.decodes.continued(Speech {
            audio: turn,
            end_ms,
        });
        if let Some(id) = superseded {
            self.abandon_decode(id);
        }
        if let Some(decode) = start {
            self.hearing(decode).await;
        }
        let wait = self.ctx.stt.expected_wait();
        self.step(Event::TranscriptExpected(wait)).await;
    }

    /// The audio of the last turn, if speech that began at `start_ms` went on with it
    /// over the first moment of its reply (the caller has the floor now: they barged in
    /// on that reply, or it is over).
    fn over_reply(&mut self, start_ms: u64) -> Option<Vec<i16>> {
        if !self.conversation.listening() {
            return None;
        }
        // Barged in on the reply, or talking already when it began (it was played
        // over them and is over now).
        let last = self.last_turn.take_if(|t| {
            t.reply_ms.is_some_and(|reply_ms| {
                start_ms < reply_ms + REACTION_MS && (t.barged_in || start_ms < reply_ms)
            })
        })?;
        Some(last.audio)
    }

    /// A turn and what the caller went on with, at most `TURN_MAX_SECS` (the latest).
    fn joined(&self, mut turn: Vec<i16>, more: &[i16]) -> Vec<i16> {
        turn.extend_from_slice(more);
        let most = TURN_MAX_SECS * self.audio_rate as usize;
        turn.drain(..turn.len().saturating_sub(most));
        turn
    }

    /// A decode started at a pause is of no use now: it is abandoned.
    pub(super) fn abandon_partial(&mut self) {
        if let Some(id) = self.decodes.resumed() {
            self.abandon_decode(id);
        }
    }

    fn abandon_decode(&mut self, id: u64) {
        if let Some((_, flag)) = self.abandon.as_ref().filter(|(i, _)| *i == id) {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Does what the call's decode schedule asks: submit a decode, or take a transcript.
    pub(super) async fn hearing(&mut self, d: Do<Result<Transcript, String>>) {
        match d {
            Do::Decode { id, audio, partial } => {
                // A decode at a pause is for the turn this utterance becomes when it
                // ends (the first turn's decode checks the caller's language).
                let number = self.conversation.turn() + u32::from(partial);
                let turn = self.ctx.understanding.turn(&self.language, number);
                // Any decode may be of speech the caller goes on with.
                let abandon = Abandon::default();
                self.abandon = Some((id, abandon.clone()));
                let decode = Decode {
                    audio_16k: resample(&i16_to_f32(&audio), self.audio_rate, 16_000),
                    turn,
                    abandon: Some(abandon),
                };
                let pending = match self.ctx.stt.submit(decode) {
                    Ok(pending) => pending,
                    Err(e) if partial => {
                        tracing::debug!(error = %e, "no decode at the pause");
                        self.decodes.refused(id);
                        return;
                    }
                    Err(e) => {
                        Box::pin(self.on_done(Done::Transcribed(id, Err(e.to_string())))).await;
                        return;
                    }
                };
                let done = self.done_tx.clone();
                tokio::spawn(
                    async move {
                        let r = pending.await.map_err(|e| e.to_string());
                        if let Ok(t) = &r {
                            let heard = t.hints.first().map(|h| h.intent_id.as_str()).unwrap_or("");
                            tracing::info!(text = %crate::privacy::redact(&t.text), confidence = t.confidence,
                                language = %t.language, heard, decode_secs = t.decode_secs, rescore_secs = t.rescore_secs,
                                queued_secs = t.queued_secs, partial, "transcript");
                        }
                        done.send(Done::Transcribed(id, r)).ok();
                    }
                    .in_current_span(),
                );
            }
            Do::Heard(Ok(t), early) => {
                if let Some(last) = &mut self.last_turn {
                    last.heard = true;
                }
                if let Some(clock) = &mut self.clock {
                    clock.heard(std::time::Instant::now(), early);
                }
                self.said("caller", &t.text);
                self.ctx.metrics.recognition.observe(t.decode_secs as f64);
                self.ctx
                    .metrics
                    .recognizer_queue
                    .observe(t.queued_secs as f64);
                let (text, confidence, language) =
                    (t.text.clone(), t.confidence, t.language.clone());
                self.heard = Some(t);
                self.step(Event::Transcript {
                    text,
                    confidence,
                    language,
                })
                .await
            }
            Do::Heard(Err(e), _) => {
                self.last_turn = None;
                tracing::warn!(error = %e, "utterance not transcribed");
                self.step(Event::TranscriptFailed).await;
            }
        }
    }

    /// A playback item's first packet is on the wire: if it answers the turn, the
    /// turn is over.
    pub(super) fn answer_started(&mut self, item: u64) {
        let Some(clock) = self.clock.take_if(|c| c.answer_item == Some(item)) else {
            return;
        };
        if let Some(last) = &mut self.last_turn {
            last.reply_ms = Some(self.listener.now_ms());
        }
        let t = clock.finish(std::time::Instant::now());
        self.ctx.metrics.observe(&t);
        self.ctx.live.replied(&self.call_id, t.answer as f32);
        tracing::info!(
            answer_secs = t.answer,
            endpointing_secs = t.endpointing,
            recognition_wait_secs = t.recognition_wait,
            intent_secs = t.intent,
            first_packet_secs = t.first_packet,
            early = t.partial,
            "answer on the wire"
        );
    }

    /// What the caller was saying when the line closed, if it would have been a turn.
    pub(super) fn cut_off(&mut self) -> Option<Speech> {
        match self.listener.finish() {
            Some(Endpoint::Utterance { audio, end_ms, .. }) if self.conversation.listening() => {
                Some(Speech { audio, end_ms })
            }
            _ => None,
        }
    }

    /// The caller hung up while speaking (`cut_off`) or while their words were being
    /// recognised: the transcript still goes into the call's record (what abandoned
    /// callers asked is what staff teach the bot from), though nobody answers it. The
    /// recognizer is busy with it anyway; the wait is bounded in case it is stuck.
    pub(super) async fn last_words(
        &mut self,
        cut_off: Option<Speech>,
        done: &mut mpsc::UnboundedReceiver<Done>,
    ) {
        if let Some(d) = cut_off.and_then(|speech| self.decodes.utterance(speech)) {
            self.hearing(d).await;
        }
        if let Some(d) = self.decodes.hung_up() {
            self.hearing(d).await;
        }
        let until = Instant::now() + LAST_WORDS_WAIT;
        while self.decodes.hearing_more() {
            match tokio::time::timeout_at(until, done.recv()).await {
                Ok(Some(d @ (Done::Transcribed(..) | Done::SmsQueued(_)))) => self.on_done(d).await,
                // Speech and answers have nobody left to serve.
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    tracing::warn!(
                        secs = LAST_WORDS_WAIT.as_secs(),
                        "the caller's last words not recognised in time: not recorded"
                    );
                    return;
                }
            }
        }
    }
}
