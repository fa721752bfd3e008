//! Who may place calls, and how many.
//!
//! Trusted peers (`[sip] trusted`: the carrier's SBC, trunks, the PBX) are limited only
//! by `max_calls`: one carrier address brings every citizen's call. Anyone else is
//! refused with 403 unless `[sip] open`, and then held to `[sip.rate_limit]`: new calls
//! per second and in a burst, calls at once per source, and never more than the lines
//! left after `reserved_for_trusted`. Sans-IO: `admit` takes `now`; the answering side
//! turns its verdict into a response and a log line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::cidr::Cidr;
use super::digest::Trunk;
use super::offenders::Offenders;
use super::rate_limit::{Rate, RateLimiter};

#[derive(Debug, Clone)]
pub struct AccessSettings {
    pub trusted: Vec<Cidr>,
    /// Sources that must authenticate (digest); checked before `trusted`.
    pub trunks: Vec<Trunk>,
    pub open: bool,
    pub per_source_per_sec: f64,
    pub burst: u32,
    pub max_calls_per_source: usize,
    /// Lines untrusted sources may hold together: `max_calls - reserved_for_trusted`.
    pub untrusted_lines: usize,
    /// Retry-After for a refusal by a call count (the rate gives its own).
    pub retry_after: Duration,
}

/// Which limit an untrusted source ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Rate,
    CallsPerSource,
    UntrustedLines,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Rate => "rate",
            Limit::CallsPerSource => "calls_per_source",
            Limit::UntrustedLines => "untrusted_lines",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// A trusted peer.
    Trusted,
    /// A trunk's source (index into the trunks): trusted once it authenticates.
    Trunk(usize),
    /// An untrusted source under its limits; `call_ended` gives its place back.
    Untrusted,
    /// Not trusted, and the gateway is not open: 403. `report`: see `Limited`.
    Forbidden { report: Option<u64> },
    /// Over a limit: 503 with Retry-After. `report`: a log line is due for this source,
    /// standing for this many refusals (one line per source per minute).
    Limited {
        limit: Limit,
        retry_after: Duration,
        report: Option<u64>,
    },
}

#[derive(Debug)]
pub struct Access {
    settings: AccessSettings,
    limiter: RateLimiter,
    offenders: Offenders,
    /// Untrusted calls in progress, per source (entries removed at zero).
    calls: HashMap<IpAddr, usize>,
    untrusted_calls: usize,
}

impl Access {
    pub fn new(settings: AccessSettings) -> Self {
        Access {
            limiter: RateLimiter::new(settings.per_source_per_sec, settings.burst),
            offenders: Offenders::default(),
            calls: HashMap::new(),
            untrusted_calls: 0,
            settings,
        }
    }

    pub fn is_trusted(&self, source: IpAddr) -> bool {
        self.settings.trusted.iter().any(|c| c.contains(source))
    }

    /// A new INVITE from `source` (None: the transport could not tell, which is never
    /// trusted).
    pub fn admit(&mut self, now: Instant, source: Option<IpAddr>) -> Door {
        let Some(source) = source else {
            return Door::Forbidden { report: None };
        };
        if let Some(i) = self
            .settings
            .trunks
            .iter()
            .position(|t| t.source.contains(source))
        {
            return Door::Trunk(i);
        }
        if self.is_trusted(source) {
            return Door::Trusted;
        }
        if !self.settings.open {
            return Door::Forbidden {
                report: self.offenders.refused(now, source),
            };
        }
        let limited = |access: &mut Access, limit, retry_after| Door::Limited {
            limit,
            retry_after,
            report: access.offenders.refused(now, source),
        };
        if let Rate::Limited(wait) = self.limiter.check(now, source) {
            return limited(self, Limit::Rate, wait);
        }
        let retry = self.settings.retry_after;
        if self.calls.get(&source).copied().unwrap_or(0) >= self.settings.max_calls_per_source {
            return limited(self, Limit::CallsPerSource, retry);
        }
        if self.untrusted_calls >= self.settings.untrusted_lines {
            return limited(self, Limit::UntrustedLines, retry);
        }
        *self.calls.entry(source).or_insert(0) += 1;
        self.untrusted_calls += 1;
        Door::Untrusted
    }

    pub fn trunk(&self, i: usize) -> Option<&Trunk> {
        self.settings.trunks.get(i)
    }

    /// A refusal decided elsewhere (bad credentials): `Some(n)` when a log line for
    /// this source is due, standing for n refusals.
    pub fn refused(&mut self, now: Instant, source: IpAddr) -> Option<u64> {
        self.offenders.refused(now, source)
    }

    /// An untrusted call admitted by `admit` is over.
    pub fn call_ended(&mut self, source: IpAddr) {
        if let Some(n) = self.calls.get_mut(&source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.calls.remove(&source);
            }
            self.untrusted_calls = self.untrusted_calls.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(open: bool) -> AccessSettings {
        AccessSettings {
            trusted: vec!["127.0.0.1/32".parse().unwrap(), "::1".parse().unwrap()],
            trunks: Vec::new(),
            open,
            per_source_per_sec: 1.0,
            burst: 5,
            max_calls_per_source: 2,
            untrusted_lines: 3,
            retry_after: Duration::from_secs(30),
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn closed_doors_forbid_all_but_the_trusted() {
        let t0 = Instant::now();
        let mut a = Access::new(settings(false));
        for _ in 0..100 {
            assert_eq!(a.admit(t0, ip("127.0.0.1")), Door::Trusted);
        }
        assert_eq!(a.admit(t0, ip("::1")), Door::Trusted);
        assert_eq!(
            a.admit(t0, ip("127.0.0.2")),
            Door::Forbidden { report: Some(1) }
        );
        assert_eq!(
            a.admit(t0, ip("127.0.0.2")),
            Door::Forbidden { report: None }
        );
        assert_eq!(a.admit(t0, None), Door::Forbidden { report: None });
    }

    #[test]
    fn open_doors_hold_untrusted_sources_to_their_limits() {
        let t0 = Instant::now();
        let mut a = Access::new(settings(true));
        let flood = ip("127.0.0.3");
        assert_eq!(a.admit(t0, flood), Door::Untrusted);
        assert_eq!(a.admit(t0, flood), Door::Untrusted);
        // Two calls in progress: the third waits, reported once.
        assert_eq!(
            a.admit(t0, flood),
            Door::Limited {
                limit: Limit::CallsPerSource,
                retry_after: Duration::from_secs(30),
                report: Some(1)
            }
        );
        assert!(matches!(
            a.admit(t0, flood),
            Door::Limited {
                limit: Limit::CallsPerSource,
                report: None,
                ..
            }
        ));
        assert!(matches!(
            a.admit(t0, flood),
            Door::Limited {
                limit: Limit::CallsPerSource,
                ..
            }
        ));
        // Five tries used the burst: the sixth is over the rate.
        assert!(matches!(
            a.admit(t0, flood),
            Door::Limited {
                limit: Limit::Rate,
                ..
            }
        ));
        // Another untrusted source takes the last untrusted line ...
        assert_eq!(a.admit(t0, ip("127.0.0.4")), Door::Untrusted);
        // ... and then untrusted lines are full, whoever asks; trusted peers are not.
        assert!(matches!(
            a.admit(t0, ip("127.0.0.5")),
            Door::Limited {
                limit: Limit::UntrustedLines,
                ..
            }
        ));
        assert_eq!(a.admit(t0, ip("127.0.0.1")), Door::Trusted);
        // A call ends: its line and its source's place come back.
        a.call_ended("127.0.0.3".parse().unwrap());
        assert_eq!(a.admit(t0, ip("127.0.0.5")), Door::Untrusted);
        let later = t0 + Duration::from_secs(2);
        a.call_ended("127.0.0.5".parse().unwrap());
        assert_eq!(a.admit(later, flood), Door::Untrusted);
        // Ending a call never admitted changes nothing.
        a.call_ended("192.0.2.1".parse().unwrap());
        assert_eq!(a.untrusted_calls, 3);
    }
}
