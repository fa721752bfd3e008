//! Sending through an SMS provider's HTTP API: one JSON POST per message,
//! `{"to", "from", "text", "reference"}` with a bearer token. The provider splits and
//! encodes; `reference` is the idempotency key, so it can drop a resend.
//!
//! 2xx is accepted (with the provider's `id`, if it gives one), 4xx is the message's
//! fault and final — except 408 and 429, which ask us to come back — and 5xx, timeouts
//! and refused connections are retried.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;

use super::submit::{Outgoing, SendError, Submit, SubmitOk};
use crate::config::SmsHttpConfig;

pub struct HttpSender {
    client: reqwest::Client,
    url: String,
    token: String,
    from: String,
}

#[derive(serde::Serialize)]
struct Body<'a> {
    to: &'a str,
    from: &'a str,
    text: &'a str,
    reference: &'a str,
}

impl HttpSender {
    pub fn new(config: &SmsHttpConfig, from: &str) -> Result<HttpSender, reqwest::Error> {
        Ok(HttpSender {
            client: reqwest::Client::builder()
                .timeout(Duration::from_millis(config.timeout_ms))
                .build()?,
            url: config.url.clone(),
            token: config.token.clone(),
            from: from.to_string(),
        })
    }
}

#[async_trait]
impl Submit for HttpSender {
    async fn submit(&self, msg: &Outgoing) -> Result<SubmitOk, SendError> {
        let mut req = self.client.post(&self.url).json(&Body {
            to: msg.to.as_str(),
            from: msg.from.as_deref().unwrap_or(&self.from),
            text: &msg.text,
            reference: &msg.key,
        });
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| SendError::Retry(format!("SMS provider unreachable: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            // The id is a courtesy; an accepted message without one is still accepted.
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let id = match &body["id"] {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            return Ok(SubmitOk {
                message_ids: id.into_iter().collect(),
            });
        }
        let detail: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        let text = format!("SMS provider answered {status}: {detail}");
        if status.is_client_error()
            && status != StatusCode::REQUEST_TIMEOUT
            && status != StatusCode::TOO_MANY_REQUESTS
        {
            Err(SendError::Permanent(text))
        } else {
            Err(SendError::Retry(text))
        }
    }
}
