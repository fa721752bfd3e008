//! What ops staff watch: metrics and health over HTTP.
pub mod http;
pub mod live;
pub mod metrics;
pub mod switchboard;
