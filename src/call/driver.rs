//! Drives one call: answers it with SDP, runs its media, and follows the dialog.
//!
//! For now the call greets the caller, keeps what the caller says in memory, ends on
//! DTMF `#`, and hangs up when media stops. The conversation replaces the greeting
//! logic; the signalling and media wiring stay here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::dialog::DialogState;
use rsipstack::sip::{Header, StatusCode};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::Config;
use crate::rtp::session::{self, MediaEvent, MediaParams, RtpCounters};
use crate::sip::sdp::{self, Negotiated};
use crate::sip::uas::IncomingCall;
use crate::stt::endpoint::{Endpoint, EndpointConfig};
use crate::stt::listener::Listener;
use crate::stt::recognizer::Recognizer;

/// Most caller audio kept in memory per call (10 minutes at 8 kHz).
const MAX_HEARD_SAMPLES: usize = 8000 * 600;

pub struct CallContext {
    pub config: Arc<Config>,
    pub rtp: Arc<RtpCounters>,
    pub greeting: Arc<Vec<i16>>,
    pub stt: Recognizer,
}

pub async fn accept_calls(mut calls: mpsc::Receiver<IncomingCall>, ctx: Arc<CallContext>) {
    while let Some(call) = calls.recv().await {
        let span = tracing::info_span!("call", call_id = %call.call_id);
        let ctx = ctx.clone();
        tokio::spawn(run(call, ctx).instrument(span));
    }
}

fn sdp_headers() -> Option<Vec<Header>> {
    Some(vec![Header::ContentType("application/sdp".into())])
}

async fn run(mut call: IncomingCall, ctx: Arc<CallContext>) {
    let cfg = &ctx.config;
    let socket = match session::bind_in_range(cfg.sip.listen.ip(), cfg.rtp.ports).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "no RTP port: 503");
            call.dialog.reject(Some(StatusCode::ServiceUnavailable), Some("No media port".into())).ok();
            return;
        }
    };
    let local = SocketAddr::new(cfg.public_ip(), socket.local_addr().map(|a| a.port()).unwrap_or(0));
    let session_id: u64 = rand::random::<u32>() as u64;
    let body = match &call.negotiated {
        Some(n) => sdp::answer(n, local, session_id),
        None => sdp::offer(local, session_id, &cfg.sip.codecs),
    };
    call.dialog.ringing(None, None).ok();
    if cfg.call.answer_delay_ms > 0 && !ring(&mut call, Duration::from_millis(cfg.call.answer_delay_ms)).await {
        return;
    }
    if let Err(e) = call.dialog.accept(sdp_headers(), Some(body.into_bytes())) {
        tracing::info!(error = %e, "caller left before answer");
        return;
    }
    tracing::info!("answered");

    let negotiated = match call.negotiated {
        Some(n) => n,
        None => match wait_for_ack_answer(&mut call, &cfg.sip.codecs).await {
            Some(n) => n,
            None => {
                call.dialog.bye().await.ok();
                return;
            }
        },
    };

    let cancel = CancellationToken::new();
    let params = media_params(&negotiated, cfg);
    let (media, mut events) = match session::start(socket, params, ctx.rtp.clone(), cancel.clone()) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "media failed to start");
            call.dialog.bye().await.ok();
            return;
        }
    };
    let _stop_media = cancel.drop_guard();
    media.play(ctx.greeting.as_ref().clone());

    let called = call.request.uri.user().unwrap_or_default().to_string();
    let language = cfg.stt.language_for(&called).to_string();
    let mut listener = Listener::new(EndpointConfig {
        trailing_silence_ms: cfg.stt.trailing_silence_ms,
        max_utterance_ms: cfg.stt.max_utterance_ms,
        ..Default::default()
    });
    let mut heard: Vec<i16> = Vec::new();
    loop {
        tokio::select! {
            state = call.states.recv() => match state {
                None => break,
                Some(DialogState::Terminated(_, reason)) => {
                    tracing::info!(?reason, heard_secs = heard.len() as f32 / 8000.0, "call ended");
                    break;
                }
                Some(DialogState::Updated(_, req, handle)) => {
                    // re-INVITE (hold, unhold, media move) or UPDATE.
                    let reply = if req.body.is_empty() {
                        Ok(sdp::answer(&negotiated, local, session_id))
                    } else {
                        sdp::parse(&req.body).and_then(|r| sdp::negotiate(&r, &cfg.sip.codecs)).map(|n| {
                            media.update(n.remote, n.direction.we_send());
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
                Some(DialogState::Options(_, _, handle)) | Some(DialogState::Info(_, _, handle))
                | Some(DialogState::Message(_, _, handle)) | Some(DialogState::Notify(_, _, handle)) => {
                    handle.reply(StatusCode::OK).await.ok();
                }
                Some(DialogState::Refer(_, _, handle)) | Some(DialogState::Publish(_, _, handle)) => {
                    handle.reply(StatusCode::NotImplemented).await.ok();
                }
                Some(_) => {}
            },
            ev = events.recv() => match ev {
                Some(MediaEvent::Audio(pcm)) => {
                    for ev in listener.push(&pcm) {
                        if let Endpoint::Utterance { audio, start_ms, end_ms, .. } = ev {
                            transcribe(&ctx, audio, &language, start_ms, end_ms);
                        }
                    }
                    if heard.len() + pcm.len() <= MAX_HEARD_SAMPLES {
                        heard.extend(pcm);
                    }
                }
                Some(MediaEvent::Dtmf(digit)) => {
                    tracing::info!(%digit, "dtmf");
                    if digit == '#' {
                        media.stop_playback();
                        call.dialog.bye().await.ok();
                        break;
                    }
                }
                Some(MediaEvent::Timeout) => {
                    tracing::warn!(secs = cfg.rtp.timeout_secs, "no RTP from caller: hanging up");
                    call.dialog.bye().await.ok();
                    break;
                }
                Some(MediaEvent::PlaybackDone) => {}
                None => break,
            },
        }
    }
}

/// Transcribes an utterance off the call's task and logs it under the call's span.
fn transcribe(ctx: &CallContext, audio: Vec<i16>, language: &str, start_ms: u64, end_ms: u64) {
    let stt = ctx.stt.clone();
    let language = language.to_string();
    let prompt = ctx.config.stt.prompt_for(&language).to_string();
    tokio::spawn(
        async move {
            match stt.transcribe_8k(&audio, &language, &prompt).await {
                Ok(t) => tracing::info!(
                    text = %t.text,
                    confidence = t.confidence,
                    decode_secs = t.decode_secs,
                    start_ms,
                    end_ms,
                    "transcript"
                ),
                Err(e) => tracing::warn!(error = %e, "utterance not transcribed"),
            }
        }
        .in_current_span(),
    );
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
    let deadline = tokio::time::Instant::now() + delay;
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
async fn wait_for_ack_answer(call: &mut IncomingCall, codecs: &[crate::audio::g711::Law]) -> Option<Negotiated> {
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
    match sdp::parse(&ack.body).and_then(|r| sdp::negotiate(&r, codecs)) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::info!(error = %e, "ACK answer unusable: hanging up");
            None
        }
    }
}
