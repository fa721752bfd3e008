//! SIP signalling: rsipstack behind our request guard, SDP offer/answer, and the UAS
//! side that turns INVITEs into calls.
pub mod dialogs;
pub mod guard;
pub mod sdp;
pub mod stack;
pub mod transport;
pub mod uas;
