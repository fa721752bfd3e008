//! SMS links: after an answer, the bot may offer the full answer's link by SMS; only if
//! the caller says yes is it queued, durably, and sent over SMPP or a provider's HTTP
//! API, with retries and delivery receipts.
//!
//! The call layer uses [`Sms`]: read the caller's number with [`Sms::numbers`]
//! ([`NumberPlan::number`] of the caller's `sip::identity`), ask [`Sms::can_offer`]
//! before offering, build the text with [`text::for_resolution`], and after consent
//! [`Sms::enqueue`], which returns once the message is on disk, so the bot may then
//! say it is on its way.
//!
//! Pieces: `number` (caller → E.164, mobile or not, redaction), `encoding` (GSM-7 /
//! UCS-2, concatenated parts), `outbox` (SQLite, sans-IO), `retry` (backoff),
//! `receipt` (delivery receipts), `submit` (the sender trait) with `smpp` and `http`,
//! `sender` (the task driving the outbox), `smsc` (a test SMSC), `text`, `metrics`.
pub mod encoding;
pub mod http;
pub mod metrics;
pub mod number;
pub mod outbox;
pub mod receipt;
pub mod retry;
mod sender;
pub mod smpp;
pub mod smsc;
pub mod submit;
pub mod text;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{SmsConfig, SmsSenderKind};
use crate::storage::Store;
use metrics::SmsMetrics;
use number::{NumberPlan, E164};
use outbox::{Enqueued, Message, Outbox, OutboxError, Recover};
use receipt::Receipt;
use retry::RetryPolicy;
use submit::Submit;

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("[sms] config: {0}")]
    Config(String),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("SMS not queued: {0}")]
    Refused(Refusal),
    #[error("SMS text cannot be sent: {0}")]
    Text(#[from] encoding::EncodingError),
}

/// Why the bot should not offer (or cannot queue) an SMS to this number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a mobile number")]
    NotMobile,
    #[error("{recent} SMS to this number in 24 hours (limit {limit})")]
    RateLimited { recent: u32, limit: u32 },
    #[error("outbox unavailable: {0}")]
    Unavailable(String),
}

/// The outbox shared by the call layer (enqueue) and the sender task. SQLite calls
/// block (an enqueue waits for fsync), so they run on the blocking pool, never on the
/// threads that pace RTP.
#[derive(Clone)]
struct SharedOutbox(Arc<Mutex<Outbox>>);

impl SharedOutbox {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Outbox) -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let outbox = self.0.clone();
        tokio::task::spawn_blocking(move || {
            // A panic mid-call leaves SQLite consistent (the transaction rolls back).
            let mut o = outbox.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut o)
        })
        .await
        .unwrap_or_else(|e| Err(OutboxError::Task(e.to_string())))
    }
}

/// The SMS side of the gateway: the outbox, the task that sends from it, and the
/// checks the conversation makes before offering. Cheap to clone.
#[derive(Clone)]
pub struct Sms {
    inner: Arc<Inner>,
}

struct Inner {
    outbox: SharedOutbox,
    plan: NumberPlan,
    limit: u32,
    wake: Arc<Notify>,
    metrics: SmsMetrics,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Sms {
    /// Opens the outbox and starts sending with the configured sender. `None` when
    /// `sender = "none"`: the bot must then never offer an SMS.
    pub async fn start(
        config: &SmsConfig,
        store: Store,
        cancel: CancellationToken,
    ) -> Result<Option<Sms>, SmsError> {
        let cancel = cancel.child_token();
        check_from(&config.from)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (submit, link): (Arc<dyn Submit>, Option<JoinHandle<()>>) = match config.sender {
            SmsSenderKind::None => return Ok(None),
            SmsSenderKind::Smpp => {
                let (s, task) =
                    smpp::SmppSender::start(&config.smpp, &config.from, tx, cancel.clone())
                        .map_err(SmsError::Config)?;
                (Arc::new(s), Some(task))
            }
            SmsSenderKind::Http => {
                let s = http::HttpSender::new(&config.http, &config.from)
                    .map_err(|e| SmsError::Config(format!("http client: {e}")))?;
                (Arc::new(s), None)
            }
        };
        let sms = Sms::with_sender(config, store, submit, rx, cancel.clone())
            .await
            // Unbind the link already started rather than leave it to the caller's token.
            .inspect_err(|_| cancel.cancel())?;
        sms.inner.tasks.lock().expect("not poisoned").extend(link);
        Ok(Some(sms))
    }

    /// As [`Sms::start`], with any sender; `receipts` carries its delivery receipts.
    pub async fn with_sender(
        config: &SmsConfig,
        store: Store,
        submit: Arc<dyn Submit>,
        receipts: mpsc::UnboundedReceiver<Receipt>,
        cancel: CancellationToken,
    ) -> Result<Sms, SmsError> {
        let plan = NumberPlan::new(&config.default_country_code, &config.foreign_country_codes)
            .map_err(|e| SmsError::Config(e.to_string()))?;
        if config.max_attempts == 0 {
            return Err(SmsError::Config("max_attempts must be at least 1".into()));
        }
        let policy = RetryPolicy {
            initial: Duration::from_millis(config.retry_initial_ms),
            max: Duration::from_millis(config.retry_max_ms.max(config.retry_initial_ms)),
            max_attempts: config.max_attempts,
        };
        if config.retention_days == 0 {
            return Err(SmsError::Config(
                "retention_days must be at least 1 (the per-number limit counts a day)".into(),
            ));
        }
        let max_attempts = config.max_attempts;
        let outbox = tokio::task::spawn_blocking(move || {
            let mut o = Outbox::open(&store.backend, &store.node)?;
            let r = o.recover(Recover::AtStart, max_attempts, SystemTime::now())?;
            if r.requeued > 0 {
                tracing::warn!(
                    requeued = r.requeued,
                    "SMS caught mid-submission by the last stop (or orphaned by a gateway that died); sending again"
                );
            }
            if r.failed > 0 {
                tracing::error!(
                    failed = r.failed,
                    max_attempts,
                    "SMS caught mid-submission on its last attempt: given up"
                );
            }
            Ok::<_, OutboxError>(o)
        })
        .await
        .map_err(|e| OutboxError::Task(e.to_string()))??;
        let outbox = SharedOutbox(Arc::new(Mutex::new(outbox)));
        let wake = Arc::new(Notify::new());
        let metrics = SmsMetrics::default();
        let driver = sender::Driver {
            outbox: outbox.clone(),
            submit,
            receipts,
            wake: wake.clone(),
            policy,
            metrics: metrics.clone(),
            cancel: cancel.clone(),
        };
        let task = tokio::spawn(driver.run());
        let retention = tokio::spawn(retention_task(
            outbox.clone(),
            Duration::from_secs(u64::from(config.retention_days) * 86_400),
            max_attempts,
            cancel.clone(),
        ));
        Ok(Sms {
            inner: Arc::new(Inner {
                outbox,
                plan,
                limit: config.per_number_limit,
                wake,
                metrics,
                cancel,
                tasks: Mutex::new(vec![task, retention]),
            }),
        })
    }

    /// How callers' numbers are read on this line.
    pub fn numbers(&self) -> &NumberPlan {
        &self.inner.plan
    }

    pub fn metrics(&self) -> &SmsMetrics {
        &self.inner.metrics
    }

    /// Whether the bot may offer an SMS to `to`: a mobile under the per-number limit.
    pub async fn can_offer(&self, to: &E164) -> Result<(), Refusal> {
        let refused = |r: Refusal| {
            self.inner.metrics.refused.inc();
            Err(r)
        };
        if !self.inner.plan.is_mobile(to) {
            return refused(Refusal::NotMobile);
        }
        let n = to.clone();
        let recent = self
            .inner
            .outbox
            .run(move |o| o.recent_count(&n, SystemTime::now()))
            .await
            .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        if recent >= self.inner.limit {
            return refused(Refusal::RateLimited {
                recent,
                limit: self.inner.limit,
            });
        }
        Ok(())
    }

    /// Queues the SMS the caller consented to and returns its outbox id once it is on
    /// disk. The same call and intent queue one message however often this is called.
    pub async fn enqueue(
        &self,
        call_id: &str,
        intent_id: &str,
        to: &E164,
        text: &str,
    ) -> Result<i64, SmsError> {
        self.enqueue_from(call_id, intent_id, to, text, None).await
    }

    /// As [`Sms::enqueue`], shown as from `sender` (a tenant's own; None: `[sms] from`).
    pub async fn enqueue_from(
        &self,
        call_id: &str,
        intent_id: &str,
        to: &E164,
        text: &str,
        sender: Option<&str>,
    ) -> Result<i64, SmsError> {
        // Refuse here what could never be sent, rather than promise it to the caller.
        encoding::encode(text, 0)?;
        if !self.inner.plan.is_mobile(to) {
            self.inner.metrics.refused.inc();
            return Err(SmsError::Refused(Refusal::NotMobile));
        }
        let key = format!("{call_id}/{intent_id}");
        let (n, t, k, limit) = (to.clone(), text.to_string(), key.clone(), self.inner.limit);
        let from = sender.map(str::to_string);
        let queued = self
            .inner
            .outbox
            .run(move |o| o.enqueue_from(&k, &n, &t, from.as_deref(), limit, SystemTime::now()))
            .await?;
        match queued {
            Enqueued::New(id) => {
                self.inner.metrics.enqueued.inc();
                tracing::info!(sms_id = id, %key, %to, "SMS queued");
                self.inner.wake.notify_one();
                Ok(id)
            }
            Enqueued::Duplicate(id) => {
                tracing::info!(sms_id = id, %key, "SMS already queued for this call and answer");
                Ok(id)
            }
            Enqueued::Limited { recent } => {
                self.inner.metrics.refused.inc();
                Err(SmsError::Refused(Refusal::RateLimited { recent, limit }))
            }
        }
    }

    /// A queued message as stored (for ops and tests).
    pub async fn message(&self, id: i64) -> Result<Option<Message>, SmsError> {
        Ok(self.inner.outbox.run(move |o| o.get(id)).await?)
    }

    /// Stops sending (unbinding from the SMSC) and waits until it has stopped. Queued
    /// messages stay in the outbox for the next start.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let tasks = std::mem::take(&mut *self.inner.tasks.lock().expect("not poisoned"));
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Every `ORPHANED_AFTER` (and at start): requeues what a dead gateway left in
/// `sending` (a shared database outlives its gateways), and deletes finished messages
/// older than `keep`.
async fn retention_task(
    outbox: SharedOutbox,
    keep: Duration,
    max_attempts: u32,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(outbox::ORPHANED_AFTER);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {
                let before = SystemTime::now() - keep;
                let done = outbox
                    .run(move |o| {
                        let r = o.recover(Recover::Orphans, max_attempts, SystemTime::now())?;
                        Ok((r, o.purge(before)?))
                    })
                    .await;
                match done {
                    Ok((r, deleted)) => {
                        if r.requeued + r.failed > 0 {
                            tracing::warn!(requeued = r.requeued, failed = r.failed,
                                "SMS orphaned by a gateway that stopped mid-submission");
                        }
                        if deleted > 0 {
                            tracing::info!(deleted, "SMS outbox retention");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "SMS outbox retention failed"),
                }
            }
        }
    }
}

/// The sender shown on phones: a number, or at most 11 GSM-7 letters and digits
/// (longer alphanumeric senders are cut or refused by networks).
/// Whether `from` can be shown as an SMS sender (also a tenant's `sms_from`).
pub fn check_from(from: &str) -> Result<(), SmsError> {
    let digits = from.strip_prefix('+').unwrap_or(from);
    let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let ok = if numeric {
        digits.len() <= 15
    } else {
        (1..=11).contains(&from.chars().count())
            && encoding::encode(from, 0).is_ok_and(|e| e.coding == encoding::Coding::Gsm7)
    };
    if ok {
        Ok(())
    } else {
        Err(SmsError::Config(format!(
            "from = {from:?}: a number of at most 15 digits, or at most 11 GSM letters"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_sender_means_no_sms() {
        let c = SmsConfig::default();
        let sms = Sms::start(&c, Store::local(c.outbox_path()), CancellationToken::new()).await;
        assert!(sms.unwrap().is_none());
    }

    #[test]
    fn sender_names() {
        assert!(check_from("EksKommune").is_ok());
        assert!(check_from("Æbletoft").is_ok());
        assert!(check_from("+4570101010").is_ok());
        assert!(check_from("Eksempel Kommune").is_err());
        assert!(check_from("").is_err());
        assert!(check_from("Kommune🙂").is_err());
    }
}
