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
use rsipstack::sip::{Header, StatusCode};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::conversation::{Action, Conversation, Event, Route, Settings, TransferRequest};
use super::decoding::{Decodes, Do, Speech};
use super::menu::Menu;
use super::playback::Playback;
use super::prompts::PromptSet;
use super::turn_metrics::{TurnClock, TurnMetrics};
use super::understanding::{self, Understanding};
use crate::config::Config;
use crate::config::Voice;
use crate::intent::client::IntentResolver;
use crate::intent::resolution::{Action as IntentAction, Kind, Language, Request, Resolution};
use crate::ops::live::{LiveCalls, TransferView};
use crate::ops::switchboard::url_escape;
use crate::rtp::session::{self, MediaEvent, MediaHandle, MediaParams, RtpCounters};
use crate::sip::identity::{self, Identity, Trust};
use crate::sip::sdp::{self, Negotiated};
use crate::sip::uas::IncomingCall;
use crate::sms::number::E164;
use crate::sms::Sms;
use crate::stt::endpoint::{Endpoint, EndpointConfig};
use crate::stt::listener::Listener;
use crate::stt::recognizer::{Abandon, Recognizer, Transcript};
use crate::transfer::bridge::CallerLeg;
use crate::transfer::context::TransferContext;
use crate::transfer::{self, route, Transferer};
use crate::tts::cache::{self, PromptCache};

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

fn sdp_headers() -> Option<Vec<Header>> {
    Some(vec![Header::ContentType("application/sdp".into())])
}

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
            }
            if let Some(request) = self.pending_transfer.take() {
                if self.transfer(call, &mut media_events, request).await {
                    return;
                }
            }
        }
        call.dialog.bye().await.ok();
    }

    /// Performs a transfer; true when the call is over for us (put through, or gone).
    async fn transfer(
        &mut self,
        call: &mut IncomingCall,
        media_events: &mut mpsc::UnboundedReceiver<MediaEvent>,
        request: TransferRequest,
    ) -> bool {
        let ctx = self.ctx.clone();
        let queue = request
            .queue
            .as_deref()
            .and_then(|q| ctx.transfer.router.queue(q));
        let Some(queue) = queue else {
            tracing::error!(?request, "transfer without a routed queue");
            self.step(Event::TransferFailed).await;
            return false;
        };
        let context = TransferContext {
            call_id: self.call_id.clone(),
            topic: request.topic.clone(),
            intent_id: request.intent_id.clone(),
            reason: request.reason.as_str().into(),
            page: Some(format!(
                "{}/switchboard/calls/{}",
                ctx.switchboard_url,
                url_escape(&self.call_id)
            )),
        };
        let view = |method: &str, result: &str| TransferView {
            queue: queue.name.clone(),
            reason: request.reason.as_str().into(),
            method: method.into(),
            result: result.into(),
        };
        ctx.live.transfer(&self.call_id, view("", "trying"));
        let caller = CallerLeg {
            dialog: &call.dialog,
            states: &mut call.states,
            media: &self.media,
            events: media_events,
        };
        let outcome = ctx
            .transfer
            .transfer(caller, queue, &context, self.caller_user.as_deref())
            .await;
        tracing::info!(queue = %queue.name, ?outcome, "transfer over");
        match outcome {
            transfer::Outcome::Referred => {
                ctx.live.transfer(&self.call_id, view("refer", "success"));
                self.step(Event::TransferDone).await;
            }
            transfer::Outcome::Bridged(end) => {
                ctx.live
                    .transfer(&self.call_id, view("bridge", &format!("success, {end:?}")));
                self.step(Event::TransferDone).await;
            }
            transfer::Outcome::CallerLeft => self.step(Event::HungUp).await,
            transfer::Outcome::Failed(why) => {
                ctx.live
                    .transfer(&self.call_id, view("", &format!("failed: {why}")));
                self.step(Event::TransferFailed).await;
                return false;
            }
        }
        true
    }

    async fn on_endpoint(&mut self, ep: Endpoint) {
        match ep {
            Endpoint::SpeechStart { .. } | Endpoint::Noise { .. } => {}
            Endpoint::SpeechConfirmed { .. } => {
                if self.conversation.interruptible() && self.media.is_playing() {
                    tracing::info!("barge-in");
                    self.ctx.metrics.barge_ins.inc();
                }
                self.step(Event::SpeechConfirmed).await;
            }
            Endpoint::Resumed { .. } => {
                if let Some(id) = self.decodes.resumed() {
                    if let Some((_, flag)) = self.abandon.as_ref().filter(|(i, _)| *i == id) {
                        flag.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            Endpoint::Pause { audio, end_ms } => {
                let idle = self.ctx.stt.has_idle_worker();
                if let Some(d) = self.decodes.pause(Speech { audio, end_ms }, idle) {
                    self.hearing(d).await;
                }
            }
            Endpoint::Utterance { audio, end_ms, .. } => {
                let now = Instant::now();
                self.step(Event::UtteranceEnded).await;
                if !self.conversation.awaits_transcript() {
                    tracing::debug!(end_ms, "speech over the bot's audio, not a turn");
                    return;
                }
                let silence = self.listener.now_ms().saturating_sub(end_ms);
                let endpointing = silence + self.ctx.config.rtp.jitter_ms as u64;
                self.clock = Some(TurnClock::start(
                    now.into_std(),
                    Duration::from_millis(endpointing),
                ));
                self.turn_started = Some(now);
                self.ctx.metrics.turns.inc();
                if let Some(d) = self.decodes.utterance(Speech { audio, end_ms }) {
                    self.hearing(d).await;
                }
            }
        }
    }

    /// Does what the call's decode schedule asks: submit a decode, or take a transcript.
    async fn hearing(&mut self, d: Do<Result<Transcript, String>>) {
        match d {
            Do::Decode { id, audio, partial } => {
                let turn = self
                    .ctx
                    .understanding
                    .turn(&self.language, self.conversation.turn());
                let abandon = partial.then(Abandon::default);
                self.abandon = abandon.clone().map(|a| (id, a));
                let pending = match self.ctx.stt.submit_8k(&audio, turn, abandon) {
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
                if let Some(clock) = &mut self.clock {
                    clock.heard(std::time::Instant::now(), early);
                }
                self.ctx
                    .live
                    .said(&self.call_id, self.since_answer(), "caller", &t.text);
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
                tracing::warn!(error = %e, "utterance not transcribed");
                self.step(Event::TranscriptFailed).await;
            }
        }
    }

    /// A playback item's first packet is on the wire: if it answers the turn, the
    /// turn is over.
    fn answer_started(&mut self, item: u64) {
        let Some(clock) = self.clock.take_if(|c| c.answer_item == Some(item)) else {
            return;
        };
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

    /// Which queue, and is it open now (in the configured zone, holidays included).
    fn route(&self, request: &TransferRequest) -> Route {
        let router = &self.ctx.transfer.router;
        let at = router.local_time(chrono::Utc::now());
        let lang = self.language.as_str();
        match router.route(request.topic.as_deref(), at) {
            None => Route::NoQueue,
            Some(route::Route::Open(q)) => Route::Open {
                queue: q.name.clone(),
                spoken: q.spoken(lang).into(),
            },
            Some(route::Route::Closed { queue, reopens }) => {
                tracing::info!(queue = %queue.name, local = %at, ?reopens, "queue closed");
                Route::Closed {
                    spoken: queue.spoken(lang).into(),
                    hours: queue.hours.describe(lang),
                }
            }
        }
    }

    /// Queues `text` after whatever is queued; the turn's first reply is its answer.
    fn play(&mut self, text: &str, language: &str) {
        let voice = self.ctx.voice(language).clone();
        let item = match self.ctx.tts.speak(text, &voice) {
            Ok(cache::Speech::Cached(pcm)) => self.playback.ready(pcm.as_ref().clone()),
            Ok(cache::Speech::Streaming(mut rx)) => {
                let item = self.playback.streaming();
                let done = self.done_tx.clone();
                tokio::spawn(async move {
                    while let Some(pcm) = rx.recv().await {
                        done.send(Done::Spoken { item, pcm }).ok();
                    }
                    done.send(Done::SynthesisOver { item }).ok();
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
    fn release_audio(&mut self) {
        for r in self.playback.release() {
            self.media.play_marked(r.pcm, r.mark);
        }
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

/// Rings for `delay`; false if the caller gave up (CANCEL) meanwhile.
async fn ring(call: &mut IncomingCall, delay: Duration) -> bool {
    let deadline = Instant::now() + delay;
    loop {
        match tokio::time::timeout_at(deadline, call.states.recv()).await {
            Err(_) => return true,
            Ok(Some(DialogState::Terminated(_, reason))) => {
                tracing::info!(?reason, "caller gave up while ringing");
                return false;
            }
            Ok(Some(_)) => {}
            Ok(None) => return false,
        }
    }
}

/// Late offer: our 200 carried the offer, the caller's ACK carries the answer.
async fn wait_for_ack_answer(
    call: &mut IncomingCall,
    codecs: &[crate::audio::g711::Law],
    media_ip: std::net::IpAddr,
) -> Option<Negotiated> {
    loop {
        match tokio::time::timeout(Duration::from_secs(32), call.states.recv()).await {
            Ok(Some(DialogState::Confirmed(..))) => break,
            Ok(Some(DialogState::Terminated(_, reason))) => {
                tracing::info!(?reason, "call ended before ACK");
                return None;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
    let ack = call.dialog.last_remote_ack()?;
    match sdp::accept(&ack.body, codecs, media_ip) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::info!(error = %e, "ACK answer unusable: hanging up");
            None
        }
    }
}
