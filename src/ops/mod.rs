//! What ops staff watch: metrics and health over HTTP.
pub mod http;
pub mod metrics;
