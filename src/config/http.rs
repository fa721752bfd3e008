//! `[http]`: the staff pages, metrics and health, and the web callers' page.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Required (as `Authorization: Bearer`, `?token=` or a basic-auth password) for the
    /// dashboard and the switchboard pages. Unset: those pages are served only when
    /// `listen` is a loopback address.
    pub dashboard_token: Option<String>,
    /// A separate listener for `/metrics`, `/healthz` and `/readyz` only.
    pub metrics_listen: Option<SocketAddr>,
    /// `/metrics` (on both listeners) needs `dashboard_token` too.
    pub metrics_token_required: bool,
    /// A client must send a request's headers within this long, and a connection idle
    /// this long between requests is closed.
    pub header_timeout_secs: u64,
    /// HTTP connections open at once (per listener); more are closed at once.
    pub max_connections: usize,
    /// PEM certificate chain and private key: `listen` serves HTTPS (the metrics
    /// listener stays plain, for a local scraper).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".parse().expect("valid default"),
            dashboard_token: None,
            metrics_listen: None,
            metrics_token_required: false,
            header_timeout_secs: 10,
            max_connections: 256,
            tls_cert: None,
            tls_key: None,
        }
    }
}
