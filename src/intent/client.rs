//! How the gateway asks for a resolution: the [`IntentResolver`] trait, with an
//! in-process implementation (our matcher, no network) and a gRPC one (any backend
//! speaking `proto/intent.proto`).
//!
//! Both redact the transcript first ([`privacy::redact`]): personal data never reaches
//! a backend, ours included. The gRPC client bounds every turn by a deadline (800 ms by
//! default, both attempts together), retries once when the service is UNAVAILABLE (a
//! connection just dropped, a restart), and stops calling a service that keeps failing
//! ([`Breaker`]), so that a caller hears the apology and is transferred at once instead
//! of after a deadline on every turn.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use super::breaker::{Breaker, BreakerConfig, State};
use super::kb::{Kb, KbError};
use super::matcher::Matcher;
use super::proto::intent_service_client::IntentServiceClient;
use super::proto::intent_service_server::SERVICE_NAME;
use super::reload::{self, SharedMatcher};
use super::resolution::{Request, Resolution};
use super::wire::{self, InvalidResponse};
use crate::config::IntentConfig;
use crate::privacy;

/// How far apart tonic's deadline timer and ours may fire.
const TIMER_SLACK: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("intent service unavailable: {0}")]
    Unavailable(String),
    #[error("intent service did not answer within {0:?}")]
    DeadlineExceeded(Duration),
    #[error("intent service is failing; not calling it for another {0:?}")]
    CircuitOpen(Duration),
    #[error("intent service error {code:?}: {message}")]
    Service { code: tonic::Code, message: String },
    #[error("intent service sent an unusable response: {0}")]
    InvalidResponse(#[from] InvalidResponse),
    #[error("intent service endpoint {endpoint:?}: {message}")]
    Endpoint { endpoint: String, message: String },
    #[error(transparent)]
    Kb(#[from] KbError),
}

/// Resolves one caller turn. Implementations redact the transcript before it leaves.
#[async_trait]
pub trait IntentResolver: Send + Sync {
    async fn resolve(&self, request: Request) -> Result<Resolution, IntentError>;

    /// Whether turns can be resolved now; the reason if not (for `/readyz`).
    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Our matcher, called directly: no serialisation, no network, no failure modes.
pub struct InProcess {
    matcher: SharedMatcher,
}

impl InProcess {
    pub fn new(matcher: SharedMatcher) -> InProcess {
        InProcess { matcher }
    }
}

#[async_trait]
impl IntentResolver for InProcess {
    async fn resolve(&self, mut request: Request) -> Result<Resolution, IntentError> {
        request.text = privacy::redact(&request.text);
        let matcher = reload::current(&self.matcher);
        // Off the async threads: the second opinion on meaning runs a model (~20 ms).
        tokio::task::spawn_blocking(move || matcher.resolve(&request))
            .await
            .map_err(|e| IntentError::Unavailable(format!("the matcher failed: {e}")))
    }
}

#[derive(Debug, Clone)]
pub struct GrpcConfig {
    /// e.g. "http://127.0.0.1:50051".
    pub endpoint: String,
    /// For the whole turn, retry included.
    pub deadline: Duration,
    pub breaker: BreakerConfig,
}

/// A remote intent service over gRPC.
pub struct Grpc {
    client: IntentServiceClient<Channel>,
    channel: Channel,
    deadline: Duration,
    breaker: Mutex<Breaker>,
}

impl Grpc {
    /// Connects lazily: a service that is down now is not an error until a turn needs it.
    pub fn new(config: GrpcConfig) -> Result<Grpc, IntentError> {
        let bad = |message: String| IntentError::Endpoint {
            endpoint: config.endpoint.clone(),
            message,
        };
        let endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(config.deadline)
            .tcp_nodelay(true);
        let channel = endpoint.connect_lazy();
        Ok(Grpc {
            client: IntentServiceClient::new(channel.clone()),
            channel,
            deadline: config.deadline,
            breaker: Mutex::new(Breaker::new(config.breaker)),
        })
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn call(&self, request: &Request) -> Result<Resolution, IntentError> {
        let message = wire::request_to_proto(request);
        let until = tokio::time::Instant::now() + self.deadline;
        let attempt = || {
            let mut client = self.client.clone();
            let mut rpc = tonic::Request::new(message.clone());
            rpc.set_timeout(until.saturating_duration_since(tokio::time::Instant::now()));
            async move { client.resolve(rpc).await }
        };
        let outcome = async {
            match attempt().await {
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    tracing::debug!(error = %status.message(), "intent service unavailable; retrying once");
                    attempt().await
                }
                other => other,
            }
        };
        match tokio::time::timeout_at(until, outcome).await {
            Err(_) => Err(IntentError::DeadlineExceeded(self.deadline)),
            Ok(Ok(response)) => Ok(wire::resolution_from_proto(response.into_inner())?),
            Ok(Err(status)) => Err(match status.code() {
                tonic::Code::Unavailable => IntentError::Unavailable(status.message().to_string()),
                tonic::Code::DeadlineExceeded => IntentError::DeadlineExceeded(self.deadline),
                // tonic's own timer (from `set_timeout`) may fire a hair before ours.
                tonic::Code::Cancelled if tokio::time::Instant::now() + TIMER_SLACK >= until => {
                    IntentError::DeadlineExceeded(self.deadline)
                }
                code => IntentError::Service {
                    code,
                    message: status.message().to_string(),
                },
            }),
        }
    }
}

#[async_trait]
impl IntentResolver for Grpc {
    async fn resolve(&self, mut request: Request) -> Result<Resolution, IntentError> {
        request.text = privacy::redact(&request.text);
        self.breaker()
            .try_acquire(Instant::now())
            .map_err(IntentError::CircuitOpen)?;
        let outcome = self.call(&request).await;
        match &outcome {
            // The service is alive and answering; only our request was at fault.
            Ok(_)
            | Err(IntentError::Service {
                code: tonic::Code::InvalidArgument,
                ..
            }) => self.breaker().on_success(),
            Err(_) => self.breaker().on_failure(Instant::now()),
        }
        outcome
    }

    /// Not while the breaker is open; else the service's standard health check.
    async fn ready(&self) -> Result<(), String> {
        if let State::Open { .. } = self.breaker().state() {
            return Err("intent service is failing (circuit open)".into());
        }
        use tonic_health::pb::{health_check_response, health_client::HealthClient};
        let mut rpc = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
            service: SERVICE_NAME.into(),
        });
        rpc.set_timeout(self.deadline);
        let mut health = HealthClient::new(self.channel.clone());
        match tokio::time::timeout(self.deadline, health.check(rpc)).await {
            Err(_) => Err("intent service health check timed out".into()),
            Ok(Err(status)) => Err(format!(
                "intent service health check failed: {}",
                status.message()
            )),
            Ok(Ok(r)) if r.get_ref().status() == health_check_response::ServingStatus::Serving => {
                Ok(())
            }
            Ok(Ok(r)) => Err(format!("intent service is {:?}", r.get_ref().status())),
        }
    }
}

/// The resolver `[intent]` asks for: gRPC to `endpoint` when set, else in-process over
/// `kb` (or the embedded knowledge base), reloading `kb` on change until `cancel`.
pub fn from_config(
    config: &IntentConfig,
    cancel: CancellationToken,
) -> Result<Arc<dyn IntentResolver>, IntentError> {
    Ok(with_local_matcher(config, cancel)?.0)
}

/// `from_config`, plus the matcher over the local knowledge base (`kb`, else the
/// embedded one), kept current: the recognizer takes its candidate phrasings from it
/// even when a remote service decides the answers.
pub fn with_local_matcher(
    config: &IntentConfig,
    cancel: CancellationToken,
) -> Result<(Arc<dyn IntentResolver>, SharedMatcher), IntentError> {
    let kb = Kb::load_or_embedded(config.kb.as_deref())?;
    let matcher = reload::shared(Matcher::new(kb));
    if let Some(path) = &config.kb {
        tokio::spawn(reload::watch(
            PathBuf::from(path),
            matcher.clone(),
            reload::POLL,
            cancel,
        ));
    }
    let resolver = remote(config)?.unwrap_or_else(|| Arc::new(InProcess::new(matcher.clone())));
    Ok((resolver, matcher))
}

/// The remote intent service `[intent] endpoint` names, if any: one client (one
/// connection, one circuit breaker) however many tenants ask through it.
pub fn remote(config: &IntentConfig) -> Result<Option<Arc<dyn IntentResolver>>, IntentError> {
    let Some(endpoint) = &config.endpoint else {
        return Ok(None);
    };
    Ok(Some(Arc::new(Grpc::new(GrpcConfig {
        endpoint: endpoint.clone(),
        deadline: Duration::from_millis(config.deadline_ms),
        breaker: BreakerConfig {
            failure_threshold: config.breaker_failures,
            cooldown: Duration::from_millis(config.breaker_cooldown_ms),
        },
    })?)))
}

/// A matcher over the knowledge base `load` reads from `files`, reloaded when one of
/// them changes, until `cancel`; and the resolver over it (`remote` when given, which
/// decides the answers itself). A load that fails now is the caller's error.
pub fn over_files(
    files: Vec<PathBuf>,
    load: reload::Loader,
    remote: Option<Arc<dyn IntentResolver>>,
    cancel: CancellationToken,
) -> Result<(Arc<dyn IntentResolver>, SharedMatcher), String> {
    let matcher = reload::shared(Matcher::new(load()?));
    if !files.is_empty() {
        tokio::spawn(reload::watch_files(
            files,
            load,
            matcher.clone(),
            reload::POLL,
            cancel,
        ));
    }
    let resolver = remote.unwrap_or_else(|| Arc::new(InProcess::new(matcher.clone())));
    Ok((resolver, matcher))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::resolution::{Action, Language};

    #[tokio::test]
    async fn in_process_redacts_and_resolves() {
        let resolver = from_config(&IntentConfig::default(), CancellationToken::new()).unwrap();
        let r = resolver
            .resolve(Request::new(
                "hvornår bliver mit skrald hentet",
                Language::Da,
            ))
            .await
            .unwrap();
        assert_eq!(
            (r.action, r.intent_id.as_str()),
            (Action::Answer, "affald.toemning")
        );
        let r = resolver
            .resolve(Request::new("mit nummer er 120345-1234", Language::Da))
            .await
            .unwrap();
        assert_eq!(
            (r.action, r.reason.as_str()),
            (Action::Transfer, "sensitive")
        );
    }

    #[test]
    fn a_bad_endpoint_is_named() {
        let config = GrpcConfig {
            endpoint: "not a uri".into(),
            deadline: Duration::from_millis(800),
            breaker: BreakerConfig::default(),
        };
        let e = Grpc::new(config).err().unwrap().to_string();
        assert!(e.contains("not a uri"), "{e}");
    }

    #[tokio::test]
    async fn readiness_is_a_health_check_of_the_remote_service() {
        let in_process = from_config(&IntentConfig::default(), CancellationToken::new()).unwrap();
        assert_eq!(in_process.ready().await, Ok(()));
        // Nothing listens there: a port just bound and released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let remote = Grpc::new(GrpcConfig {
            endpoint: format!("http://127.0.0.1:{port}"),
            deadline: Duration::from_millis(500),
            breaker: BreakerConfig::default(),
        })
        .unwrap();
        let e = remote.ready().await.unwrap_err();
        assert!(e.contains("intent service"), "{e}");
    }
}
