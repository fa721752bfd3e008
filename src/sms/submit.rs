//! The one thing the outbox needs from a way of sending SMS: hand over a message and
//! learn whether it was taken, should be tried again, or can never be sent.

use async_trait::async_trait;

use super::number::E164;

/// A message on its way out.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The outbox id; SMPP derives the parts' concatenation reference from it, so a
    /// resend's parts join up with the first try's on the phone.
    pub id: i64,
    /// The idempotency key, for providers that deduplicate by a reference.
    pub key: String,
    pub to: E164,
    pub text: String,
    /// The sender to show instead of the configured one (a tenant's own).
    pub from: Option<String>,
}

/// Accepted for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOk {
    /// The SMSC's or provider's ids: one per part over SMPP, at most one over HTTP.
    pub message_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The link, the SMSC or the provider is down or busy: try again later.
    #[error("temporary failure: {0}")]
    Retry(String),
    /// The message itself was refused (bad number, bad request): never retry.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait Submit: Send + Sync {
    async fn submit(&self, msg: &Outgoing) -> Result<SubmitOk, SendError>;
}
