//! Guessing the dashboard token at `POST /login`: a client address with `MAX_FAILURES`
//! wrong tokens within `WINDOW` is refused (429, even with the right token) for
//! `LOCKOUT`, and each lockout is logged once with the address in the message, where
//! fail2ban's filter (contrib/fail2ban/voicebot.conf) finds it, as for SIP sources.
//!
//! Sans-IO: every call takes `now`. Bounded: at most `CAPACITY` addresses are
//! remembered; stale ones go first, then the oldest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(600);
pub const LOCKOUT: Duration = Duration::from_secs(900);
const CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    fn stale(&self, now: Instant) -> bool {
        self.locked_until
            .map_or(now >= self.first + WINDOW, |t| now >= t)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Allowed,
    /// Locked out for this much longer.
    Refused(Duration),
}

#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: HashMap<IpAddr, Failures>,
}

impl LoginThrottle {
    /// May this address try a token now?
    pub fn check(&mut self, now: Instant, ip: IpAddr) -> Check {
        match self.failures.get(&ip) {
            Some(f) if f.stale(now) => {
                self.failures.remove(&ip);
                Check::Allowed
            }
            Some(Failures {
                locked_until: Some(until),
                ..
            }) => Check::Refused(until.saturating_duration_since(now)),
            _ => Check::Allowed,
        }
    }

    /// A wrong token from `ip`; Some(failures) when this one locks it out (log it).
    pub fn failed(&mut self, now: Instant, ip: IpAddr) -> Option<u32> {
        if !self.failures.contains_key(&ip) {
            self.make_room(now);
        }
        let f = self.failures.entry(ip).or_insert(Failures {
            count: 0,
            first: now,
            locked_until: None,
        });
        if f.stale(now) {
            *f = Failures {
                count: 0,
                first: now,
                locked_until: None,
            };
        }
        f.count += 1;
        (f.count >= MAX_FAILURES && f.locked_until.is_none()).then(|| {
            f.locked_until = Some(now + LOCKOUT);
            f.count
        })
    }

    /// The right token: the address starts afresh.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.failures.remove(&ip);
    }

    fn make_room(&mut self, now: Instant) {
        if self.failures.len() < CAPACITY {
            return;
        }
        self.failures.retain(|_, f| !f.stale(now));
        if self.failures.len() >= CAPACITY {
            if let Some(oldest) = self
                .failures
                .iter()
                .min_by_key(|(_, f)| f.first)
                .map(|(ip, _)| *ip)
            {
                self.failures.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_lock_one_address_out_for_a_while() {
        let mut t = LoginThrottle::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let now = Instant::now();
        for i in 1..MAX_FAILURES {
            assert_eq!(t.check(now, a), Check::Allowed);
            assert_eq!(t.failed(now, a), None, "failure {i}");
        }
        assert_eq!(t.failed(now, a), Some(MAX_FAILURES));
        assert_eq!(t.check(now, a), Check::Refused(LOCKOUT));
        assert_eq!(
            t.check(now, b),
            Check::Allowed,
            "another address is not touched"
        );
        let later = now + LOCKOUT - Duration::from_secs(1);
        assert_eq!(t.check(later, a), Check::Refused(Duration::from_secs(1)));
        assert_eq!(t.check(now + LOCKOUT, a), Check::Allowed);
        assert_eq!(t.failed(now + LOCKOUT, a), None, "counting starts afresh");
    }

    #[test]
    fn failures_spread_beyond_the_window_or_a_success_do_not_add_up() {
        let mut t = LoginThrottle::default();
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let mut now = Instant::now();
        for _ in 0..3 * MAX_FAILURES {
            assert_eq!(t.failed(now, a), None);
            now += WINDOW / (MAX_FAILURES - 1);
        }
        for _ in 1..MAX_FAILURES {
            t.failed(now, a);
        }
        t.succeeded(a);
        assert_eq!(t.failed(now, a), None);
        assert_eq!(t.check(now, a), Check::Allowed);
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..(CAPACITY as u32 + 100) {
            t.failed(now, IpAddr::from(i.to_be_bytes()));
        }
        assert!(t.failures.len() <= CAPACITY);
    }
}
