//! What ops staff watch: metrics, health, call records and the dashboard over HTTP.
pub mod auth;
pub mod charts;
pub mod dashboard;
pub mod http;
pub mod listener;
pub mod live;
pub mod login_throttle;
pub mod metrics;
pub mod prompts;
pub mod records;
pub mod session;
pub mod summary;
pub mod switchboard;
pub mod teach;
pub mod tls;
