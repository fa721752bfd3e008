//! The answering side: turns incoming transactions into calls for the call layer.
//!
//! Out-of-dialog OPTIONS (trunk keepalives) are answered here; in-dialog requests go to
//! their dialog; a new INVITE is checked against who may call (`access`: 403, or 503 +
//! Retry-After), the call limit (503 + Retry-After) and our codecs (488) before a
//! dialog exists, then handed over with its source and negotiated media. While the
//! gateway drains (it is stopping), new INVITEs and OPTIONS get 503 + Retry-After, so
//! a proxy in front sends traffic elsewhere; calls in progress go on.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use rsipstack::dialog::dialog::DialogStateReceiver;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::access::{Access, Door};
use super::dialogs::Registration;
use super::digest::{self, Authenticator, Trunk, Verdict};
use super::header_value;
use super::sdes::SrtpPolicy;
use super::sdp::{self, Negotiated};
use super::stack::Stack;
use crate::audio::g711::Law;

pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY, REFER";

/// A new call, answered with 100 Trying, waiting for the call layer to ring and accept.
pub struct IncomingCall {
    pub dialog: InviteDialog,
    pub states: DialogStateReceiver,
    pub call_id: String,
    pub request: rsipstack::sip::Request,
    /// None: the INVITE had no SDP, so our 200 carries the offer and the ACK the answer.
    pub negotiated: Option<Negotiated>,
    pub slot: CallSlot,
    /// Removes the dialog from the stack when the call is dropped, however it ended.
    _registration: Registration,
    /// Where the INVITE came from (None: the transport could not tell).
    pub source: Option<SocketAddr>,
    /// The source is one of `[sip] trusted`: what it asserts about the caller counts.
    pub trusted: bool,
    /// SRTP for this call: `[sip] srtp` over TLS, off on other transports.
    pub srtp: SrtpPolicy,
}

/// Holds one place under the call limit (and an untrusted source's place under its
/// limits) until the call is over.
pub struct CallSlot {
    active: Gauge,
    untrusted: Option<(Arc<Mutex<Access>>, IpAddr)>,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.active.dec();
        if let Some((access, source)) = &self.untrusted {
            lock(access).call_ended(*source);
        }
    }
}

fn lock(access: &Mutex<Access>) -> std::sync::MutexGuard<'_, Access> {
    access.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone)]
pub struct Admission {
    /// Calls in progress; also the `voicebot_calls_active` metric.
    pub active: Gauge,
    pub max_calls: usize,
    pub retry_after_secs: u32,
    pub codecs: Vec<Law>,
    /// `[sip] srtp`, for calls over TLS.
    pub srtp: SrtpPolicy,
    /// Our media address: SDP may point at loopback only when it is loopback too.
    pub media_ip: IpAddr,
    pub access: Arc<Mutex<Access>>,
    /// INVITEs refused by an untrusted source's limits (`voicebot_sip_rate_limited`).
    pub rate_limited: Counter,
    /// Checks the digest credentials of `[[sip.trunks]]`.
    pub authenticator: Arc<Authenticator>,
    /// Cancelled when the gateway starts to drain: no new calls from then on.
    pub draining: CancellationToken,
}

impl Admission {
    /// A place under the call limit for a call from the web page (its offers are
    /// limited per client by the web side), unless the gateway is draining or full.
    pub fn web_slot(&self) -> Option<CallSlot> {
        if self.draining.is_cancelled() {
            return None;
        }
        self.take_slot(None)
    }

    fn take_slot(&self, untrusted: Option<IpAddr>) -> Option<CallSlot> {
        let prev = self.active.inc();
        let slot = CallSlot {
            active: self.active.clone(),
            untrusted: untrusted.map(|ip| (self.access.clone(), ip)),
        };
        (prev < self.max_calls as i64).then_some(slot)
    }

    /// Applies `access` to a new INVITE: Some(untrusted source) or Some(None) for a
    /// trusted one when it may go on, None when it has been answered here.
    async fn door(
        &self,
        tx: &mut Transaction,
        source: Option<SocketAddr>,
    ) -> Option<Option<IpAddr>> {
        let ip = source.map(|s| s.ip());
        let door = lock(&self.access).admit(Instant::now(), ip);
        let shown = ip.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        match door {
            Door::Trusted => Some(None),
            Door::Trunk(i) => {
                let trunk = lock(&self.access).trunk(i).cloned()?;
                self.authenticate(tx, &trunk, ip?).await.then_some(None)
            }
            Door::Untrusted => Some(ip),
            Door::Forbidden { report } => {
                if let Some(refusals) = report {
                    // The address is in the message itself: fail2ban's filter
                    // (contrib/fail2ban/voicebot.conf) reads it there.
                    tracing::warn!(refusals, "SIP source refused: {shown} (403, not trusted)");
                }
                tx.reply(StatusCode::Forbidden).await.ok();
                None
            }
            Door::Limited {
                limit,
                retry_after,
                report,
            } => {
                self.rate_limited.inc();
                if let Some(refusals) = report {
                    tracing::warn!(
                        refusals,
                        "SIP source refused: {shown} (503, {})",
                        limit.as_str()
                    );
                }
                let retry =
                    Header::Other("Retry-After".into(), retry_secs(retry_after).to_string());
                tx.reply_with(StatusCode::ServiceUnavailable, vec![retry], None)
                    .await
                    .ok();
                None
            }
        }
    }
}

impl Admission {
    /// A trunk's INVITE: true when its credentials are good; otherwise it has been
    /// answered here (401 with our challenges, or 403 for wrong credentials).
    async fn authenticate(&self, tx: &mut Transaction, trunk: &Trunk, source: IpAddr) -> bool {
        let now = SystemTime::now();
        let verdict = tx
            .original
            .headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case("Authorization"))
            .find_map(|h| digest::parse(h.value()))
            .map(|c| self.authenticator.verify(now, trunk, "INVITE", &c));
        match verdict {
            Some(Verdict::Good) => true,
            None | Some(Verdict::Stale) => {
                let stale = verdict == Some(Verdict::Stale);
                let challenges = self
                    .authenticator
                    .challenges(now, trunk, stale)
                    .into_iter()
                    .map(|c| Header::Other("WWW-Authenticate".into(), c))
                    .collect();
                tx.reply_with(StatusCode::Unauthorized, challenges, None)
                    .await
                    .ok();
                false
            }
            Some(Verdict::Bad) => {
                if let Some(refusals) = lock(&self.access).refused(Instant::now(), source) {
                    tracing::warn!(
                        refusals,
                        trunk = %trunk.name,
                        "SIP source refused: {source} (403, bad credentials)"
                    );
                }
                tx.reply(StatusCode::Forbidden).await.ok();
                false
            }
        }
    }
}

/// Whole seconds, rounded up, at least 1 (Retry-After has no fractions).
fn retry_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

pub async fn serve(
    stack: Arc<Stack>,
    mut incoming: TransactionReceiver,
    admission: Admission,
    calls: mpsc::Sender<IncomingCall>,
) {
    while let Some(mut tx) = incoming.recv().await {
        let has_to_tag = tx
            .original
            .to_header()
            .ok()
            .and_then(|t| t.tag().ok().flatten())
            .is_some();
        let new = matches!(tx.original.method, Method::Invite | Method::Options) && !has_to_tag;
        if new && admission.draining.is_cancelled() {
            let retry = Header::Other("Retry-After".into(), admission.retry_after_secs.to_string());
            tx.reply_with(StatusCode::ServiceUnavailable, vec![retry], None)
                .await
                .ok();
            continue;
        }
        match tx.original.method {
            Method::Invite if !has_to_tag => new_invite(&stack, tx, &admission, &calls).await,
            Method::Options if !has_to_tag => {
                let headers = vec![
                    Header::Other("Allow".into(), ALLOW.into()),
                    Header::Other("Accept".into(), "application/sdp".into()),
                ];
                tx.reply_with(StatusCode::OK, headers, None).await.ok();
            }
            Method::Ack => {}
            _ => route_to_dialog(&stack, tx).await,
        }
    }
}

async fn new_invite(
    stack: &Stack,
    mut tx: Transaction,
    admission: &Admission,
    calls: &mpsc::Sender<IncomingCall>,
) {
    let call_id = tx
        .original
        .call_id_header()
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let source = stack.source(&tx);
    let Some(untrusted) = admission.door(&mut tx, source).await else {
        return;
    };
    let Some(slot) = admission.take_slot(untrusted) else {
        tracing::warn!(%call_id, limit = admission.max_calls, "call limit reached: 503");
        let retry = Header::Other("Retry-After".into(), admission.retry_after_secs.to_string());
        tx.reply_with(StatusCode::ServiceUnavailable, vec![retry], None)
            .await
            .ok();
        return;
    };
    // SDES keys travel in the SDP: only TLS keeps them from eavesdroppers.
    let srtp = if stack.over_tls(&tx) {
        admission.srtp
    } else {
        SrtpPolicy::Off
    };
    let negotiated = if tx.original.body.is_empty() {
        None
    } else {
        match sdp::accept(
            &tx.original.body,
            &admission.codecs,
            admission.media_ip,
            srtp,
        ) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::info!(%call_id, error = %e, "refusing call: 488");
                // The error may quote the caller's SDP: no control characters, no quotes.
                let text = header_value::sanitize(&e.to_string(), 200).replace(['"', '\\'], "'");
                let warning =
                    Header::Other("Warning".into(), format!("304 {} \"{text}\"", super::AGENT));
                tx.reply_with(StatusCode::NotAcceptableHere, vec![warning], None)
                    .await
                    .ok();
                return;
            }
        }
    };
    let (state_tx, states) = stack.dialogs.new_dialog_state_channel();
    let dialog = match stack.dialogs.get_or_create_server_invite(
        &tx,
        state_tx,
        None,
        Some(stack.contact_for(&tx)),
    ) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "cannot create dialog");
            tx.reply(StatusCode::ServerInternalError).await.ok();
            return;
        }
    };
    let registration = Registration::new(stack.dialogs.clone(), dialog.clone());
    let request = tx.original.clone();
    let mut driver = dialog.clone();
    tokio::spawn(async move {
        // Drives the INVITE transaction: 100 Trying, retransmissions, ACK, CANCEL → 487.
        if let Err(e) = driver.handle(&mut tx).await {
            tracing::debug!(error = %e, "invite transaction ended with error");
        }
    });
    let call = IncomingCall {
        dialog,
        states,
        call_id,
        request,
        negotiated,
        slot,
        _registration: registration,
        source,
        trusted: untrusted.is_none(),
        srtp,
    };
    if calls.send(call).await.is_err() {
        tracing::error!("call layer is gone");
    }
}

/// For a UA that only places calls: route in-dialog requests (BYE, re-INVITE, ...)
/// to their dialogs and refuse everything else.
pub async fn serve_in_dialog(stack: Arc<Stack>, mut incoming: TransactionReceiver) {
    while let Some(tx) = incoming.recv().await {
        if tx.original.method == Method::Ack {
            continue;
        }
        route_to_dialog(&stack, tx).await;
    }
}

async fn route_to_dialog(stack: &Stack, mut tx: Transaction) {
    match stack.dialogs.match_dialog(&tx) {
        Some(mut dialog) => {
            tokio::spawn(async move {
                if let Err(e) = dialog.handle(&mut tx).await {
                    tracing::debug!(error = %e, "in-dialog request failed");
                }
            });
        }
        None => {
            tx.reply(StatusCode::CallTransactionDoesNotExist).await.ok();
        }
    }
}
