//! Drives one call: answers it with SDP, runs its media, and connects the conversation
//! to the world: caller audio → endpointer → whisper → intent service, and the
//! conversation's answers → prompt cache / espeak → paced RTP.
//!
//! All decisions are the conversation's; this file only performs its actions and
//! turns what happens (packets, transcripts, RPC results, timers) into its events.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::conversation::{Action, Conversation, Event, Settings, TransferRequest};
use super::decoding::Decodes;
use super::line::{Line, Shown, Signal};
use super::menu::Menu;
use super::playback::Playback;
use super::prompts::PromptSet;
use super::sip_line;
use super::turn_metrics::{TurnClock, TurnMetrics};
use super::understanding::{self, Understanding};
use crate::config::Config;
use crate::intent::client::IntentResolver;
use crate::intent::resolution::{Action as IntentAction, Kind, Resolution};
use crate::media::{MediaEvent, MediaHandle};
use crate::ops::live::LiveCalls;
use crate::rtp::counters::RtpCounters;
use crate::sms::number::E164;
use crate::sms::Sms;
use crate::stt::endpoint::EndpointConfig;
use crate::stt::engine::{Abandon, SpeechToText, Transcript};
use crate::stt::listener::Listener;
use crate::stt::silero::SileroModel;
use crate::stt::voices::PauseRule;
use crate::transfer::Transferer;
use crate::tts::cache::PromptCache;
use crate::tts::Voice;

/// What a call needs, for one tenant: the tenant's own pieces (knowledge base and its
/// matcher, prompts, menu, queues, SMS sender) beside the gateway's shared ones (the
/// recognizer, the voices, the live view). One per tenant, picked per call.
pub struct CallContext {
    /// The tenant's name, on the live view, call records and call metrics.
    pub tenant: String,
    /// The tenant's language: its lines' unless `[stt] languages` names the number.
    pub language: String,
    pub metrics: TurnMetrics,
    pub config: Arc<Config>,
    pub rtp: Arc<RtpCounters>,
    pub stt: Arc<dyn SpeechToText>,
    /// Silero VAD for pauses in the caller's speech (`[stt] vad_pause_ms`); None: off.
    pub vad: Option<SileroModel>,
    /// What the recognizer does with each turn (knowledge-base scoring, language check).
    pub understanding: Understanding,
    pub tts: PromptCache,
    pub intents: Arc<dyn IntentResolver>,
    pub prompts: PromptSet,
    /// The keypad menu, built from the knowledge base at start.
    pub menu: Arc<Menu>,
    pub settings: Settings,
    pub transfer: Transferer,
    /// None when no SMS sender is configured: SMS is then never offered.
    pub sms: Option<Sms>,
    /// The sender the tenant's SMS show when not `[sms] from` (its `sms_from`).
    pub sms_from: Option<String>,
    pub live: LiveCalls,
    /// Base URL of the switchboard pages, for the link sent with a transfer.
    pub switchboard_url: String,
    /// Cancelled when the gateway's drain time is over: calls still in progress are
    /// ended with a goodbye.
    pub end_calls: CancellationToken,
}

impl CallContext {
    pub fn voice(&self, language: &str) -> &Voice {
        self.config.tts.voice(language)
    }
}

/// How long the call waits after its last audio before hanging up.
const PLAYOUT_TAIL: std::time::Duration = std::time::Duration::from_millis(250);

/// Who called whom, as far as the call's line can tell.
pub struct Caller {
    /// The line's own id for the call (SIP Call-ID, or the web call's id).
    pub call_id: String,
    /// The number called (per-number language), "web" for the web page.
    pub called: String,
    pub language: String,
    /// The caller's number or name if the line gave one we may believe.
    pub user: Option<String>,
    /// Where a consented SMS goes; None: SMS is not offered in this call.
    pub sms_to: Option<E164>,
}

mod answering;
mod barge_in;
mod hearing;
pub use answering::accept_calls;
mod resolving;
mod speaking;
mod transferring;

/// What background work reports back to the call's loop.
enum Done {
    /// The decode `Decodes` asked for under this id is over.
    Transcribed(u64, Result<Transcript, String>),
    Resolved(Result<Resolution, String>, Duration),
    /// A synthesized sentence of a playback item.
    Spoken {
        item: u64,
        pcm: Vec<i16>,
    },
    SynthesisOver {
        item: u64,
    },
    SmsQueued(bool),
}

/// Hears the caller's audio at the line's `rate`, with the gateway's VADs.
fn listener(ctx: &CallContext, rate: u32) -> Listener {
    let stt = &ctx.config.stt;
    let listener = Listener::new(
        EndpointConfig {
            trailing_silence_ms: stt.trailing_silence_ms,
            max_utterance_ms: stt.max_utterance_ms,
            pause_ms: stt.pause_ms,
            confirm_ms: stt.barge_in_ms,
            ..Default::default()
        },
        rate,
    );
    match &ctx.vad {
        Some(silero) => listener.with_silero(
            silero.stream(rate),
            PauseRule::calls(stt.vad_pause_ms.into()),
        ),
        None => listener,
    }
}

/// Runs the conversation with a caller on any line until the call is over.
pub async fn converse(
    line: &mut dyn Line,
    media: MediaHandle,
    events: mpsc::UnboundedReceiver<MediaEvent>,
    caller: Caller,
    ctx: Arc<CallContext>,
) {
    let started_unix = chrono::Utc::now().timestamp();
    // The key this call's view and record go by (unique even for a repeated Call-ID).
    let key = ctx.live.start(
        &caller.call_id,
        started_unix,
        &caller.called,
        &crate::privacy::redact(caller.user.as_deref().unwrap_or("anonymous")),
        &caller.language,
    );
    ctx.live.channel(&key, line.channel());
    ctx.live.tenant(&key, &ctx.tenant);
    let mut conversation = Conversation::new(
        ctx.settings.clone(),
        ctx.prompts.clone(),
        caller.language.parse().unwrap_or_default(),
        ctx.menu.clone(),
    );
    conversation.set_sms_possible(caller.sms_to.is_some());
    conversation.set_links_on_screen(line.screen().is_some());
    let mut call_loop = CallLoop {
        conversation,
        listener: listener(&ctx, line.audio_rate()),
        audio_rate: line.audio_rate(),
        decodes: Decodes::default(),
        abandon: None,
        last_turn: None,
        held: barge_in::Held::default(),
        playback: Playback::default(),
        clock: None,
        replying: false,
        media,
        ctx: ctx.clone(),
        language: caller.language,
        called: caller.called,
        call_id: key.clone(),
        caller_user: caller.user,
        sms_to: caller.sms_to,
        turn_started: None,
        heard: None,
        ahead: resolving::Ahead::default(),
        answered_at: Instant::now(),
        pending_transfer: None,
        done_tx: mpsc::unbounded_channel().0,
        screen: line.screen(),
    };
    call_loop.run(line, events).await;
    let outcome = call_loop.conversation.outcome().as_str();
    ctx.live.end(&key, outcome);
    ctx.metrics
        .calls
        .get_or_create(&vec![
            ("outcome", outcome.into()),
            ("tenant", ctx.tenant.clone()),
        ])
        .inc();
    tracing::info!(outcome, "call over");
}

struct CallLoop {
    conversation: Conversation,
    listener: Listener,
    media: MediaHandle,
    ctx: Arc<CallContext>,
    language: String,
    called: String,
    call_id: String,
    caller_user: Option<String>,
    /// Where a consented SMS goes; None: SMS is not offered in this call.
    sms_to: Option<E164>,
    /// The caller's speech, decoded at pauses and at the end, one decode at a time.
    decodes: Decodes<Result<Transcript, String>>,
    /// The flag that stops the decode in flight, with its id.
    abandon: Option<(u64, Abandon)>,
    /// The caller's last turn, while they may still go on with it.
    last_turn: Option<hearing::LastTurn>,
    /// Speech under the bot's audio held while the line's echo is judged.
    held: barge_in::Held,
    /// What the caller hears, in order.
    playback: Playback,
    /// The turn being answered, until its answer is on the wire.
    clock: Option<TurnClock>,
    /// The event being handled answers the caller's words: what it plays is the reply.
    replying: bool,
    /// When the caller's last utterance ended: the start of the turn's latency.
    turn_started: Option<Instant>,
    /// The last transcript, whose audio scores and confidence go with its request.
    heard: Option<Transcript>,
    /// The intent of a finished partial, asked for before its turn ended.
    ahead: resolving::Ahead,
    answered_at: Instant,
    /// A transfer the conversation asked for, performed by the main loop (it needs the
    /// dialog and the media events).
    pending_transfer: Option<TransferRequest>,
    done_tx: mpsc::UnboundedSender<Done>,
    /// The caller's screen (web calls): captions and links.
    screen: Option<mpsc::UnboundedSender<Shown>>,
    /// The rate of the caller's audio (the line's).
    audio_rate: u32,
}

impl CallLoop {
    async fn run(
        &mut self,
        line: &mut dyn Line,
        mut media_events: mpsc::UnboundedReceiver<MediaEvent>,
    ) {
        let (done_tx, mut done) = mpsc::unbounded_channel();
        self.done_tx = done_tx;
        self.step(Event::Answered).await;
        let cfg = self.ctx.config.clone();
        let end_calls = self.ctx.end_calls.clone();
        let mut told_to_end = false;
        while !self.conversation.is_over() {
            let deadline = self.conversation.deadline().map(Instant::from_std);
            let timer = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = timer => self.step(Event::Timer).await,
                signal = line.signal(&self.media) => match signal {
                    Signal::Gone(reason) => {
                        tracing::info!(%reason, turns = self.conversation.turn(), "call ended");
                        let cut_off = self.cut_off();
                        self.step(Event::HungUp).await;
                        self.last_words(cut_off, &mut done).await;
                        return;
                    }
                    Signal::Confirmed => self.media.confirm(),
                    Signal::Handled => {}
                },
                ev = media_events.recv() => match ev {
                    Some(MediaEvent::Audio(pcm)) => {
                        self.listener.bot_talking(self.media.is_playing());
                        for ep in self.listener.push(&pcm) {
                            self.on_endpoint(ep).await;
                        }
                    }
                    Some(MediaEvent::Dtmf(digit)) => {
                        tracing::debug!(%digit, "dtmf");
                        self.ctx.metrics.dtmf.inc();
                        self.step(Event::Dtmf(digit)).await;
                    }
                    Some(MediaEvent::PlaybackDone) => {
                        if !self.playback.pending() {
                            self.step(Event::PlaybackFinished).await;
                            self.playback_over().await;
                        }
                    }
                    Some(MediaEvent::PlaybackStarted(item)) => self.answer_started(item),
                    Some(MediaEvent::Echo(echo)) => self.on_line_echo(echo).await,
                    Some(MediaEvent::Timeout) => {
                        tracing::warn!(secs = cfg.rtp.timeout_secs, channel = line.channel(), "no audio from the caller: hanging up");
                        line.hang_up().await;
                        self.step(Event::HungUp).await;
                        return;
                    }
                    None => return,
                },
                Some(d) = done.recv() => self.on_done(d).await,
                _ = end_calls.cancelled(), if !told_to_end => {
                    told_to_end = true;
                    tracing::info!(turns = self.conversation.turn(), "drain time over: ending the call");
                    self.step(Event::ShuttingDown).await;
                }
            }
            if let Some(request) = self.pending_transfer.take() {
                if self.transfer(line, &mut media_events, request).await {
                    return;
                }
            }
        }
        // The last packet has just been sent: let the caller's jitter buffer play it out
        // before the BYE stops their side (phones hold 60-200 ms).
        tokio::time::sleep(PLAYOUT_TAIL).await;
        line.hang_up().await;
    }

    async fn on_done(&mut self, done: Done) {
        match done {
            Done::Transcribed(id, r) => {
                for d in self.decodes.decoded(id, r) {
                    self.hearing(d).await;
                }
                self.resolve_ahead();
            }
            Done::Resolved(Ok(r), took) => {
                self.ctx.metrics.intent.observe(took.as_secs_f64());
                if let Some(clock) = &mut self.clock {
                    clock.resolved(std::time::Instant::now(), took);
                }
                tracing::info!(intent = %r.intent_id, action = ?r.action, confidence = r.confidence,
                    intent_secs = took.as_secs_f32(), "resolved");
                self.ctx.live.understood(&self.call_id, &r);
                let m = &self.ctx.metrics;
                m.intent_hits
                    .get_or_create(&vec![
                        ("intent", r.intent_id.clone()),
                        ("topic", r.topic.clone()),
                        ("tenant", self.ctx.tenant.clone()),
                    ])
                    .inc();
                if matches!(r.action, IntentAction::Clarify | IntentAction::Confirm) {
                    m.clarify.inc();
                } else if r.kind == Kind::OutOfScope {
                    m.no_match.inc();
                }
                self.step(Event::Resolved(r)).await;
            }
            Done::Resolved(Err(e), _) => {
                tracing::warn!(error = %e, "intent service failed");
                self.ctx.metrics.intent_errors.inc();
                self.step(Event::ResolveFailed).await;
            }
            Done::Spoken { item, pcm } => {
                self.playback.chunk(item, pcm);
                self.release_audio();
            }
            Done::SmsQueued(ok) => {
                let event = if ok {
                    self.ctx.live.sms_sent(&self.call_id);
                    Event::SmsQueued
                } else {
                    Event::SmsFailed
                };
                self.step(event).await;
            }
            Done::SynthesisOver { item } => {
                self.playback.finished(item);
                self.release_audio();
                if !self.playback.pending() && !self.media.is_playing() {
                    self.step(Event::PlaybackFinished).await;
                }
            }
        }
    }

    /// Feeds the conversation and performs what it asks, until it asks nothing more.
    async fn step(&mut self, event: Event) {
        // What the caller's words lead to is the turn's reply; a filler (timer), the
        // greeting's English offer (playback finished) and the like are not.
        self.replying = matches!(
            event,
            Event::Transcript { .. }
                | Event::TranscriptFailed
                | Event::Resolved(_)
                | Event::ResolveFailed
        );
        let mut pending = vec![event];
        while let Some(ev) = pending.pop() {
            let actions = self.conversation.handle(std::time::Instant::now(), ev);
            for action in actions {
                if let Some(follow_up) = self.perform(action).await {
                    pending.push(follow_up);
                }
            }
        }
    }

    async fn perform(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::Play { text, .. } => {
                if let Some(started) = self.turn_started.take() {
                    let secs = started.elapsed().as_secs_f64();
                    self.ctx.metrics.reply.observe(secs);
                    tracing::info!(reply_secs = secs, "first reply audio queued");
                }
                self.said("bot", &text);
                let language = self.language.clone();
                self.play(&text, &language);
                None
            }
            Action::PlayIn { text, language, .. } => {
                self.said("bot", &text);
                self.play(&text, &language);
                None
            }
            Action::SwitchLanguage(language) => {
                tracing::info!(from = %self.language, to = %language, "call switches language");
                self.ctx.live.language(&self.call_id, &language);
                // Prompts, the voice, recognition and intent requests all follow
                // `self.language` from here on.
                self.language = language;
                None
            }
            Action::StopPlayback => {
                self.playback.cancel();
                self.media.stop_playback();
                None
            }
            Action::Resolve {
                text,
                turn,
                previous_intent,
                chosen_intent_id,
            } => {
                self.resolve(text, turn, previous_intent, chosen_intent_id);
                None
            }
            Action::Route(request) => Some(Event::Routed(self.route(&request))),
            Action::SendSms(offer) => {
                let (Some(sms), Some(to)) = (self.ctx.sms.clone(), self.sms_to.clone()) else {
                    return Some(Event::SmsFailed);
                };
                let text = crate::sms::text::compose(&offer.link, offer.sms_text.as_deref(), None);
                let (call_id, done) = (self.call_id.clone(), self.done_tx.clone());
                let from = self.ctx.sms_from.clone();
                tokio::spawn(
                    async move {
                        let r = sms
                            .enqueue_from(&call_id, &offer.intent_id, &to, &text, from.as_deref())
                            .await;
                        if let Err(e) = &r {
                            tracing::warn!(error = %e, "SMS not queued");
                        }
                        done.send(Done::SmsQueued(r.is_ok())).ok();
                    }
                    .in_current_span(),
                );
                None
            }
            Action::Transfer(request) => {
                self.pending_transfer = Some(request);
                None
            }
            Action::ShowLink { url, title } => {
                self.show(Shown::Link { url, title });
                None
            }
            Action::Hangup => None,
        }
    }

    /// A line of the conversation: into the live view (and record), and onto the
    /// caller's screen if the line has one.
    fn said(&self, who: &'static str, text: &str) {
        self.ctx
            .live
            .said(&self.call_id, self.since_answer(), who, text);
        self.show(Shown::Caption {
            who,
            text: text.to_string(),
        });
    }

    fn show(&self, shown: Shown) {
        if let Some(screen) = &self.screen {
            screen.send(shown).ok();
        }
    }

    fn since_answer(&self) -> f32 {
        self.answered_at.elapsed().as_secs_f32()
    }
}
