//! Stopping without dropping a caller: on SIGTERM/SIGINT the gateway takes no new
//! calls (INVITE and OPTIONS get 503 + Retry-After, `/readyz` says not ready), lets
//! calls in progress finish for up to `[sip] drain_secs`, then ends the rest with a
//! spoken goodbye and a BYE; it flushes the call records, stops the SMS sender
//! (queued messages stay in the outbox for the next start), and only then closes the
//! listeners.

use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ops::live::LiveCalls;
use crate::sms::Sms;

/// After the drain time, how long the goodbyes may take: a prompt of a few seconds,
/// or a REFER already under way waiting for its NOTIFY. Calls still up then (a bridged
/// call with a person) are cut when the process exits.
const GOODBYE_GRACE: Duration = Duration::from_secs(30);
/// How long a stop waits for call records while their database is away; what still
/// waits after it is lost with the process (the records of a restart say `interrupted`).
const RECORDS_GRACE: Duration = Duration::from_secs(30);

/// What a stop needs to reach; built by `serve::start`.
pub struct Drain {
    pub(super) active_calls: Gauge,
    /// Admission and readiness watch it.
    pub(super) draining: CancellationToken,
    /// Each call's loop watches it.
    pub(super) end_calls: CancellationToken,
    pub(super) live: LiveCalls,
    pub(super) sms: Option<Sms>,
    /// Everything else: SIP stack, HTTP, intents, retention.
    pub(super) cancel: CancellationToken,
}

impl Drain {
    /// Drains for up to `limit`, ends what is left, and stops everything.
    pub async fn run(self, limit: Duration) {
        self.draining.cancel();
        let calls = self.active_calls.get();
        tracing::info!(
            calls,
            drain_secs = limit.as_secs_f32(),
            "draining: new calls get 503; calls in progress may finish"
        );
        if !self.all_ended(limit).await {
            tracing::warn!(
                calls = self.active_calls.get(),
                "drain time over: ending calls in progress with a goodbye"
            );
            self.end_calls.cancel();
            if !self.all_ended(GOODBYE_GRACE).await {
                tracing::error!(
                    calls = self.active_calls.get(),
                    "calls still up after their goodbye: cut"
                );
            }
        }
        if tokio::time::timeout(RECORDS_GRACE, self.live.flush_records())
            .await
            .is_err()
        {
            tracing::error!("call records still waiting for their database: stopping without them");
        }
        if let Some(sms) = &self.sms {
            sms.shutdown().await;
        }
        self.cancel.cancel();
        tracing::info!("drained: call records written, SMS sender stopped");
    }

    /// Waits until no call is in progress, or `limit` has passed (false).
    async fn all_ended(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while self.active_calls.get() > 0 {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}
