//! Putting a caller through to a person: which queue (`route`, with opening hours and
//! holidays from `hours`), how (`refer` first, `bridge` if that fails), and what the
//! switchboard learns (`context`). A transfer never drops the caller: every failure
//! comes back as `Outcome::Failed` for the conversation to apologise and end politely.

pub mod bridge;
pub mod context;
pub mod hours;
pub mod refer;
pub mod route;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, ReferTo, StatusCode};
use tokio::time::Instant;

use self::bridge::{AgentLeg, BridgeEnd, CallerLeg, DialSettings};
use self::context::TransferContext;
use self::refer::{Progress, ReferTracker};
use self::route::{Queue, Router};
use crate::media::MediaEvent;
use crate::rtp::counters::RtpCounters;
use crate::sip::stack::Stack;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// REFER, then a bridge if the REFER fails.
    Refer,
    Bridge,
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The caller's phone reached the queue itself; we are out of the call.
    Referred,
    /// We carried the call to the agent; it is over now.
    Bridged(BridgeEnd),
    CallerLeft,
    /// Nobody reached: what was tried, for the log.
    Failed(String),
}

/// `voicebot_transfers_total{method, result}`.
pub type TransferCounters = Family<Vec<(&'static str, &'static str)>, Counter>;

#[derive(Clone)]
pub struct Transferer {
    pub stack: Arc<Stack>,
    pub router: Router,
    pub method: Method,
    pub notify_timeout: Duration,
    /// Longest Refer-To we send (see `TransferContext::refer_to`).
    pub refer_to_max: usize,
    pub dial: DialSettings,
    pub counters: TransferCounters,
    pub rtp: Arc<RtpCounters>,
}

impl Transferer {
    fn count(&self, method: &'static str, result: &'static str) {
        self.counters
            .get_or_create(&vec![("method", method), ("result", result)])
            .inc();
    }

    pub async fn transfer(
        &self,
        mut caller: CallerLeg<'_>,
        queue: &Queue,
        context: &TransferContext,
        caller_user: Option<&str>,
    ) -> Outcome {
        let mut tried = Vec::new();
        if let (Method::Refer, Some((dialog, states))) = (self.method, caller.signals.dialog()) {
            match self
                .refer(dialog, states, caller.events, queue, context)
                .await
            {
                Ok(()) => {
                    self.count("refer", "success");
                    return Outcome::Referred;
                }
                Err(ReferEnd::CallerLeft) => return Outcome::CallerLeft,
                Err(ReferEnd::Failed(why)) => {
                    tracing::info!(queue = %queue.name, %why, "REFER failed: bridging instead");
                    self.count("refer", "failed");
                    tried.push(format!("REFER: {why}"));
                }
            }
        }
        let headers: Vec<Header> = context
            .headers()
            .into_iter()
            .map(|(n, v)| Header::Other(n.into(), v))
            .collect();
        let dialing = bridge::dial(
            &self.stack,
            &queue.uri,
            headers,
            caller_user,
            &self.dial,
            self.rtp.clone(),
        );
        match wait_while_dialing(&mut caller, dialing).await {
            Dialed::Answered(agent) => {
                self.count("bridge", "success");
                tracing::info!(queue = %queue.name, law = ?agent.law, "bridged to the queue");
                let end = bridge::run(caller, *agent).await;
                tracing::info!(?end, "bridged call ended");
                Outcome::Bridged(end)
            }
            Dialed::CallerLeft => Outcome::CallerLeft,
            Dialed::Failed(e) => {
                self.count("bridge", "failed");
                tried.push(format!("bridge: {e}"));
                Outcome::Failed(tried.join("; "))
            }
        }
    }

    /// Sends the REFER and follows its NOTIFYs to a verdict.
    async fn refer(
        &self,
        dialog: &InviteDialog,
        states: &mut DialogStateReceiver,
        events: &mut tokio::sync::mpsc::UnboundedReceiver<MediaEvent>,
        queue: &Queue,
        context: &TransferContext,
    ) -> Result<(), ReferEnd> {
        let (refer_to, omitted) = match &queue.public_uri {
            Some(public) => context.public_refer_to(public, self.refer_to_max),
            None => context.refer_to(&queue.uri, self.refer_to_max),
        };
        if !omitted.is_empty() {
            tracing::info!(?omitted, "Refer-To too long for these context headers");
        }
        let referred_by = Header::Other("Referred-By".into(), format!("<{}>", self.stack.contact));
        let mut tracker = ReferTracker::new(std::time::Instant::now(), self.notify_timeout);
        tracing::info!(queue = %queue.name, %refer_to, "REFER");
        let response = dialog
            .refer(ReferTo::new(refer_to), Some(vec![referred_by]), None)
            .await;
        let status = match response {
            Ok(Some(r)) => Some(u16::from(r.status_code)),
            Ok(None) => None,
            Err(e) => {
                tracing::info!(error = %e, "REFER not answered");
                None
            }
        };
        tracker.on_refer_response(status);
        loop {
            match tracker.progress() {
                Progress::Succeeded => break,
                Progress::Failed(f) => return Err(ReferEnd::Failed(format!("{f:?}"))),
                Progress::Waiting => {}
            }
            let deadline = tracker.deadline().map(Instant::from_std);
            let timer = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = timer => { tracker.on_timer(std::time::Instant::now()); }
                ev = events.recv() => if matches!(ev, None | Some(MediaEvent::Timeout)) {
                    return Err(ReferEnd::CallerLeft);
                },
                st = states.recv() => match st {
                    None | Some(DialogState::Terminated(..)) => return Err(ReferEnd::CallerLeft),
                    Some(DialogState::Notify(_, req, h)) => {
                        h.reply(StatusCode::OK).await.ok();
                        let sub_state = req
                            .headers
                            .iter()
                            .find(|h| h.name().eq_ignore_ascii_case("Subscription-State"))
                            .map(|h| h.value().to_string());
                        let p = tracker.on_notify(&req.body, sub_state.as_deref());
                        tracing::info!(sipfrag = %String::from_utf8_lossy(&req.body).lines().next().unwrap_or(""),
                            progress = ?p, "REFER progress");
                    }
                    other => if ended(other).await {
                        return Err(ReferEnd::CallerLeft);
                    },
                },
            }
        }
        // RFC 5589: the transferor ends its dialog once the transfer succeeded; give
        // the caller's phone a moment to do it first, so our BYE does not cross theirs.
        let left = tokio::time::timeout(Duration::from_secs(2), async {
            while !ended(states.recv().await).await {}
        })
        .await;
        if left.is_err() {
            dialog.bye().await.ok();
        }
        Ok(())
    }
}

enum ReferEnd {
    CallerLeft,
    Failed(String),
}

enum Dialed {
    Answered(Box<AgentLeg>),
    CallerLeft,
    Failed(String),
}

/// Rings the queue while watching the caller, who may hang up meanwhile.
async fn wait_while_dialing(
    caller: &mut CallerLeg<'_>,
    dialing: impl std::future::Future<Output = Result<AgentLeg, bridge::DialError>>,
) -> Dialed {
    tokio::pin!(dialing);
    loop {
        tokio::select! {
            r = &mut dialing => return match r {
                Ok(agent) => Dialed::Answered(Box::new(agent)),
                Err(e) => Dialed::Failed(e.to_string()),
            },
            ev = caller.events.recv() => if matches!(ev, None | Some(MediaEvent::Timeout)) {
                return Dialed::CallerLeft;
            },
            gone = caller.signals.gone() => if gone {
                return Dialed::CallerLeft;
            },
        }
    }
}

/// Answers an in-dialog request during a transfer or bridge; true when the dialog is
/// over. Onward REFERs are refused (only configured queues are targets); a re-INVITE
/// (hold) is refused too, which leaves the session as it was (RFC 3261 §14.2).
pub(crate) async fn ended(state: Option<DialogState>) -> bool {
    match state {
        None | Some(DialogState::Terminated(..)) => return true,
        Some(DialogState::Refer(_, _, h)) => {
            h.reply(StatusCode::Forbidden).await.ok();
        }
        Some(DialogState::Options(_, _, h))
        | Some(DialogState::Info(_, _, h))
        | Some(DialogState::Notify(_, _, h))
        | Some(DialogState::Message(_, _, h)) => {
            h.reply(StatusCode::OK).await.ok();
        }
        Some(DialogState::Updated(_, _, h)) | Some(DialogState::Publish(_, _, h)) => {
            h.reply(StatusCode::NotAcceptableHere).await.ok();
        }
        Some(_) => {}
    }
    false
}
