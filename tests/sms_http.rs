//! The gateway's SMS side (`Sms` with `sender = "http"`) against a local HTTP provider
//! (axum): accepted, refused, flaky, slow, and a bearer token the provider checks.

mod common;

use common::wait_sms_status;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use voicebot_gateway::config::{SmsConfig, SmsSenderKind};
use voicebot_gateway::sms::number::E164;
use voicebot_gateway::sms::outbox::Status;
use voicebot_gateway::sms::Sms;
use voicebot_gateway::storage::Store;

const TOKEN: &str = "s3cret-token";

#[derive(Clone, Default)]
struct Provider {
    /// Every authorised request's scenario and body, in order.
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn sms(
    State(p): State<Provider>,
    Path(scenario): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "bad token"})),
        );
    }
    let seen = {
        let mut r = p.requests.lock().unwrap();
        r.push((scenario.clone(), body));
        r.iter().filter(|(s, _)| *s == scenario).count()
    };
    match scenario.as_str() {
        "ok" => (StatusCode::OK, Json(json!({"id": "prov-123"}))),
        "bad" => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid number"})),
        ),
        "flaky" if seen == 1 => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({}))),
        "flaky" => (StatusCode::ACCEPTED, Json(json!({"id": 77}))),
        _ => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            (StatusCode::OK, Json(json!({})))
        }
    }
}

async fn provider() -> (SocketAddr, Provider) {
    let p = Provider::default();
    let app = Router::new()
        .route("/sms/{scenario}", post(sms))
        .with_state(p.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, p)
}

async fn gateway(addr: SocketAddr, scenario: &str, token: &str, dir: &std::path::Path) -> Sms {
    let mut c = SmsConfig {
        sender: SmsSenderKind::Http,
        outbox: Some(dir.join("sms.sqlite")),
        retry_initial_ms: 100,
        retry_max_ms: 200,
        max_attempts: 3,
        ..SmsConfig::default()
    };
    c.http.url = format!("http://{addr}/sms/{scenario}");
    c.http.token = token.into();
    c.http.timeout_ms = 300;
    Sms::start(&c, Store::local(c.outbox_path()), CancellationToken::new())
        .await
        .unwrap()
        .unwrap()
}

fn anna() -> E164 {
    E164::parse("+4520123456").unwrap()
}

#[tokio::test]
async fn accepted_with_the_providers_id() {
    let (addr, p) = provider().await;
    let dir = tempfile::tempdir().unwrap();
    let sms = gateway(addr, "ok", TOKEN, dir.path()).await;
    let text = "Tømningskalender:\nhttps://kommune.example.org/affald 🙂";
    let id = sms
        .enqueue("call-1", "affald.toemning", &anna(), text)
        .await
        .unwrap();
    let m = wait_sms_status(&sms, id, Status::Sent).await;
    assert_eq!(m.smsc_message_id.as_deref(), Some("prov-123"));
    assert_eq!(m.attempts, 1);
    let requests = p.requests.lock().unwrap().clone();
    assert_eq!(
        requests,
        vec![(
            "ok".to_string(),
            json!({"to": "+4520123456", "from": "EksKommune", "text": text, "reference": "call-1/affald.toemning"})
        )]
    );
    sms.shutdown().await;
}

#[tokio::test]
async fn a_tenants_message_shows_its_own_sender() {
    let (addr, p) = provider().await;
    let dir = tempfile::tempdir().unwrap();
    let sms = gateway(addr, "ok", TOKEN, dir.path()).await;
    let id = sms
        .enqueue_from("call-9", "pas.bestil", &anna(), "Pas", Some("Nordby"))
        .await
        .unwrap();
    wait_sms_status(&sms, id, Status::Sent).await;
    let requests = p.requests.lock().unwrap().clone();
    assert_eq!(requests[0].1["from"], "Nordby", "{requests:?}");
    sms.shutdown().await;
}

#[tokio::test]
async fn client_error_fails_without_retry() {
    let (addr, p) = provider().await;
    let dir = tempfile::tempdir().unwrap();
    let sms = gateway(addr, "bad", TOKEN, dir.path()).await;
    let id = sms
        .enqueue("call-2", "pas.bestil", &anna(), "Pas")
        .await
        .unwrap();
    let m = wait_sms_status(&sms, id, Status::Failed).await;
    assert_eq!(m.attempts, 1);
    assert!(m.last_error.unwrap().contains("400"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(p.requests.lock().unwrap().len(), 1, "not retried");
    sms.shutdown().await;
}

#[tokio::test]
async fn server_error_is_retried_until_accepted() {
    let (addr, p) = provider().await;
    let dir = tempfile::tempdir().unwrap();
    let sms = gateway(addr, "flaky", TOKEN, dir.path()).await;
    let id = sms
        .enqueue("call-3", "mitid.hjaelp", &anna(), "MitID")
        .await
        .unwrap();
    let m = wait_sms_status(&sms, id, Status::Sent).await;
    assert_eq!(m.attempts, 2);
    assert_eq!(m.smsc_message_id.as_deref(), Some("77"));
    let requests = p.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].1, requests[1].1,
        "the retry is the same message, same reference"
    );
    assert_eq!(sms.metrics().retried.get(), 1);
    sms.shutdown().await;
}

#[tokio::test]
async fn wrong_token_is_refused_by_the_provider() {
    let (addr, p) = provider().await;
    let dir = tempfile::tempdir().unwrap();
    let sms = gateway(addr, "ok", "wrong", dir.path()).await;
    let id = sms
        .enqueue("call-4", "pas.bestil", &anna(), "Pas")
        .await
        .unwrap();
    let m = wait_sms_status(&sms, id, Status::Failed).await;
    assert!(m.last_error.unwrap().contains("401"));
    assert!(p.requests.lock().unwrap().is_empty());
    sms.shutdown().await;
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_retried_then_given_up() {
    let (addr, p) = provider().await;
    let dir = tempfile::tempdir().unwrap();
    let sms = gateway(addr, "slow", TOKEN, dir.path()).await;
    let id = sms
        .enqueue("call-5", "pas.bestil", &anna(), "Pas")
        .await
        .unwrap();
    let m = wait_sms_status(&sms, id, Status::Failed).await;
    assert_eq!(m.attempts, 3, "max_attempts");
    assert!(m.last_error.unwrap().contains("unreachable"));
    assert_eq!(p.requests.lock().unwrap().len(), 3);
    sms.shutdown().await;

    // Nobody listening at all.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let sms = gateway(closed, "ok", TOKEN, dir.path()).await;
    let id = sms
        .enqueue("call-6", "pas.bestil", &anna(), "Pas")
        .await
        .unwrap();
    let m = wait_sms_status(&sms, id, Status::Failed).await;
    assert_eq!(m.attempts, 3);
    sms.shutdown().await;
}
