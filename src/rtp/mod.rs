//! RTP media: packets in and out, paced, with a jitter buffer and RFC 4733 DTMF.
pub mod arrival;
pub mod dtmf;
pub mod jitter;
pub mod session;
