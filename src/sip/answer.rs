//! Answering an INVITE: ringing, the SDP content type, and the late offer whose
//! answer comes in the ACK.

use std::time::Duration;

use rsipstack::dialog::dialog::DialogState;
use rsipstack::sip::Header;
use tokio::time::Instant;

use super::sdes::Crypto;
use super::sdp::{self, Negotiated};
use super::uas::IncomingCall;

pub fn sdp_headers() -> Option<Vec<Header>> {
    Some(vec![Header::ContentType("application/sdp".into())])
}

/// Rings for `delay`; false if the caller gave up (CANCEL) meanwhile.
pub async fn ring(call: &mut IncomingCall, delay: Duration) -> bool {
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

/// Late offer: our 200 carried the offer (with `offered` SRTP keys), the caller's ACK
/// carries the answer.
pub async fn wait_for_ack_answer(
    call: &mut IncomingCall,
    codecs: &[crate::audio::g711::Law],
    media_ip: std::net::IpAddr,
    offered: Option<&Crypto>,
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
    match sdp::accept(&ack.body, codecs, media_ip, call.srtp)
        .and_then(|n| sdp::answered(n, offered))
    {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::info!(error = %e, "ACK answer unusable: hanging up");
            None
        }
    }
}
