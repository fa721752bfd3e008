//! The answering side: turns incoming transactions into calls for the call layer.
//!
//! Out-of-dialog OPTIONS (trunk keepalives) are answered here; in-dialog requests go to
//! their dialog; a new INVITE is checked against the call limit (503 + Retry-After) and
//! our codecs (488) before a dialog exists, then handed over with its negotiated media.

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;

use rsipstack::dialog::dialog::DialogStateReceiver;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use tokio::sync::mpsc;

use super::dialogs::Registration;
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
}

/// Holds one place under the call limit until the call is over.
pub struct CallSlot(Gauge);

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[derive(Clone)]
pub struct Admission {
    /// Calls in progress; also the `voicebot_calls_active` metric.
    pub active: Gauge,
    pub max_calls: usize,
    pub retry_after_secs: u32,
    pub codecs: Vec<Law>,
}

impl Admission {
    fn take_slot(&self) -> Option<CallSlot> {
        let prev = self.active.inc();
        let slot = CallSlot(self.active.clone());
        (prev < self.max_calls as i64).then_some(slot)
    }
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
    let Some(slot) = admission.take_slot() else {
        tracing::warn!(%call_id, limit = admission.max_calls, "call limit reached: 503");
        let retry = Header::Other("Retry-After".into(), admission.retry_after_secs.to_string());
        tx.reply_with(StatusCode::ServiceUnavailable, vec![retry], None)
            .await
            .ok();
        return;
    };
    let negotiated = if tx.original.body.is_empty() {
        None
    } else {
        match sdp::parse(&tx.original.body).and_then(|r| sdp::negotiate(&r, &admission.codecs)) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::info!(%call_id, error = %e, "refusing call: 488");
                let warning = Header::Other("Warning".into(), format!("304 voicebot \"{e}\""));
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
        Some(stack.contact.clone()),
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
