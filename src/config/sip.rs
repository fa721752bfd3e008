//! `[sip]` and `[rtp]`: where calls come in, who may place them, and their media.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use crate::audio::g711::Law;
use crate::sip::cidr::Cidr;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// UDP and TCP are both served on this address.
    pub listen: SocketAddr,
    /// Calls beyond this are refused with 503 and Retry-After.
    pub max_calls: usize,
    /// Codec preference; the first one the caller also offers wins.
    #[serde(deserialize_with = "laws")]
    pub codecs: Vec<Law>,
    pub retry_after_secs: u32,
    /// SIP over TCP: connections open at once; more are closed as they arrive.
    pub tcp_max_connections: usize,
    /// SIP over TCP: a connection with no complete message (or CRLF keepalive) from
    /// the peer for this long is closed.
    pub tcp_idle_secs: u64,
    /// The carriers, trunks and PBXs that may place calls (address blocks), limited
    /// only by `max_calls`. Default: loopback only.
    pub trusted: Vec<Cidr>,
    /// Admit INVITEs from untrusted sources too, under `rate_limit` (a public SIP
    /// address); false: they get 403.
    pub open: bool,
    /// Lines untrusted sources can never take; default: half of `max_calls`.
    pub reserved_for_trusted: Option<usize>,
    pub rate_limit: RateLimitConfig,
    /// Trunks that authenticate with digest credentials (`[[sip.trunks]]`).
    pub trunks: Vec<crate::sip::digest::Trunk>,
    /// On SIGTERM/SIGINT: how long calls in progress may go on (new ones get 503)
    /// before the rest are ended with a goodbye.
    pub drain_secs: u64,
    /// SIP over TLS on this address (with `tls_cert` and `tls_key`); None: no TLS.
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for SIP over TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8 or PKCS#1) for SIP over TLS.
    pub tls_key: Option<PathBuf>,
    /// SRTP (SDES keys) on calls over TLS: off | optional | required.
    pub srtp: crate::sip::sdes::SrtpPolicy,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: "127.0.0.1:5060".parse().expect("valid default"),
            max_calls: 200,
            codecs: vec![Law::Alaw, Law::Ulaw],
            retry_after_secs: 30,
            tcp_max_connections: 256,
            tcp_idle_secs: 300,
            trusted: vec![
                "127.0.0.0/8".parse().expect("valid default"),
                "::1/128".parse().expect("valid default"),
            ],
            open: false,
            reserved_for_trusted: None,
            rate_limit: RateLimitConfig::default(),
            trunks: Vec::new(),
            drain_secs: 120,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            srtp: crate::sip::sdes::SrtpPolicy::Required,
        }
    }
}

impl SipConfig {
    /// Lines untrusted sources may hold together.
    pub fn untrusted_lines(&self) -> usize {
        let reserved = self.reserved_for_trusted.unwrap_or(self.max_calls / 2);
        self.max_calls.saturating_sub(reserved)
    }
}

/// `[sip.rate_limit]`: what an untrusted source may do when `[sip] open`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// New calls per second, on average.
    pub per_source_per_sec: f64,
    /// New calls at once after a quiet spell.
    pub burst: u32,
    /// Calls in progress at once.
    pub max_calls_per_source: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_source_per_sec: 1.0,
            burst: 5,
            max_calls_per_source: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpConfig {
    #[serde(deserialize_with = "port_range")]
    pub ports: (u16, u16),
    /// The address put in our SDP; defaults to the SIP listen address.
    pub public_ip: Option<IpAddr>,
    /// A call whose media stops this long is hung up.
    pub timeout_secs: u64,
    /// How long the receive jitter buffer waits for a missing packet (it plays the
    /// others as they arrive).
    pub jitter_ms: u32,
    /// Mute the bot's own voice when the caller's line sends it back (echo), so it
    /// does not barge in on itself (`audio::echo`).
    pub echo_suppression: bool,
    /// Subtract the bot's echo before the gate judges (`audio::echo::canceller`), so a
    /// caller quieter than the echo is heard over it. Off by default: where a jitter
    /// buffer moves the echo back and forth, what it leaves can still pass for the
    /// caller (measured in the closing note of this work).
    pub echo_cancellation: bool,
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            ports: (20000, 20999),
            public_ip: None,
            timeout_secs: 30,
            jitter_ms: 60,
            echo_suppression: true,
            echo_cancellation: false,
        }
    }
}

fn laws<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Law>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    if names.is_empty() {
        return Err(serde::de::Error::custom("at least one codec is needed"));
    }
    names
        .iter()
        .map(|n| match n.to_ascii_uppercase().as_str() {
            "PCMA" => Ok(Law::Alaw),
            "PCMU" => Ok(Law::Ulaw),
            other => Err(serde::de::Error::custom(format!(
                "unsupported codec {other:?} (PCMA and PCMU are supported)"
            ))),
        })
        .collect()
}

fn port_range<'de, D: Deserializer<'de>>(d: D) -> Result<(u16, u16), D::Error> {
    let s = String::deserialize(d)?;
    let err =
        || serde::de::Error::custom(format!("{s:?} is not a port range like \"20000-20999\""));
    let (a, b) = s.split_once('-').ok_or_else(err)?;
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|_| err())?,
        b.trim().parse().map_err(|_| err())?,
    );
    if a == 0 || b < a {
        return Err(err());
    }
    Ok((a, b))
}
