//! The intent service as a gRPC server (`voicebot intents serve`): our matcher behind
//! `proto/intent.proto`, plus the standard gRPC health service.
//!
//! [`serve`] takes any implementation of the generated `IntentService` trait, so tests
//! can stand up deliberately slow or failing services on the same plumbing.

use std::collections::HashMap;
use std::future::Future;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

use super::proto::intent_service_server::{IntentService, IntentServiceServer};
use super::proto::{ResolveRequest, ResolveResponse};
use super::reload::{self, SharedMatcher};
use super::wire;
use crate::privacy;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("intent server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Our matcher as an `IntentService`, following knowledge-base reloads: one knowledge
/// base for every caller, or one per tenant (municipality) picked by the request.
pub struct MatcherService {
    matcher: SharedMatcher,
    tenants: HashMap<String, SharedMatcher>,
}

impl MatcherService {
    pub fn new(matcher: SharedMatcher) -> MatcherService {
        MatcherService {
            matcher,
            tenants: HashMap::new(),
        }
    }

    /// Answers a request naming a tenant from that tenant's matcher and one naming none
    /// (an older gateway) from `matcher`. One naming a tenant not here is refused, so
    /// a gateway and a service configured apart fail loudly (the caller is put through
    /// to a person) instead of giving another municipality's answers. (Without tenants
    /// the service answers every request from `matcher`, whatever it names.)
    pub fn with_tenants(
        matcher: SharedMatcher,
        tenants: HashMap<String, SharedMatcher>,
    ) -> MatcherService {
        MatcherService { matcher, tenants }
    }

    fn matcher_for(&self, tenant: &str) -> Result<&SharedMatcher, Status> {
        if tenant.is_empty() || self.tenants.is_empty() {
            return Ok(&self.matcher);
        }
        self.tenants.get(tenant).ok_or_else(|| {
            Status::not_found(format!("no tenant {tenant:?} in this intent service"))
        })
    }
}

#[tonic::async_trait]
impl IntentService for MatcherService {
    async fn resolve(
        &self,
        request: Request<ResolveRequest>,
    ) -> Result<Response<ResolveResponse>, Status> {
        let mut request =
            wire::request_from_proto(request.into_inner()).map_err(Status::invalid_argument)?;
        // Clients redact; a foreign client might not, and nothing below should see it.
        request.text = privacy::redact(&request.text);
        let matcher = reload::current(self.matcher_for(&request.tenant)?);
        // Off the async threads: the second opinion on meaning runs a model (~20 ms).
        let (resolution, request) =
            tokio::task::spawn_blocking(move || (matcher.resolve(&request), request))
                .await
                .map_err(|e| Status::internal(format!("the matcher failed: {e}")))?;
        tracing::debug!(call_id = %request.call_id, turn = request.turn, intent = %resolution.intent_id,
            action = ?resolution.action, confidence = resolution.confidence, "resolved");
        Ok(Response::new(wire::resolution_to_proto(&resolution)))
    }
}

/// Serves `service` and the health service on `listener` until `shutdown` completes.
pub async fn serve<S: IntentService>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<IntentServiceServer<S>>().await;
    Server::builder()
        .add_service(health_service)
        .add_service(IntentServiceServer::new(service))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}
