//! RTP media: packets in and out, paced, with a jitter buffer, RFC 4733 DTMF, and
//! strict RTP (`latch`), SRTP for calls over TLS (`srtp`).
pub mod arrival;
pub mod counters;
pub mod dtmf;
pub mod jitter;
pub mod latch;
pub mod session;
pub mod srtp;
