//! A circuit breaker for calls to the intent service, as a sans-IO state machine.
//!
//! When the service is down every call would wait for its deadline (800 ms) before the
//! caller hears the apology and is transferred. After `failure_threshold` consecutive
//! failures the breaker opens: calls fail at once for `cooldown`. Then it lets one probe
//! call through (half-open); its success closes the breaker, its failure opens it again.
//!
//! It never reads the clock: the caller passes `now`, so tests drive it with a fake
//! clock and the client stays the only place that knows about real time.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before a probe is let through.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cooldown: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is in flight since `since`; if its outcome never arrives (the call was
    /// dropped), another probe is allowed after a further cooldown.
    HalfOpen {
        since: Instant,
    },
}

#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: State,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: State::Closed { failures: 0 },
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a call may go out now. `Err` carries how long until one may.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        match self.state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { since: now };
                Ok(())
            }
            State::Open { until } => Err(until - now),
            State::HalfOpen { since } if now >= since + self.config.cooldown => {
                self.state = State::HalfOpen { since: now };
                Ok(())
            }
            State::HalfOpen { since } => Err(since + self.config.cooldown - now),
        }
    }

    pub fn on_success(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    pub fn on_failure(&mut self, now: Instant) {
        self.state = match self.state {
            State::Closed { failures } if failures + 1 < self.config.failure_threshold => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            _ => State::Open {
                until: now + self.config.cooldown,
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(10);

    fn breaker() -> (Breaker, Instant) {
        (
            Breaker::new(BreakerConfig {
                failure_threshold: 3,
                cooldown: COOL,
            }),
            Instant::now(),
        )
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let (mut b, t0) = breaker();
        b.on_failure(t0);
        b.on_failure(t0);
        b.on_success();
        b.on_failure(t0);
        b.on_failure(t0);
        assert_eq!(
            b.try_acquire(t0),
            Ok(()),
            "a success in between resets the count"
        );
        b.on_failure(t0);
        assert_eq!(b.state(), State::Open { until: t0 + COOL });
        assert_eq!(
            b.try_acquire(t0 + Duration::from_secs(4)),
            Err(Duration::from_secs(6))
        );
    }

    #[test]
    fn half_open_lets_one_probe_through() {
        let (mut b, t0) = breaker();
        (0..3).for_each(|_| b.on_failure(t0));
        let t1 = t0 + COOL;
        assert_eq!(b.try_acquire(t1), Ok(()));
        assert_eq!(b.state(), State::HalfOpen { since: t1 });
        assert!(
            b.try_acquire(t1 + Duration::from_millis(1)).is_err(),
            "only one probe at a time"
        );
        b.on_success();
        assert_eq!(b.state(), State::Closed { failures: 0 });
        assert_eq!(b.try_acquire(t1), Ok(()));
    }

    #[test]
    fn a_failed_probe_opens_again() {
        let (mut b, t0) = breaker();
        (0..3).for_each(|_| b.on_failure(t0));
        let t1 = t0 + COOL;
        b.try_acquire(t1).unwrap();
        b.on_failure(t1);
        assert_eq!(b.state(), State::Open { until: t1 + COOL });
        assert!(b.try_acquire(t1 + COOL - Duration::from_millis(1)).is_err());
        assert!(b.try_acquire(t1 + COOL).is_ok());
    }

    #[test]
    fn a_lost_probe_does_not_wedge_the_breaker() {
        let (mut b, t0) = breaker();
        (0..3).for_each(|_| b.on_failure(t0));
        let t1 = t0 + COOL;
        b.try_acquire(t1).unwrap();
        // The probe's future was dropped: no outcome is ever reported.
        assert!(b.try_acquire(t1 + COOL / 2).is_err());
        assert!(b.try_acquire(t1 + COOL).is_ok());
    }
}
