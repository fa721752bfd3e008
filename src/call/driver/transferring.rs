//! Putting the caller through: the queue the conversation asked for, its opening hours,
//! the context staff see, and the transfer itself (REFER, or a bridged call).

use tokio::sync::mpsc;

use super::CallLoop;
use crate::call::conversation::{Event, Route, TransferRequest};
use crate::call::line::Line;
use crate::media::MediaEvent;
use crate::ops::live::TransferView;
use crate::ops::switchboard::url_escape;
use crate::transfer::bridge::CallerLeg;
use crate::transfer::context::TransferContext;
use crate::transfer::{self, route};

impl CallLoop {
    /// Performs a transfer; true when the call is over for us (put through, or gone).
    pub(super) async fn transfer(
        &mut self,
        line: &mut dyn Line,
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
            rate: line.audio_rate(),
            signals: line,
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

    /// Which queue, and is it open now (in the configured zone, holidays included).
    pub(super) fn route(&self, request: &TransferRequest) -> Route {
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
}
