//! Drives one call: answers it with SDP, runs its media, and connects the conversation
//! to the world: caller audio → endpointer → whisper → intent service, and the
//! conversation's answers → prompt cache / espeak → paced RTP.
//!
//! All decisions are the conversation's; this file only performs its actions and
//! turns what happens (packets, transcripts, RPC results, timers) into its events.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::dialog::DialogState;
use rsipstack::sip::StatusCode;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::conversation::{Action, Conversation, Event, Settings, TransferRequest};
use super::decoding::Decodes;
use super::menu::Menu;
use super::playback::Playback;
use super::prompts::PromptSet;
use super::turn_metrics::{TurnClock, TurnMetrics};
use super::understanding::{self, Understanding};
use crate::config::Config;
use crate::intent::client::IntentResolver;
use crate::intent::resolution::{Action as IntentAction, Kind, Language, Request, Resolution};
use crate::media::{MediaEvent, MediaHandle};
use crate::ops::live::LiveCalls;
use crate::rtp::session::{self, MediaParams, RtpCounters};
use crate::sip::answer::{ring, sdp_headers, wait_for_ack_answer};
use crate::sip::identity::{self, Identity, Trust};
use crate::sip::sdp::{self, Negotiated};
use crate::sip::uas::IncomingCall;
use crate::sms::number::E164;
use crate::sms::Sms;
use crate::stt::endpoint::EndpointConfig;
use crate::stt::listener::Listener;
use crate::stt::recognizer::{Abandon, Recognizer, Transcript};
use crate::transfer::Transferer;
use crate::tts::cache::PromptCache;
use crate::tts::Voice;

pub struct CallContext {
    pub metrics: TurnMetrics,
    pub config: Arc<Config>,
    pub rtp: Arc<RtpCounters>,
    pub stt: Recognizer,
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

pub async fn accept_calls(mut calls: mpsc::Receiver<IncomingCall>, ctx: Arc<CallContext>) {
    while let Some(call) = calls.recv().await {
        let source = call
            .source
            .map_or_else(|| "unknown".into(), |s| s.to_string());
        let span = tracing::info_span!("call", call_id = %call.call_id, %source);
        let ctx = ctx.clone();
        tokio::spawn(run(call, ctx).instrument(span));
    }
}

mod hearing;
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

async fn run(mut call: IncomingCall, ctx: Arc<CallContext>) {
    let cfg = &ctx.config;
    let socket = match session::bind_in_range(cfg.sip.listen.ip(), cfg.rtp.ports).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "no RTP port: 503");
            call.dialog
                .reject(
                    Some(StatusCode::ServiceUnavailable),
                    Some("No media port".into()),
                )
                .ok();
            return;
        }
    };
    let local = SocketAddr::new(
        cfg.public_ip(),
        socket.local_addr().map(|a| a.port()).unwrap_or(0),
    );
    let session_id: u64 = rand::random::<u32>() as u64;
    let body = match &call.negotiated {
        Some(n) => sdp::answer(n, local, session_id),
        None => sdp::offer(local, session_id, &cfg.sip.codecs),
    };
    call.dialog.ringing(None, None).ok();
    if cfg.call.answer_delay_ms > 0
        && !ring(&mut call, Duration::from_millis(cfg.call.answer_delay_ms)).await
    {
        return;
    }
    if let Err(e) = call.dialog.accept(sdp_headers(), Some(body.into_bytes())) {
        tracing::info!(error = %e, "caller left before answer");
        return;
    }
    tracing::info!("answered");

    let negotiated = match call.negotiated {
        Some(n) => n,
        None => match wait_for_ack_answer(&mut call, &cfg.sip.codecs, cfg.sip.listen.ip()).await {
            Some(n) => n,
            None => {
                call.dialog.bye().await.ok();
                return;
            }
        },
    };
    let cancel = CancellationToken::new();
    let (media, events) = match session::start(
        socket,
        media_params(&negotiated, cfg),
        ctx.rtp.clone(),
        cancel.clone(),
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "media failed to start");
            call.dialog.bye().await.ok();
            return;
        }
    };
    let _stop_media = cancel.drop_guard();
    if call.dialog.last_remote_ack().is_some() {
        media.confirm();
    }
    let called = call.request.uri.user().unwrap_or_default().to_string();
    let language = cfg.stt.language_for(&called).to_string();
    let identity = identity::caller(
        &call.request,
        Trust {
            peer: call.trusted,
            from: cfg.sms.trust_from,
        },
    );
    let caller_user = identity.as_ref().ok().map(|i| i.user().to_string());
    let started_unix = chrono::Utc::now().timestamp();
    // The key this call's view and record go by (unique even for a repeated Call-ID).
    let key = ctx.live.start(
        &call.call_id,
        started_unix,
        &called,
        &crate::privacy::redact(caller_user.as_deref().unwrap_or("anonymous")),
        &language,
    );
    let sms_to = sms_number(&ctx, &identity).await;
    let mut conversation = Conversation::new(
        ctx.settings.clone(),
        ctx.prompts.clone(),
        language.parse().unwrap_or_default(),
        ctx.menu.clone(),
    );
    conversation.set_sms_possible(sms_to.is_some());
    let mut call_loop = CallLoop {
        conversation,
        listener: Listener::new(EndpointConfig {
            trailing_silence_ms: cfg.stt.trailing_silence_ms,
            max_utterance_ms: cfg.stt.max_utterance_ms,
            pause_ms: cfg.stt.pause_ms,
            confirm_ms: cfg.stt.barge_in_ms,
            ..Default::default()
        }),
        decodes: Decodes::default(),
        abandon: None,
        playback: Playback::default(),
        clock: None,
        replying: false,
        media,
        ctx: ctx.clone(),
        language,
        called,
        call_id: key.clone(),
        caller_user,
        sms_to,
        turn_started: None,
        heard: None,
        answered_at: Instant::now(),
        pending_transfer: None,
        done_tx: mpsc::unbounded_channel().0,
    };
    call_loop
        .run(&mut call, negotiated, local, session_id, events)
        .await;
    let outcome = call_loop.conversation.outcome().as_str();
    ctx.live.end(&key, outcome);
    ctx.metrics
        .calls
        .get_or_create(&vec![("outcome", outcome)])
        .inc();
    tracing::info!(outcome, "call over");
}

/// The caller's number in E.164 if an SMS may be offered to it (an identity we may
/// believe, a mobile, under the per-number limit, with a sender configured); why not,
/// in the log.
async fn sms_number(
    ctx: &CallContext,
    identity: &Result<Identity, identity::Unknown>,
) -> Option<E164> {
    let sms = ctx.sms.as_ref()?;
    let number = match identity {
        Ok(id) => sms.numbers().number(id).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
    .inspect_err(|reason| tracing::info!(%reason, "no SMS: caller's number unknown"))
    .ok()?;
    match sms.can_offer(&number).await {
        Ok(()) => Some(number),
        Err(e) => {
            tracing::info!(%number, reason = %e, "no SMS for this caller");
            None
        }
    }
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
    /// The flag that stops the partial decode in flight, with its id.
    abandon: Option<(u64, Abandon)>,
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
    answered_at: Instant,
    /// A transfer the conversation asked for, performed by the main loop (it needs the
    /// dialog and the media events).
    pending_transfer: Option<TransferRequest>,
    done_tx: mpsc::UnboundedSender<Done>,
}

impl CallLoop {
    async fn run(
        &mut self,
        call: &mut IncomingCall,
        negotiated: Negotiated,
        local: SocketAddr,
        session_id: u64,
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
                state = call.states.recv() => match state {
                    None | Some(DialogState::Terminated(..)) => {
                        let reason = match &state { Some(DialogState::Terminated(_, r)) => format!("{r:?}"), _ => "Gone".into() };
                        tracing::info!(%reason, turns = self.conversation.turn(), "call ended");
                        self.step(Event::HungUp).await;
                        return;
                    }
                    Some(DialogState::Updated(_, req, handle)) => {
                        let reply = if req.body.is_empty() {
                            Ok(sdp::answer(&negotiated, local, session_id))
                        } else {
                            sdp::accept(&req.body, &cfg.sip.codecs, cfg.sip.listen.ip()).map(|n| {
                                self.media.update(n.remote, n.direction.we_send());
                                tracing::info!(direction = ?n.direction, "media updated by re-INVITE");
                                sdp::answer(&n, local, session_id)
                            })
                        };
                        match reply {
                            Ok(body) => handle.respond(StatusCode::OK, sdp_headers(), Some(body.into_bytes())).await.ok(),
                            Err(e) => {
                                tracing::info!(error = %e, "re-INVITE refused");
                                handle.reply(StatusCode::NotAcceptableHere).await.ok()
                            }
                        };
                    }
                    Some(DialogState::Confirmed(..)) => self.media.confirm(),
                    Some(DialogState::Options(_, _, h)) | Some(DialogState::Info(_, _, h))
                    | Some(DialogState::Message(_, _, h)) | Some(DialogState::Notify(_, _, h)) => {
                        h.reply(StatusCode::OK).await.ok();
                    }
                    Some(DialogState::Refer(_, _, h)) | Some(DialogState::Publish(_, _, h)) => {
                        h.reply(StatusCode::NotImplemented).await.ok();
                    }
                    Some(_) => {}
                },
                ev = media_events.recv() => match ev {
                    Some(MediaEvent::Audio(pcm)) => {
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
                        }
                    }
                    Some(MediaEvent::PlaybackStarted(item)) => self.answer_started(item),
                    Some(MediaEvent::Timeout) => {
                        tracing::warn!(secs = cfg.rtp.timeout_secs, "no RTP from caller: hanging up");
                        call.dialog.bye().await.ok();
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
                if self.transfer(call, &mut media_events, request).await {
                    return;
                }
            }
        }
        call.dialog.bye().await.ok();
    }

    async fn on_done(&mut self, done: Done) {
        match done {
            Done::Transcribed(id, r) => {
                for d in self.decodes.decoded(id, r) {
                    self.hearing(d).await;
                }
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
                self.ctx
                    .live
                    .said(&self.call_id, self.since_answer(), "bot", &text);
                let language = self.language.clone();
                self.play(&text, &language);
                None
            }
            Action::PlayIn { text, language, .. } => {
                self.ctx
                    .live
                    .said(&self.call_id, self.since_answer(), "bot", &text);
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
                // The same request `voicebot understand` makes, plus the call's own facts;
                // a keypad choice carries no audio.
                let heard = self.heard.take().filter(|_| chosen_intent_id.is_none());
                let request = Request {
                    call_id: self.call_id.clone(),
                    turn,
                    text,
                    language: self.language.parse().unwrap_or(Language::Da),
                    previous_intent_id: previous_intent,
                    chosen_intent_id,
                    called_number: self.called.clone(),
                    caller_number_known: self.caller_user.is_some(),
                    minute_of_day: minute_of_day(),
                    ..heard.map_or_else(Request::default, |t| understanding::request(&t, turn))
                };
                let intents = self.ctx.intents.clone();
                let done = self.done_tx.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let r = intents.resolve(request).await.map_err(|e| e.to_string());
                    done.send(Done::Resolved(r, started.elapsed())).ok();
                });
                None
            }
            Action::Route(request) => Some(Event::Routed(self.route(&request))),
            Action::SendSms(offer) => {
                let (Some(sms), Some(to)) = (self.ctx.sms.clone(), self.sms_to.clone()) else {
                    return Some(Event::SmsFailed);
                };
                let text = crate::sms::text::compose(&offer.link, offer.sms_text.as_deref(), None);
                let (call_id, done) = (self.call_id.clone(), self.done_tx.clone());
                tokio::spawn(
                    async move {
                        let r = sms.enqueue(&call_id, &offer.intent_id, &to, &text).await;
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
            Action::Hangup => None,
        }
    }

    fn since_answer(&self) -> f32 {
        self.answered_at.elapsed().as_secs_f32()
    }
}

/// Minutes since local midnight (UTC here; opening hours use the configured zone).
fn minute_of_day() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    ((secs % 86_400) / 60) as u32
}

fn media_params(n: &Negotiated, cfg: &Config) -> MediaParams {
    MediaParams {
        law: n.law,
        payload_type: n.payload_type,
        dtmf_payload_type: n.dtmf_payload_type,
        remote: n.remote,
        ptime_ms: n.ptime_ms,
        jitter_ms: cfg.rtp.jitter_ms,
        timeout: Duration::from_secs(cfg.rtp.timeout_secs),
        sending: n.direction.we_send(),
    }
}
