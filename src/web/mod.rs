//! Callers from the municipality's web page: the page (`/call`, and `/call/embed.js`
//! for the municipality's own site) and its one signalling exchange
//! (`POST /webrtc/offer`: the page's SDP offer in, our answer out, WHIP-style), after
//! it asked `GET /webrtc/ice` for the STUN and TURN servers (`ice`). Each web call is a
//! WebRTC leg (`leg`) the conversation drives like a phone call.

mod codec;
mod ice;
mod keys;
mod leg;
mod page;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tracing::Instrument;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{APIBuilder, API};
use webrtc::ice::udp_network::{EphemeralUDP, UDPNetwork};
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;

use crate::call::driver::{self, CallContext, Caller};
use crate::config::WebrtcConfig;
use crate::sip::rate_limit::{Rate, RateLimiter};
use crate::sip::uas::Admission;

/// Longest SDP offer read; a browser's audio-and-data offer is 2–6 KB.
const MAX_OFFER: usize = 16 * 1024;

pub struct WebCalls {
    api: API,
    config: WebrtcConfig,
    admission: Admission,
    offers: Mutex<RateLimiter>,
    /// Set once the gateway's call context exists; offers before that get 503.
    calls: OnceLock<Arc<CallContext>>,
}

impl WebCalls {
    pub fn new(config: &WebrtcConfig, admission: Admission) -> anyhow::Result<Arc<Self>> {
        let mut media = MediaEngine::default();
        media.register_default_codecs()?;
        let interceptors = register_default_interceptors(Registry::new(), &mut media)?;
        let mut settings = SettingEngine::default();
        // A page on the same machine (a kiosk, the tests) reaches us over loopback.
        settings.set_include_loopback_candidate(true);
        if let Some((low, high)) = config.ports {
            settings.set_udp_network(UDPNetwork::Ephemeral(EphemeralUDP::new(low, high)?));
        }
        let api = APIBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(interceptors)
            .with_setting_engine(settings)
            .build();
        let per_minute = config.offers_per_minute;
        Ok(Arc::new(WebCalls {
            api,
            config: config.clone(),
            admission,
            offers: Mutex::new(RateLimiter::new(per_minute as f64 / 60.0, per_minute)),
            calls: OnceLock::new(),
        }))
    }

    /// Web calls are taken from now on, driven with `ctx`.
    pub fn open(&self, ctx: Arc<CallContext>) {
        self.calls.set(ctx).ok();
    }

    pub fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/call", get(page::call))
            .route("/call/embed.js", get(page::embed))
            .route("/webrtc/ice", get(ice_servers))
            .route("/webrtc/offer", post(offer).options(preflight))
            .with_state(self)
    }

    fn rtc_config(&self) -> RTCConfiguration {
        RTCConfiguration {
            ice_servers: ice::for_gateway(&self.config, SystemTime::now()),
            ..Default::default()
        }
    }
}

/// `GET /webrtc/ice`: the servers (with this call's TURN credentials) and the policy
/// the page's peer connection is made with; never cached.
async fn ice_servers(State(web): State<Arc<WebCalls>>) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(ice::for_page(&web.config, SystemTime::now())),
    )
        .into_response()
}

/// `OPTIONS /webrtc/offer`: a browser asks before an allowed site's page posts an
/// offer (its body is `application/sdp`, which needs the asking); others get 403.
async fn preflight(State(web): State<Arc<WebCalls>>, headers: HeaderMap) -> Response {
    match origin_allowed(&web.config.allowed_origins, &headers) {
        Ok(Some(origin)) => (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
                (header::ACCESS_CONTROL_ALLOW_METHODS, "POST".into()),
                (header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type".into()),
                (header::ACCESS_CONTROL_MAX_AGE, "600".into()),
                (header::VARY, "Origin".into()),
            ],
        )
            .into_response(),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(why) => (StatusCode::FORBIDDEN, why).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct OfferQuery {
    lang: Option<String>,
}

/// `POST /webrtc/offer` (body: the page's SDP offer, `application/sdp`): 201 with our
/// answer; 4xx/503 with a reason.
async fn offer(
    State(web): State<Arc<WebCalls>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Query(q): Query<OfferQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let refuse = |status: StatusCode, why: String| {
        tracing::info!(%client, %why, "web call refused ({})", status.as_u16());
        (status, why).into_response()
    };
    let cors = match origin_allowed(&web.config.allowed_origins, &headers) {
        Ok(cors) => cors,
        Err(why) => return refuse(StatusCode::FORBIDDEN, why),
    };
    if let Rate::Limited(wait) = lock(&web.offers).check(Instant::now(), client.ip()) {
        let mut r = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "too many web calls from this address".into(),
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            (wait.as_secs() + 1).to_string().parse().expect("digits"),
        );
        return r;
    }
    if body.len() > MAX_OFFER {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("an offer of {} bytes", body.len()),
        );
    }
    let Ok(sdp) = String::from_utf8(body.to_vec()) else {
        return refuse(StatusCode::BAD_REQUEST, "the offer is not text".into());
    };
    let Some(codec) = leg::choose_codec(&sdp) else {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the offer has neither Opus nor PCMU audio".into(),
        );
    };
    let Some(ctx) = web.calls.get().cloned() else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "starting up".into());
    };
    let Some(slot) = web.admission.web_slot() else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "all lines are busy".into());
    };
    let negotiated = match leg::negotiate(&web.api, web.rtc_config(), sdp, codec, slot).await {
        Ok(n) => n,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("offer not accepted: {e}")),
    };
    let language = match q.lang.as_deref() {
        Some("en") => "en",
        _ => "da",
    };
    let call_id = format!("web-{:016x}", rand::random::<u64>());
    let span = tracing::info_span!("call", %call_id, source = %client, channel = "webrtc");
    tokio::spawn(run(negotiated.pending, call_id, language.to_string(), ctx).instrument(span));
    let mut response = (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/sdp")],
        negotiated.answer,
    )
        .into_response();
    if let Some(origin) = cors {
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            origin.parse().expect("checked origin"),
        );
    }
    response
}

async fn run(pending: leg::Pending, call_id: String, language: String, ctx: Arc<CallContext>) {
    let timeout = std::time::Duration::from_secs(ctx.config.rtp.timeout_secs);
    let Some(connected) = pending.connect(timeout).await else {
        return;
    };
    tracing::info!(codec = ?connected.codec, "web caller connected");
    let caller = Caller {
        call_id,
        called: "web".into(),
        language,
        user: None,
        // The answer's link is shown on the page instead.
        sms_to: None,
    };
    let mut line = connected.line;
    driver::converse(&mut line, connected.media, connected.events, caller, ctx).await;
}

/// A page from elsewhere may start a call only if its origin is allowed.
fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> Result<Option<String>, String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(None);
    };
    let origin = origin.to_str().map_err(|_| "unreadable Origin")?;
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or(origin.strip_prefix("https://"))
                == Some(host)
        });
    if own {
        return Ok(None);
    }
    if allowed.iter().any(|o| o == origin) {
        return Ok(Some(origin.to_string()));
    }
    Err(format!(
        "origin {origin} is not in [webrtc] allowed_origins"
    ))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn our_own_page_and_allowed_sites_may_call_and_others_may_not() {
        let allowed = ["https://www.kommune.dk".to_string()];
        let host = "gateway.kommune.dk";
        assert_eq!(origin_allowed(&allowed, &headers(None, host)), Ok(None));
        assert_eq!(
            origin_allowed(&allowed, &headers(Some("https://gateway.kommune.dk"), host)),
            Ok(None)
        );
        assert_eq!(
            origin_allowed(&allowed, &headers(Some("https://www.kommune.dk"), host)),
            Ok(Some("https://www.kommune.dk".into()))
        );
        let refused = origin_allowed(&allowed, &headers(Some("https://evil.example"), host));
        assert!(refused.unwrap_err().contains("evil.example"));
        // An allowed origin must match exactly, not as a prefix.
        assert!(origin_allowed(
            &allowed,
            &headers(Some("https://www.kommune.dk.evil"), host)
        )
        .is_err());
    }
}
