//! A phone caller's line: answering the INVITE (SDP, ringing, the ACK) and starting
//! its RTP, then the dialog's in-call requests (re-INVITE, OPTIONS, BYE) while the
//! conversation runs, and the transfer by REFER or a bridge.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::StatusCode;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::line::{Line, Signal};
use crate::config::Config;
use crate::media::{MediaEvent, MediaHandle};
use crate::rtp::counters::RtpCounters;
use crate::rtp::session::{self, MediaParams};
use crate::sip::answer::{ring, sdp_headers, wait_for_ack_answer};
use crate::sip::sdes::{Crypto, MasterKey, SrtpPolicy, Suite};
use crate::sip::sdp::{self, Negotiated};
use crate::sip::uas::IncomingCall;
use crate::transfer::{self, bridge::CallerSignals};

pub struct SipLine {
    pub call: IncomingCall,
    negotiated: Negotiated,
    local: SocketAddr,
    session_id: u64,
    config: Arc<Config>,
    /// Stops the RTP task when the line is dropped.
    _media: DropGuard,
}

/// A phone call answered, with its media running.
pub struct Answered {
    pub line: SipLine,
    pub media: MediaHandle,
    pub events: mpsc::UnboundedReceiver<MediaEvent>,
}

/// Answers the call (after ringing for the configured delay) and starts its RTP;
/// None when the caller left first or media could not start (answered with an error
/// or a BYE as fits).
pub async fn answer(
    mut call: IncomingCall,
    config: Arc<Config>,
    rtp: Arc<RtpCounters>,
) -> Option<Answered> {
    let cfg = &config;
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
            return None;
        }
    };
    let local = SocketAddr::new(
        cfg.public_ip(),
        socket.local_addr().map(|a| a.port()).unwrap_or(0),
    );
    let session_id: u64 = rand::random::<u32>() as u64;
    let offered = (call.srtp != SrtpPolicy::Off).then(|| Crypto {
        tag: 1,
        suite: Suite::AesCm128HmacSha1_80,
        key: MasterKey::random(),
    });
    let body = match &call.negotiated {
        Some(n) => sdp::answer(n, local, session_id),
        None => sdp::offer(local, session_id, &cfg.sip.codecs, offered.as_ref()),
    };
    call.dialog.ringing(None, None).ok();
    if cfg.call.answer_delay_ms > 0
        && !ring(&mut call, Duration::from_millis(cfg.call.answer_delay_ms)).await
    {
        return None;
    }
    if let Err(e) = call.dialog.accept(sdp_headers(), Some(body.into_bytes())) {
        tracing::info!(error = %e, "caller left before answer");
        return None;
    }
    tracing::info!("answered");

    let negotiated = match call.negotiated {
        Some(n) => n,
        None => match wait_for_ack_answer(
            &mut call,
            &cfg.sip.codecs,
            cfg.sip.listen.ip(),
            offered.as_ref(),
        )
        .await
        {
            Some(n) => n,
            None => {
                call.dialog.bye().await.ok();
                return None;
            }
        },
    };
    let cancel = CancellationToken::new();
    let (media, events) =
        match session::start(socket, media_params(&negotiated, cfg), rtp, cancel.clone()) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "media failed to start");
                call.dialog.bye().await.ok();
                return None;
            }
        };
    if call.dialog.last_remote_ack().is_some() {
        media.confirm();
    }
    Some(Answered {
        line: SipLine {
            call,
            negotiated,
            local,
            session_id,
            config: config.clone(),
            _media: cancel.drop_guard(),
        },
        media,
        events,
    })
}

#[async_trait]
impl Line for SipLine {
    fn channel(&self) -> &'static str {
        "sip"
    }

    async fn signal(&mut self, media: &MediaHandle) -> Signal {
        let cfg = &self.config;
        match self.call.states.recv().await {
            None => Signal::Gone("Gone".into()),
            Some(DialogState::Terminated(_, r)) => Signal::Gone(format!("{r:?}")),
            Some(DialogState::Updated(_, req, handle)) => {
                let reply = if req.body.is_empty() {
                    Ok(sdp::answer(&self.negotiated, self.local, self.session_id))
                } else {
                    let srtp = self.call.srtp;
                    sdp::accept(&req.body, &cfg.sip.codecs, cfg.sip.listen.ip(), srtp)
                        .and_then(|n| sdp::same_keys(n, self.negotiated.srtp))
                        .map(|n| {
                            media.update(n.remote, n.direction.we_send());
                            tracing::info!(direction = ?n.direction, "media updated by re-INVITE");
                            sdp::answer(&n, self.local, self.session_id)
                        })
                };
                match reply {
                    Ok(body) => handle
                        .respond(StatusCode::OK, sdp_headers(), Some(body.into_bytes()))
                        .await
                        .ok(),
                    Err(e) => {
                        tracing::info!(error = %e, "re-INVITE refused");
                        handle.reply(StatusCode::NotAcceptableHere).await.ok()
                    }
                };
                Signal::Handled
            }
            Some(DialogState::Confirmed(..)) => Signal::Confirmed,
            Some(DialogState::Options(_, _, h))
            | Some(DialogState::Info(_, _, h))
            | Some(DialogState::Message(_, _, h))
            | Some(DialogState::Notify(_, _, h)) => {
                h.reply(StatusCode::OK).await.ok();
                Signal::Handled
            }
            Some(DialogState::Refer(_, _, h)) | Some(DialogState::Publish(_, _, h)) => {
                h.reply(StatusCode::NotImplemented).await.ok();
                Signal::Handled
            }
            Some(_) => Signal::Handled,
        }
    }
}

#[async_trait]
impl CallerSignals for SipLine {
    async fn gone(&mut self) -> bool {
        transfer::ended(self.call.states.recv().await).await
    }

    async fn hang_up(&mut self) {
        self.call.dialog.bye().await.ok();
    }

    fn dialog(&mut self) -> Option<(&InviteDialog, &mut DialogStateReceiver)> {
        Some((&self.call.dialog, &mut self.call.states))
    }
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
        srtp: n.srtp,
        echo_gate: cfg.rtp.echo_suppression,
        echo_cancel: cfg.rtp.echo_cancellation,
    }
}
