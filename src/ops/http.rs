//! The HTTP side: `/metrics` for Prometheus (behind [`auth`] too with `[http]
//! metrics_token_required`), `/healthz` and `/readyz` for the orchestrator (always
//! open), and the staff pages behind [`auth`]: the dashboard (`/`, `/api/*`), its
//! charts (`/api/charts/*`), the switchboard screen-pop (`/switchboard`) and teaching
//! the knowledge base (`/teach`, `/api/unresolved`, `/api/kb/*`, `/api/openapi.json`).
//! Served by [`listener`] (timeouts, a cap).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;

use super::auth::{self, Auth, Policy};
use super::listener::{self, Limits};
use super::live::LiveCalls;
use super::metrics::{self, Metrics};
use super::teach::{api, Teacher};
use super::{charts, dashboard, switchboard};
use crate::config::HttpConfig;
use crate::intent::client::IntentResolver;

pub struct OpsState {
    pub metrics: Metrics,
    pub live: LiveCalls,
    /// The call records the dashboard's figures come from (every gateway's, when
    /// they share a database).
    pub records: crate::storage::Store,
    pub readiness: Readiness,
    /// The fixed prompts and what speaks each (recorded or synthesized).
    pub prompts: Vec<super::prompts::PromptSource>,
    /// Teaching the knowledge base; `None` when the embedded one is in use.
    pub teach: Option<Arc<Teacher>>,
    /// The SMS outbox the charts count; `None` when no SMS sender is configured.
    pub sms_outbox: Option<crate::storage::Store>,
    /// The municipality's zone: chart days run from local midnight.
    pub timezone: chrono_tz::Tz,
}

/// What must be up before the gateway can take calls.
pub struct Readiness {
    pub speech_model_loaded: bool,
    pub sip_listener: Option<SocketAddr>,
    pub intents: Arc<dyn IntentResolver>,
    /// Cancelled when the gateway starts to drain: not ready from then on, so an
    /// orchestrator or balancer stops sending calls here.
    pub draining: CancellationToken,
}

impl Readiness {
    /// Every reason the gateway is not ready, or nothing.
    pub async fn check(&self) -> Result<(), String> {
        let mut reasons = Vec::new();
        if self.draining.is_cancelled() {
            reasons.push("draining: shutting down".to_string());
        }
        if !self.speech_model_loaded {
            reasons.push("speech model not loaded".to_string());
        }
        if self.sip_listener.is_none() {
            reasons.push("SIP listener not bound".to_string());
        }
        if let Err(e) = self.intents.ready().await {
            reasons.push(e);
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }
}

/// Serves on `config.listen` (with the web callers' page and signalling, `web`, if
/// given; and the health routes also on `metrics_listen`, if set); returns the main
/// listener's address.
pub async fn serve(
    config: &HttpConfig,
    state: Arc<OpsState>,
    web: Option<Router>,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let mut auth = Auth::new(Policy::new(
        config.dashboard_token.as_deref(),
        config.listen,
    ));
    auth.https = config.tls_cert.is_some();
    let auth = Arc::new(auth);
    let staff = Router::new()
        .route("/", get(dashboard::page))
        .route("/api/events", get(dashboard::events))
        .route("/api/summary", get(dashboard::summary))
        .route("/api/prompts", get(super::prompts::list))
        .route("/switchboard", get(switchboard::list))
        .route("/switchboard/calls/{call_id}", get(switchboard::call))
        .route("/api/charts/{name}", get(charts::chart))
        .route("/teach", get(api::page))
        .route("/api/openapi.json", get(api::openapi))
        .route("/api/unresolved", get(api::unresolved))
        .route("/api/kb/intents", get(api::intents).post(api::new_intent))
        .route("/api/kb/intents/{id}/examples", post(api::add_example))
        .route("/api/kb/draft", get(api::draft).delete(api::discard))
        .route("/api/kb/preview", post(api::preview))
        .route("/api/kb/publish", post(api::publish))
        .route("/api/kb/history", get(api::history))
        .route("/api/kb/rollback/{version}", post(api::rollback))
        .layer(DefaultBodyLimit::max(api::MAX_BODY_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            auth::require,
        ));
    let login = Router::new()
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", axum::routing::post(auth::logout))
        .with_state(auth.clone());
    let metrics_policy = config.metrics_token_required.then_some(auth);
    let limits = Limits {
        header_timeout: std::time::Duration::from_secs(config.header_timeout_secs),
        max_connections: config.max_connections,
    };
    let app = open_routes(metrics_policy.clone())
        .merge(staff)
        .with_state(state.clone())
        .merge(login)
        .merge(web.unwrap_or_default());
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(
            super::tls::acceptor(cert, key).map_err(|e| std::io::Error::other(e.to_string()))?,
        ),
        (None, None) => None,
        _ => {
            return Err(std::io::Error::other(
                "[http] tls_cert and tls_key go together",
            ))
        }
    };
    let local = listener::spawn(config.listen, app, limits, tls, cancel.clone()).await?;
    if let Some(listen) = config.metrics_listen {
        let app = open_routes(metrics_policy).with_state(state);
        let addr = listener::spawn(listen, app, limits, None, cancel).await?;
        tracing::info!(%addr, "metrics listening");
    }
    Ok(local)
}

/// The routes every listener serves; `/metrics` behind `metrics_policy` if given.
fn open_routes(metrics_policy: Option<Arc<Auth>>) -> Router<Arc<OpsState>> {
    let scrape = Router::new().route("/metrics", get(metrics));
    let scrape = match metrics_policy {
        Some(policy) => {
            scrape.route_layer(axum::middleware::from_fn_with_state(policy, auth::require))
        }
        None => scrape,
    };
    scrape
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
}

async fn readyz(State(state): State<Arc<OpsState>>) -> impl IntoResponse {
    match state.readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready".to_string()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

/// OpenMetrics for scrapers that ask for it, the classic text format otherwise.
async fn metrics(State(state): State<Arc<OpsState>>, headers: HeaderMap) -> impl IntoResponse {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let body = state.metrics.render();
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            metrics::text_004(&body),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::client::InProcess;
    use crate::intent::kb::Kb;
    use crate::intent::matcher::Matcher;
    use crate::intent::reload;

    #[tokio::test]
    async fn readiness_names_what_is_missing() {
        let kb = Kb::load_or_embedded(None).unwrap();
        let intents = Arc::new(InProcess::new(reload::shared(Matcher::new(kb))));
        let mut r = Readiness {
            speech_model_loaded: true,
            sip_listener: Some("127.0.0.1:5060".parse().unwrap()),
            intents,
            draining: CancellationToken::new(),
        };
        assert_eq!(r.check().await, Ok(()));
        r.draining.cancel();
        assert!(r.check().await.unwrap_err().contains("draining"));
        r.speech_model_loaded = false;
        r.sip_listener = None;
        let e = r.check().await.unwrap_err();
        assert!(e.contains("speech model") && e.contains("SIP"), "{e}");
    }
}
