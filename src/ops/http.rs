//! The HTTP side: `/metrics` for Prometheus, `/healthz` and `/readyz` for the
//! orchestrator.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use super::live::LiveCalls;
use super::metrics::Metrics;
use super::switchboard;

pub struct OpsState {
    pub metrics: Metrics,
    pub live: LiveCalls,
}

pub async fn serve(
    listen: SocketAddr,
    state: Arc<OpsState>,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/switchboard", get(switchboard::list))
        .route("/switchboard/calls/{call_id}", get(switchboard::call))
        .with_state(state);
    tokio::spawn(async move {
        let shutdown = async move { cancel.cancelled().await };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "http server failed");
        }
    });
    Ok(local)
}

async fn metrics(State(state): State<Arc<OpsState>>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
