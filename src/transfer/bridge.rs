//! The bridged transfer: we call the queue ourselves (a B2BUA leg) and carry audio
//! between the caller and the agent until either hangs up.
//!
//! Audio crosses the bridge as 8 kHz PCM, each leg encoding with its own law, so a
//! PCMU caller and a PCMA switchboard hear each other without either knowing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::dialog::DialogStateReceiver;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Uri};
use rsipstack::transport::SipAddr;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::audio::g711::Law;
use crate::audio::resample::{f32_to_i16, i16_to_f32, Streaming};
use crate::media::{MediaEvent, MediaHandle};
use crate::rtp::counters::RtpCounters;
use crate::rtp::session::{self, MediaParams};
use crate::sip::dialogs::Registration;
use crate::sip::sdp;
use crate::sip::stack::Stack;

#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("queue answered {0}")]
    Status(u16),
    #[error("queue did not answer within {0:?}")]
    NoAnswer(Duration),
    #[error("queue URI {0:?} cannot be called directly (tel: needs [transfer] outbound_proxy)")]
    Unroutable(String),
    #[error("SIP: {0}")]
    Sip(String),
    #[error("media: {0}")]
    Media(String),
}

/// What the outbound call needs from config.
#[derive(Clone)]
pub struct DialSettings {
    pub codecs: Vec<Law>,
    pub rtp_ip: std::net::IpAddr,
    pub public_ip: std::net::IpAddr,
    pub rtp_ports: (u16, u16),
    pub jitter_ms: u32,
    pub media_timeout: Duration,
    pub ring_timeout: Duration,
    pub outbound_proxy: Option<String>,
}

/// Our call to the queue, answered and with media running.
pub struct AgentLeg {
    pub dialog: InviteDialog,
    pub states: DialogStateReceiver,
    pub media: MediaHandle,
    pub events: mpsc::UnboundedReceiver<MediaEvent>,
    pub law: Law,
    _media: DropGuard,
    /// Takes the agent's dialog out of the stack when the leg is dropped.
    _registration: Registration,
}

/// Where the INVITE goes: a sip: URI as configured; a tel: number through the proxy.
fn target(queue_uri: &str, proxy: Option<&str>) -> Result<(Uri, Option<SipAddr>), DialError> {
    let unroutable = || DialError::Unroutable(queue_uri.to_string());
    if let Some(number) = queue_uri.strip_prefix("tel:") {
        let proxy = proxy.ok_or_else(unroutable)?;
        let proxy_uri = Uri::try_from(proxy).map_err(|_| unroutable())?;
        let number = number.split(';').next().unwrap_or_default();
        let uri =
            Uri::try_from(format!("sip:{number}@{};user=phone", proxy_uri.host_with_port).as_str())
                .map_err(|_| unroutable())?;
        return Ok((uri, SipAddr::try_from(&proxy_uri).ok()));
    }
    let uri = Uri::try_from(queue_uri).map_err(|_| unroutable())?;
    let destination = match proxy {
        Some(p) => Some(
            Uri::try_from(p)
                .ok()
                .and_then(|u| SipAddr::try_from(&u).ok())
                .ok_or_else(unroutable)?,
        ),
        None => None,
    };
    Ok((uri, destination))
}

/// INVITEs the queue with our context headers and waits (up to the ring timeout) for
/// an answer. `caller_user` is presented as the From user, so the agent's phone shows
/// who is calling.
pub async fn dial(
    stack: &Stack,
    queue_uri: &str,
    headers: Vec<Header>,
    caller_user: Option<&str>,
    settings: &DialSettings,
    counters: Arc<RtpCounters>,
) -> Result<AgentLeg, DialError> {
    let (callee, destination) = target(queue_uri, settings.outbound_proxy.as_deref())?;
    let socket = session::bind_in_range(settings.rtp_ip, settings.rtp_ports)
        .await
        .map_err(|e| DialError::Media(e.to_string()))?;
    let port = socket
        .local_addr()
        .map_err(|e| DialError::Media(e.to_string()))?
        .port();
    let offer = sdp::offer(
        SocketAddr::new(settings.public_ip, port),
        rand::random::<u32>() as u64,
        &settings.codecs,
        None,
    );
    let user = caller_user
        .filter(|u| u.chars().all(|c| c.is_ascii_alphanumeric() || c == '+'))
        .unwrap_or("voicebot");
    let from = Uri::try_from(format!("sip:{user}@{}", stack.local).as_str())
        .map_err(|e| DialError::Sip(e.to_string()))?;
    let invite = InviteOption {
        callee,
        caller: from,
        contact: stack.contact.clone(),
        destination,
        content_type: Some("application/sdp".into()),
        offer: Some(offer.into_bytes()),
        headers: Some(headers),
        ..Default::default()
    };
    let (state_tx, states) = stack.dialogs.new_dialog_state_channel();
    // Dropping the INVITE future on timeout CANCELs it (rsipstack's dialog guard).
    let (dialog, response) = tokio::time::timeout(
        settings.ring_timeout,
        stack.dialogs.do_invite(invite, state_tx),
    )
    .await
    .map_err(|_| DialError::NoAnswer(settings.ring_timeout))?
    .map_err(|e| DialError::Sip(e.to_string()))?;
    let status = response
        .as_ref()
        .map_or(0, |r| u16::from(r.status_code.clone()));
    let answer = match response {
        Some(r) if (200..300).contains(&status) => r,
        _ => return Err(DialError::Status(status)),
    };
    // From here every return (an error after our BYE, or the leg's end) removes it.
    let registration = Registration::new(stack.dialogs.clone(), dialog.clone());
    let negotiated =
        match sdp::parse(&answer.body).and_then(|r| sdp::negotiate(&r, &settings.codecs)) {
            Ok(n) => n,
            Err(e) => {
                dialog.bye().await.ok();
                return Err(DialError::Media(format!(
                    "queue's SDP answer unusable: {e}"
                )));
            }
        };
    let cancel = CancellationToken::new();
    let params = MediaParams {
        law: negotiated.law,
        payload_type: negotiated.payload_type,
        dtmf_payload_type: negotiated.dtmf_payload_type,
        remote: negotiated.remote,
        ptime_ms: negotiated.ptime_ms,
        jitter_ms: settings.jitter_ms,
        timeout: settings.media_timeout,
        sending: negotiated.direction.we_send(),
        srtp: None,
        echo_gate: false,
        echo_cancel: false,
    };
    let (media, events) = match session::start(socket, params, counters, cancel.clone()) {
        Ok(m) => m,
        Err(e) => {
            dialog.bye().await.ok();
            return Err(DialError::Media(e.to_string()));
        }
    };
    // The queue answered our INVITE: its SDP is where it wants our audio.
    media.confirm();
    Ok(AgentLeg {
        dialog,
        states,
        media,
        events,
        law: negotiated.law,
        _media: cancel.drop_guard(),
        _registration: registration,
    })
}

/// Who ended a bridged call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeEnd {
    CallerHungUp,
    AgentHungUp,
    /// One side's media stopped (no RTP for the media timeout).
    MediaTimeout,
}

/// The caller's signalling during a transfer, whatever the line.
#[async_trait::async_trait]
pub trait CallerSignals: Send {
    /// Waits for the caller's next signal (answering in-call requests on the way);
    /// true when the caller is gone.
    async fn gone(&mut self) -> bool;
    async fn hang_up(&mut self);
    /// The caller's SIP dialog and its requests, for a REFER; None on a line that
    /// cannot be referred (a web call).
    fn dialog(&mut self) -> Option<(&InviteDialog, &mut DialogStateReceiver)>;
}

/// The caller's side of the bridge, lent by the call driver.
pub struct CallerLeg<'a> {
    pub signals: &'a mut dyn CallerSignals,
    /// The rate of the caller's audio; the agent's leg is 8 kHz.
    pub rate: u32,
    pub media: &'a MediaHandle,
    pub events: &'a mut mpsc::UnboundedReceiver<MediaEvent>,
}

/// Carries audio and DTMF both ways until one side hangs up, then hangs up the other.
pub async fn run(caller: CallerLeg<'_>, mut agent: AgentLeg) -> BridgeEnd {
    caller.media.stop_playback();
    // What comes back now is the person's voice, not the bot's.
    caller.media.echo_gate(false);
    let mut to_agent = Streaming::new(caller.rate, 8_000);
    let end = loop {
        tokio::select! {
            ev = caller.events.recv() => match ev {
                Some(MediaEvent::Audio(pcm)) if caller.rate == 8_000 => agent.media.play(pcm),
                Some(MediaEvent::Audio(pcm)) => {
                    agent.media.play(f32_to_i16(&to_agent.push(&i16_to_f32(&pcm))));
                }
                Some(MediaEvent::Dtmf(d)) => agent.media.send_dtmf(d),
                Some(
                    MediaEvent::PlaybackDone
                    | MediaEvent::PlaybackStarted(_)
                    | MediaEvent::Echo(_),
                ) => {}
                Some(MediaEvent::Timeout) | None => break BridgeEnd::MediaTimeout,
            },
            ev = agent.events.recv() => match ev {
                Some(MediaEvent::Audio(pcm)) => caller.media.play(pcm),
                Some(MediaEvent::Dtmf(d)) => caller.media.send_dtmf(d),
                Some(
                    MediaEvent::PlaybackDone
                    | MediaEvent::PlaybackStarted(_)
                    | MediaEvent::Echo(_),
                ) => {}
                Some(MediaEvent::Timeout) | None => break BridgeEnd::MediaTimeout,
            },
            gone = caller.signals.gone() => if gone {
                break BridgeEnd::CallerHungUp;
            },
            st = agent.states.recv() => if super::ended(st).await {
                break BridgeEnd::AgentHungUp;
            },
        }
    };
    if end != BridgeEnd::AgentHungUp {
        agent.dialog.bye().await.ok();
    }
    if end != BridgeEnd::CallerHungUp {
        caller.signals.hang_up().await;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_queues_are_called_as_written_and_tel_queues_through_the_proxy() {
        let (uri, dest) = target("sip:affald@192.0.2.10:5080", None).unwrap();
        assert_eq!(uri.to_string(), "sip:affald@192.0.2.10:5080");
        assert!(dest.is_none());
        let (uri, dest) = target("tel:+4546311000", Some("sip:192.0.2.1:5060")).unwrap();
        assert_eq!(uri.to_string(), "sip:+4546311000@192.0.2.1:5060;user=phone");
        assert_eq!(dest.unwrap().addr.to_string(), "192.0.2.1:5060");
        assert!(matches!(
            target("tel:+4546311000", None),
            Err(DialError::Unroutable(_))
        ));
    }
}
