//! The task that empties the outbox: submits what is due, records what happened,
//! applies delivery receipts, and sleeps until the next message falls due or an
//! enqueue wakes it. A failing SMSC or provider only reschedules messages; nothing here
//! ends the task but cancellation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::metrics::SmsMetrics;
use super::outbox::{AfterFailure, Message, Status};
use super::receipt::Receipt;
use super::retry::RetryPolicy;
use super::submit::{Outgoing, SendError, Submit};
use super::SharedOutbox;

/// How long to wait before touching the outbox again after it failed (disk full, ...).
const STORAGE_PAUSE: Duration = Duration::from_secs(5);

pub(super) struct Driver {
    pub outbox: SharedOutbox,
    pub submit: Arc<dyn Submit>,
    pub receipts: mpsc::UnboundedReceiver<Receipt>,
    pub wake: Arc<Notify>,
    pub policy: RetryPolicy,
    pub metrics: SmsMetrics,
    pub cancel: CancellationToken,
}

impl Driver {
    pub async fn run(mut self) {
        loop {
            let next = match self.send_due().await {
                Ok(()) => self.outbox.run(|o| o.next_due()).await,
                Err(e) => Err(e),
            };
            let next = next.unwrap_or_else(|e| {
                tracing::error!(error = %e, "SMS outbox unavailable");
                Some(SystemTime::now() + STORAGE_PAUSE)
            });
            let until_due = async {
                match next {
                    Some(at) => {
                        let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
                        tokio::time::sleep(wait).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = self.wake.notified() => {}
                // Disabled once the sender has no receipts to give (HTTP).
                Some(r) = self.receipts.recv() => self.apply(r).await,
                _ = until_due => {}
            }
        }
    }

    async fn send_due(&mut self) -> Result<(), super::outbox::OutboxError> {
        while let Some(m) = self.outbox.run(|o| o.claim_due(SystemTime::now())).await? {
            if self.cancel.is_cancelled() {
                // Left in `sending`; the next start puts it back in the queue.
                return Ok(());
            }
            self.send(m).await?;
            // Receipts for earlier messages, before the next (maybe slow) submission.
            while let Ok(r) = self.receipts.try_recv() {
                self.apply(r).await;
            }
        }
        Ok(())
    }

    async fn send(&mut self, m: Message) -> Result<(), super::outbox::OutboxError> {
        let out = Outgoing {
            id: m.id,
            key: m.idempotency_key.clone(),
            to: m.to.clone(),
            text: m.text.clone(),
            from: m.sender.clone(),
        };
        let result = self.submit.submit(&out).await;
        let (id, key, to) = (m.id, &m.idempotency_key, &m.to);
        match result {
            Ok(ok) => {
                let parts = ok.message_ids.len();
                self.outbox
                    .run(move |o| o.mark_sent(id, &ok.message_ids, SystemTime::now()))
                    .await?;
                self.metrics.submitted.inc();
                tracing::info!(sms_id = id, %key, %to, parts, "SMS accepted for delivery");
            }
            Err(SendError::Retry(e)) => {
                let (error, policy) = (e.clone(), self.policy);
                let after = self
                    .outbox
                    .run(move |o| o.mark_retry(id, &error, &policy, SystemTime::now()))
                    .await?;
                match after {
                    AfterFailure::RetryAt(at) => {
                        self.metrics.retried.inc();
                        let secs = at
                            .duration_since(SystemTime::now())
                            .unwrap_or_default()
                            .as_secs_f32();
                        tracing::warn!(sms_id = id, %key, %to, error = %e, retry_in_secs = secs, "SMS not sent; will retry");
                    }
                    AfterFailure::Failed => {
                        self.metrics.failed.inc();
                        tracing::error!(sms_id = id, %key, %to, error = %e, attempts = m.attempts, "SMS given up");
                    }
                }
            }
            Err(SendError::Permanent(e)) => {
                let error = e.clone();
                self.outbox
                    .run(move |o| o.mark_failed(id, &error, SystemTime::now()))
                    .await?;
                self.metrics.failed.inc();
                tracing::error!(sms_id = id, %key, %to, error = %e, "SMS refused");
            }
        }
        Ok(())
    }

    async fn apply(&mut self, r: Receipt) {
        let message_id = r.message_id.clone();
        match self
            .outbox
            .run(move |o| o.apply_receipt(&r, SystemTime::now()))
            .await
        {
            Ok(Some((id, Status::Delivered))) => {
                self.metrics.delivered.inc();
                tracing::info!(sms_id = id, "SMS delivered");
            }
            Ok(Some((id, status))) => {
                self.metrics.failed.inc();
                tracing::warn!(sms_id = id, status = status.as_str(), "SMS not delivered");
            }
            Ok(None) => tracing::debug!(%message_id, "receipt changes nothing"),
            Err(e) => tracing::error!(error = %e, %message_id, "receipt not recorded"),
        }
    }
}
