//! SIP signalling: rsipstack behind our request guard, SDP offer/answer, who may call
//! (`access`), and the UAS side that turns INVITEs into calls.
pub mod access;
pub mod answer;
pub mod cidr;
pub mod dialogs;
pub mod digest;
pub mod guard;
pub mod header_value;
pub mod identity;
pub mod offenders;
pub mod rate_limit;
pub mod sdes;
pub mod sdp;
pub mod stack;
pub mod tls;
pub mod transport;
pub mod uas;

/// What our Server and User-Agent headers say: a product name and version in every
/// answer tells a scanner (SIPVicious and the like) which exploits to try.
pub const AGENT: &str = "SIP";
