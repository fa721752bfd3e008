//! When to try a failed submission again: exponential backoff with a cap, and a number
//! of attempts after which the message is given up. Pure: the clock is an argument.

use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failed attempt; doubled after each further one.
    pub initial: Duration,
    pub max: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    RetryAt(SystemTime),
    GiveUp,
}

impl RetryPolicy {
    /// After `attempts` attempts (≥ 1) of which the last failed just now.
    pub fn after_failure(&self, attempts: u32, now: SystemTime) -> Next {
        if attempts >= self.max_attempts {
            return Next::GiveUp;
        }
        let doublings = attempts.saturating_sub(1).min(31);
        let wait = self
            .initial
            .checked_mul(1 << doublings)
            .map_or(self.max, |w| w.min(self.max));
        Next::RetryAt(now + wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_up_to_the_cap_then_gives_up() {
        let p = RetryPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(60),
            max_attempts: 6,
        };
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let waits: Vec<u64> = (1..6)
            .map(|n| match p.after_failure(n, t0) {
                Next::RetryAt(t) => t.duration_since(t0).unwrap().as_secs(),
                Next::GiveUp => panic!("gave up after {n}"),
            })
            .collect();
        assert_eq!(waits, [10, 20, 40, 60, 60]);
        assert_eq!(p.after_failure(6, t0), Next::GiveUp);
        // No overflow however large the attempt count.
        let q = RetryPolicy {
            max_attempts: u32::MAX,
            ..p
        };
        assert_eq!(
            q.after_failure(1000, t0),
            Next::RetryAt(t0 + Duration::from_secs(60))
        );
    }
}
