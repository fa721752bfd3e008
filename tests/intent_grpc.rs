//! The intent service over real gRPC on loopback: the real server, and servers that are
//! stopped, slow past the deadline, failing, or answering nonsense.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request as RpcRequest, Response, Status};

use voicebot_gateway::intent::breaker::BreakerConfig;
use voicebot_gateway::intent::client::{Grpc, GrpcConfig, IntentError, IntentResolver};
use voicebot_gateway::intent::kb::Kb;
use voicebot_gateway::intent::matcher::Matcher;
use voicebot_gateway::intent::proto::intent_service_server::IntentService;
use voicebot_gateway::intent::proto::{self, ResolveRequest, ResolveResponse};
use voicebot_gateway::intent::reload;
use voicebot_gateway::intent::resolution::{Action, Language, Request};
use voicebot_gateway::intent::server::{self, MatcherService};

/// A server on 127.0.0.1:0, stopped when dropped.
struct Running {
    url: String,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start<S: IntentService>(service: S) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(server::serve(listener, service, async move {
        stopped.cancelled().await
    }));
    Running { url, stop }
}

fn client(url: &str, deadline_ms: u64, failures: u32) -> Grpc {
    Grpc::new(GrpcConfig {
        endpoint: url.into(),
        deadline: Duration::from_millis(deadline_ms),
        breaker: BreakerConfig {
            failure_threshold: failures,
            cooldown: Duration::from_secs(30),
        },
    })
    .unwrap()
}

fn matcher() -> Matcher {
    Matcher::new(Kb::embedded().unwrap())
}

#[tokio::test]
async fn round_trip_against_the_real_server() {
    let local = matcher();
    let running = start(MatcherService::new(reload::shared(matcher()))).await;
    let grpc = client(&running.url, 2000, 5);
    for (text, lang) in [
        ("hvornår bliver mit skrald hentet", Language::Da),
        ("pas", Language::Da),
        ("I want to speak to a real person", Language::En),
        ("farvel", Language::Da),
    ] {
        let mut request = Request::new(text, lang);
        request.call_id = "call-1".into();
        request.previous_intent_id = Some("affald.toemning".into());
        let over_grpc = grpc.resolve(request.clone()).await.unwrap();
        assert_eq!(over_grpc, local.resolve(&request), "{text}");
    }
    let r = grpc
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
}

#[tokio::test]
async fn the_health_service_reports_serving() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let running = start(MatcherService::new(reload::shared(matcher()))).await;
    let channel = tonic::transport::Channel::from_shared(running.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest {
            service: "voicebot.intent.v1.IntentService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

/// Records the text it was sent and answers a fixed resolution.
#[derive(Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
}

fn fixed_answer() -> ResolveResponse {
    ResolveResponse {
        action: proto::Action::Answer as i32,
        kind: proto::Kind::Answer as i32,
        intent_id: "x".into(),
        answer_text: "svar".into(),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl IntentService for Recorder {
    async fn resolve(
        &self,
        request: RpcRequest<ResolveRequest>,
    ) -> Result<Response<ResolveResponse>, Status> {
        self.seen.lock().unwrap().push(request.into_inner().text);
        Ok(Response::new(fixed_answer()))
    }
}

#[tokio::test]
async fn personal_data_is_redacted_before_the_rpc() {
    let recorder = Recorder::default();
    let seen = recorder.seen.clone();
    let running = start(recorder).await;
    let grpc = client(&running.url, 2000, 5);
    let text = "mit cpr er 120345-1234, ring på 12 34 56 78 eller skriv til a@b.dk";
    grpc.resolve(Request::new(text, Language::Da))
        .await
        .unwrap();
    let sent = seen.lock().unwrap().clone();
    assert_eq!(
        sent,
        vec!["mit cpr er [CPR], ring på [TELEFON] eller skriv til [EMAIL]".to_string()]
    );
}

#[tokio::test]
async fn a_stopped_server_fails_fast_and_opens_the_breaker() {
    // A port that was just ours and is now closed: connections are refused.
    let url = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let grpc = client(&url, 800, 3);
    for _ in 0..3 {
        let started = Instant::now();
        let e = grpc
            .resolve(Request::new("pas", Language::Da))
            .await
            .unwrap_err();
        assert!(matches!(e, IntentError::Unavailable(_)), "{e}");
        assert!(
            started.elapsed() < Duration::from_millis(800),
            "refused quickly, retry included: {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let e = grpc
        .resolve(Request::new("pas", Language::Da))
        .await
        .unwrap_err();
    assert!(matches!(e, IntentError::CircuitOpen(_)), "{e}");
    assert!(
        started.elapsed() < Duration::from_millis(5),
        "an open breaker does not call"
    );
}

/// Answers only after a long pause.
struct Slow;

#[tonic::async_trait]
impl IntentService for Slow {
    async fn resolve(
        &self,
        _: RpcRequest<ResolveRequest>,
    ) -> Result<Response<ResolveResponse>, Status> {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(Response::new(fixed_answer()))
    }
}

#[tokio::test]
async fn a_slow_server_hits_the_deadline() {
    let running = start(Slow).await;
    let grpc = client(&running.url, 300, 5);
    let started = Instant::now();
    let e = grpc
        .resolve(Request::new("pas", Language::Da))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e, IntentError::DeadlineExceeded(_)), "{e}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1000),
        "{took:?}"
    );
}

/// Fails with a fixed status for the first `failures` calls, then answers.
struct Failing {
    code: tonic::Code,
    failures: usize,
    calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl IntentService for Failing {
    async fn resolve(
        &self,
        _: RpcRequest<ResolveRequest>,
    ) -> Result<Response<ResolveResponse>, Status> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(Status::new(self.code, "broken on purpose"));
        }
        Ok(Response::new(fixed_answer()))
    }
}

#[tokio::test]
async fn server_errors_surface_and_count_towards_the_breaker() {
    let calls = Arc::new(AtomicUsize::new(0));
    let running = start(Failing {
        code: tonic::Code::Internal,
        failures: usize::MAX,
        calls: calls.clone(),
    })
    .await;
    let grpc = client(&running.url, 2000, 2);
    for _ in 0..2 {
        let e = grpc
            .resolve(Request::new("pas", Language::Da))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                IntentError::Service {
                    code: tonic::Code::Internal,
                    ..
                }
            ),
            "{e}"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2, "INTERNAL is not retried");
    let e = grpc
        .resolve(Request::new("pas", Language::Da))
        .await
        .unwrap_err();
    assert!(matches!(e, IntentError::CircuitOpen(_)), "{e}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn one_unavailable_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let running = start(Failing {
        code: tonic::Code::Unavailable,
        failures: 1,
        calls: calls.clone(),
    })
    .await;
    let grpc = client(&running.url, 2000, 5);
    let r = grpc
        .resolve(Request::new("pas", Language::Da))
        .await
        .unwrap();
    assert_eq!(r.answer_text, "svar");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let calls = Arc::new(AtomicUsize::new(0));
    let running = start(Failing {
        code: tonic::Code::Unavailable,
        failures: 2,
        calls: calls.clone(),
    })
    .await;
    let grpc = client(&running.url, 2000, 5);
    let e = grpc
        .resolve(Request::new("pas", Language::Da))
        .await
        .unwrap_err();
    assert!(matches!(e, IntentError::Unavailable(_)), "{e}");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "only one retry");
}

/// Answers with an action the gateway cannot carry out.
struct Nonsense;

#[tonic::async_trait]
impl IntentService for Nonsense {
    async fn resolve(
        &self,
        _: RpcRequest<ResolveRequest>,
    ) -> Result<Response<ResolveResponse>, Status> {
        Ok(Response::new(ResolveResponse {
            answer_text: "?".into(),
            ..Default::default()
        }))
    }
}

#[tokio::test]
async fn an_unusable_response_is_an_error() {
    let running = start(Nonsense).await;
    let e = client(&running.url, 2000, 5)
        .resolve(Request::new("pas", Language::Da))
        .await
        .unwrap_err();
    assert!(matches!(e, IntentError::InvalidResponse(_)), "{e}");
}

#[tokio::test]
async fn the_real_server_refuses_a_bad_request_without_tripping_the_breaker() {
    let running = start(MatcherService::new(reload::shared(matcher()))).await;
    let mut raw = proto::intent_service_client::IntentServiceClient::connect(running.url.clone())
        .await
        .unwrap();
    let status = raw
        .resolve(ResolveRequest {
            text: "pas".into(),
            language: "sv".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("sv"), "{}", status.message());
}
