//! Taking a phone call: which tenant's context answers it (by the number or domain it
//! dialled), who is calling, and whether an SMS may be offered to them; then the
//! conversation ([`converse`]).

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::{converse, sip_line, CallContext, Caller};
use crate::sip::identity::{self, Identity, Trust};
use crate::sip::uas::IncomingCall;
use crate::sms::number::E164;
use crate::tenant::{Dialled, Tenants};

/// Answers each incoming call with the context of the tenant it dialled.
pub async fn accept_calls(
    mut calls: mpsc::Receiver<IncomingCall>,
    tenants: Arc<Tenants<Arc<CallContext>>>,
) {
    while let Some(call) = calls.recv().await {
        let source = call
            .source
            .map_or_else(|| "unknown".into(), |s| s.to_string());
        let span = tracing::info_span!("call", call_id = %call.call_id, %source);
        let to_user = identity::to_user(&call.request);
        let domain = call.request.uri.host_with_port.host.to_string();
        let dialled = Dialled {
            user: call.request.uri.user().unwrap_or_default(),
            to_user: to_user.as_deref(),
            domain: &domain,
        };
        let ctx = span.in_scope(|| tenants.pick(&dialled).1.clone());
        tokio::spawn(answer_phone(call, ctx).instrument(span));
    }
}

async fn answer_phone(call: IncomingCall, ctx: Arc<CallContext>) {
    let cfg = ctx.config.clone();
    let called = call.request.uri.user().unwrap_or_default().to_string();
    let language = cfg.stt.language_for(&called, &ctx.language).to_string();
    tracing::info!(tenant = %ctx.tenant, %called, %language, "call for tenant");
    let identity = identity::caller(
        &call.request,
        Trust {
            peer: call.trusted,
            from: cfg.sms.trust_from,
        },
    );
    let call_id = call.call_id.clone();
    let Some(answered) = sip_line::answer(call, cfg, ctx.rtp.clone()).await else {
        return;
    };
    let caller = Caller {
        call_id,
        called,
        language,
        user: identity.as_ref().ok().map(|i| i.user().to_string()),
        sms_to: sms_number(&ctx, &identity).await,
    };
    let mut line = answered.line;
    converse(&mut line, answered.media, answered.events, caller, ctx).await;
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
