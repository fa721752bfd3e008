//! Who may see the dashboard and the switchboard pages: they show what callers said
//! (redacted, but still personal), so they need `[http] dashboard_token` unless the
//! gateway listens on loopback only. Health checks stay open; `/metrics` too unless
//! `[http] metrics_token_required`.
//!
//! The token is accepted as `Authorization: Bearer <token>` or as the password of basic
//! auth, or once at `POST /login`, which gives the browser a session cookie
//! ([`session`]). Never in a URL: `?token=` would land in browser history and logs.
//! A client address that keeps guessing at `/login` is locked out a while
//! ([`login_throttle`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use base64::Engine;
use serde::Deserialize;

use super::login_throttle::{Check, LoginThrottle};
use super::session::{self, Sessions};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Anyone who can reach the (loopback) listener.
    Open,
    /// Requests must carry this token, or a session got with it.
    Token(String),
    /// No token and a public listener: the pages are not served.
    Disabled,
}

impl Policy {
    pub fn new(token: Option<&str>, listen: SocketAddr) -> Policy {
        match token {
            Some(t) if !t.is_empty() => Policy::Token(t.to_string()),
            _ if listen.ip().is_loopback() => Policy::Open,
            _ => Policy::Disabled,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Unauthorized,
    NotServed,
}

/// Decides on a request's `Authorization` header, and whether it carries a live
/// session.
pub fn decide(policy: &Policy, authorization: Option<&str>, session: bool) -> Decision {
    let token = match policy {
        Policy::Open => return Decision::Allow,
        Policy::Disabled => return Decision::NotServed,
        Policy::Token(t) => t.as_bytes(),
    };
    if session {
        return Decision::Allow;
    }
    let from_header = authorization.and_then(|a| {
        if let Some(bearer) = a.strip_prefix("Bearer ") {
            return Some(bearer.trim().as_bytes().to_vec());
        }
        let basic = base64::engine::general_purpose::STANDARD
            .decode(a.strip_prefix("Basic ")?.trim())
            .ok()?;
        let colon = basic.iter().position(|&b| b == b':')?;
        Some(basic[colon + 1..].to_vec())
    });
    if from_header.is_some_and(|given| same(&given, token)) {
        Decision::Allow
    } else {
        Decision::Unauthorized
    }
}

/// Compares without stopping at the first difference, so timing tells nothing.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The policy and the sessions logged in under it.
#[derive(Debug)]
pub struct Auth {
    pub policy: Policy,
    sessions: Mutex<Sessions>,
    throttle: Mutex<LoginThrottle>,
    /// The pages are served over HTTPS: the session cookie is marked `Secure`.
    pub https: bool,
}

impl Auth {
    pub fn new(policy: Policy) -> Self {
        Auth {
            policy,
            sessions: Mutex::new(Sessions::default()),
            throttle: Mutex::new(LoginThrottle::default()),
            https: false,
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, LoginThrottle> {
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has_session(&self, headers: &HeaderMap) -> bool {
        let now = Instant::now();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(session::from_cookie_header)
            .any(|id| self.sessions().is_valid(now, id))
    }
}

/// Axum middleware applying the policy.
pub async fn require(State(auth): State<Arc<Auth>>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let session = auth.has_session(request.headers());
    match decide(&auth.policy, authorization, session) {
        Decision::Allow => next.run(request).await,
        Decision::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"voicebot\"")],
            "a dashboard token is required: log in at /login",
        )
            .into_response(),
        Decision::NotServed => not_served(),
    }
}

fn not_served() -> Response {
    (
        StatusCode::NOT_FOUND,
        "the dashboard is off: set [http] dashboard_token to serve it on a public address",
    )
        .into_response()
}

const LOGIN_PAGE: &str = "<!doctype html><html lang=\"da\"><head><meta charset=\"utf-8\">\
<title>Log ind</title></head><body><h1>Voicebot</h1>{message}\
<form method=\"post\" action=\"/login\"><label>Adgangsnøgle \
<input type=\"password\" name=\"token\" autofocus></label> <button>Log ind</button></form>\
</body></html>";

fn login_page(message: &str) -> Html<String> {
    Html(LOGIN_PAGE.replace("{message}", message))
}

/// `GET /login`: the form.
pub async fn login_form(State(auth): State<Arc<Auth>>) -> Response {
    match auth.policy {
        Policy::Disabled => not_served(),
        _ => login_page("").into_response(),
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /login`: the token, once, for a session cookie; then to the dashboard. A client
/// locked out for guessing gets 429 with Retry-After, whatever it sends.
pub async fn login(
    State(auth): State<Arc<Auth>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let ip = client.ip();
    let now = Instant::now();
    let to_dashboard = |cookie: Option<String>| {
        let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
        if let Some(c) = cookie.and_then(|c| c.parse().ok()) {
            r.headers_mut().insert(header::SET_COOKIE, c);
        }
        r
    };
    if let (Policy::Token(_), Check::Refused(wait)) = (&auth.policy, auth.throttle().check(now, ip))
    {
        let retry = (wait.as_secs() + 1).to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry)],
            login_page("<p>For mange forkerte forsøg. Prøv igen senere.</p>"),
        )
            .into_response();
    }
    match &auth.policy {
        Policy::Disabled => not_served(),
        Policy::Open => to_dashboard(None),
        Policy::Token(t) if same(form.token.as_bytes(), t.as_bytes()) => {
            auth.throttle().succeeded(ip);
            let mut sessions = auth.sessions();
            let id = sessions.create(Instant::now());
            let max_age = sessions.lifetime().as_secs();
            let secure = if auth.https { "; Secure" } else { "" };
            to_dashboard(Some(format!(
                "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
                session::COOKIE
            )))
        }
        Policy::Token(_) => {
            tracing::info!(%client, "dashboard login with a wrong token");
            if let Some(failures) = auth.throttle().failed(now, ip) {
                // The address is in the message: fail2ban's filter reads it there.
                tracing::warn!(failures, "dashboard login refused: {ip} (429, locked out)");
            }
            (
                StatusCode::UNAUTHORIZED,
                login_page("<p>Forkert adgangsnøgle.</p>"),
            )
                .into_response()
        }
    }
}

/// `POST /logout`: ends the session.
pub async fn logout(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    for id in headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(session::from_cookie_header)
    {
        auth.sessions().end(id);
    }
    let clear = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        session::COOKIE
    );
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
    if let Ok(v) = clear.parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_taken_from_bearer_or_basic_never_the_url() {
        let p = Policy::new(Some("s3cret"), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(decide(&p, Some("Bearer s3cret"), false), Decision::Allow);
        // "staff:s3cret"
        assert_eq!(
            decide(&p, Some("Basic c3RhZmY6czNjcmV0"), false),
            Decision::Allow
        );
        assert_eq!(decide(&p, None, false), Decision::Unauthorized);
        assert_eq!(
            decide(&p, Some("Bearer s3cre"), false),
            Decision::Unauthorized
        );
        // A live session (from POST /login) is enough.
        assert_eq!(decide(&p, None, true), Decision::Allow);
    }

    #[test]
    fn without_a_token_only_loopback_serves_the_pages() {
        let local = Policy::new(None, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(decide(&local, None, false), Decision::Allow);
        let public = Policy::new(None, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(decide(&public, Some("Bearer x"), true), Decision::NotServed);
    }
}
