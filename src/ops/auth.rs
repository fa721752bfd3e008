//! Who may see the dashboard and the switchboard pages: they show what callers said
//! (redacted, but still personal), so they need `[http] dashboard_token` unless the
//! gateway listens on loopback only. Metrics and health checks stay open.
//!
//! The token is accepted as `Authorization: Bearer <token>`, as the password of basic
//! auth (a browser's login prompt), or as `?token=` (a bookmarked link).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Anyone who can reach the (loopback) listener.
    Open,
    /// Requests must carry this token.
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

/// Decides on a request's `Authorization` header and query string.
pub fn decide(policy: &Policy, authorization: Option<&str>, query: Option<&str>) -> Decision {
    let token = match policy {
        Policy::Open => return Decision::Allow,
        Policy::Disabled => return Decision::NotServed,
        Policy::Token(t) => t.as_bytes(),
    };
    let from_query = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|kv| {
            kv.strip_prefix("token=")
                .map(|v| percent_decode(v).into_bytes())
        });
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
    if from_header
        .into_iter()
        .chain(from_query)
        .any(|given| same(&given, token))
    {
        Decision::Allow
    } else {
        Decision::Unauthorized
    }
}

/// Compares without stopping at the first difference, so timing tells nothing.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Axum middleware applying the policy.
pub async fn require(State(policy): State<Arc<Policy>>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match decide(&policy, authorization, request.uri().query()) {
        Decision::Allow => next.run(request).await,
        Decision::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"voicebot\"")],
            "a dashboard token is required",
        )
            .into_response(),
        Decision::NotServed => (
            StatusCode::NOT_FOUND,
            "the dashboard is off: set [http] dashboard_token to serve it on a public address",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_taken_from_bearer_basic_or_query() {
        let p = Policy::new(Some("s3cret"), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(decide(&p, Some("Bearer s3cret"), None), Decision::Allow);
        // "staff:s3cret"
        assert_eq!(
            decide(&p, Some("Basic c3RhZmY6czNjcmV0"), None),
            Decision::Allow
        );
        assert_eq!(decide(&p, None, Some("a=1&token=s3cret")), Decision::Allow);
        assert_eq!(decide(&p, None, None), Decision::Unauthorized);
        assert_eq!(
            decide(&p, Some("Bearer s3cre"), None),
            Decision::Unauthorized
        );
        assert_eq!(
            decide(&p, None, Some("token=wrong")),
            Decision::Unauthorized
        );
        let p = Policy::new(Some("a b&c"), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(decide(&p, None, Some("token=a%20b%26c")), Decision::Allow);
    }

    #[test]
    fn without_a_token_only_loopback_serves_the_pages() {
        let local = Policy::new(None, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(decide(&local, None, None), Decision::Allow);
        let public = Policy::new(None, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(decide(&public, Some("Bearer x"), None), Decision::NotServed);
    }
}
