//! How often one untrusted source may start a call: a token bucket per source address
//! (`[sip.rate_limit] per_source_per_sec`, `burst`).
//!
//! Sans-IO: every input carries `now`. The table is bounded: a source whose bucket has
//! refilled is the same as one never seen, so such entries are dropped when room is
//! needed; if every entry is still draining (a flood from very many addresses), new
//! sources are refused until some refill, which costs trusted peers nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Sources remembered at once.
pub const MAX_SOURCES: usize = 16_384;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    capacity: usize,
    buckets: HashMap<IpAddr, Bucket>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Allowed,
    /// Over the rate; a token is back after this long.
    Limited(Duration),
}

impl RateLimiter {
    /// `per_sec` must be positive and `burst` at least 1 (config checks both).
    pub fn new(per_sec: f64, burst: u32) -> Self {
        Self::with_capacity(per_sec, burst, MAX_SOURCES)
    }

    pub fn with_capacity(per_sec: f64, burst: u32, capacity: usize) -> Self {
        RateLimiter {
            per_sec: per_sec.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            capacity: capacity.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `source` if it has one.
    pub fn check(&mut self, now: Instant, source: IpAddr) -> Rate {
        if !self.buckets.contains_key(&source) && self.buckets.len() >= self.capacity {
            self.forget_refilled(now);
            if self.buckets.len() >= self.capacity {
                return Rate::Limited(Duration::from_secs_f64(1.0 / self.per_sec));
            }
        }
        let (per_sec, burst) = (self.per_sec, self.burst);
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Rate::Allowed
        } else {
            Rate::Limited(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec))
        }
    }

    fn forget_refilled(&mut self, now: Instant) {
        let (per_sec, burst) = (self.per_sec, self.burst);
        self.buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec < burst
        });
    }

    pub fn sources(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(1.0, 5);
        for _ in 0..5 {
            assert_eq!(l.check(t0, ip(1)), Rate::Allowed);
        }
        let Rate::Limited(wait) = l.check(t0, ip(1)) else {
            panic!("the sixth at once is over the burst");
        };
        assert_eq!(wait, Duration::from_secs(1));
        // Another source has its own bucket.
        assert_eq!(l.check(t0, ip(2)), Rate::Allowed);
        // One token back per second, no more.
        let t1 = t0 + Duration::from_millis(1000);
        assert_eq!(l.check(t1, ip(1)), Rate::Allowed);
        assert!(matches!(l.check(t1, ip(1)), Rate::Limited(_)));
        let Rate::Limited(wait) = l.check(t1 + Duration::from_millis(250), ip(1)) else {
            panic!("still empty");
        };
        assert_eq!(wait, Duration::from_millis(750));
        // A long quiet spell refills to the burst, not beyond.
        let later = t1 + Duration::from_secs(3600);
        for _ in 0..5 {
            assert_eq!(l.check(later, ip(1)), Rate::Allowed);
        }
        assert!(matches!(l.check(later, ip(1)), Rate::Limited(_)));
    }

    #[test]
    fn the_table_is_bounded() {
        let t0 = Instant::now();
        let mut l = RateLimiter::with_capacity(1.0, 1, 3);
        for i in 0..3 {
            assert_eq!(l.check(t0, ip(i)), Rate::Allowed);
        }
        // Full of draining buckets: a new source waits, known ones still count.
        assert!(matches!(l.check(t0, ip(9)), Rate::Limited(_)));
        assert_eq!(l.check(t0, ip(0)), Rate::Limited(Duration::from_secs(1)));
        assert_eq!(l.sources(), 3);
        // Once buckets have refilled, their entries make room.
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(l.check(t1, ip(9)), Rate::Allowed);
        assert_eq!(l.sources(), 1);
    }
}
