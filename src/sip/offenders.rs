//! Which refused sources to report: one log line per offending address per minute,
//! so an intrusion blocker (fail2ban, `contrib/fail2ban/`) can act on it without a
//! flood of INVITEs becoming a flood of log lines.
//!
//! Sans-IO and bounded: when the table is full of sources reported within the last
//! minute, a new source is not reported (its refusals still are counted in metrics).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub const MAX_OFFENDERS: usize = 16_384;

#[derive(Debug, Clone, Copy)]
struct Entry {
    reported: Instant,
    /// Refusals since the last report line, this one excluded.
    unreported: u64,
}

#[derive(Debug)]
pub struct Offenders {
    every: Duration,
    capacity: usize,
    seen: HashMap<IpAddr, Entry>,
}

impl Default for Offenders {
    fn default() -> Self {
        Offenders::new(Duration::from_secs(60), MAX_OFFENDERS)
    }
}

impl Offenders {
    pub fn new(every: Duration, capacity: usize) -> Self {
        Offenders {
            every,
            capacity: capacity.max(1),
            seen: HashMap::new(),
        }
    }

    /// A refusal of `source`: `Some(n)` when a line is due, `n` being the refusals it
    /// stands for (this one and those not reported since the last line).
    pub fn refused(&mut self, now: Instant, source: IpAddr) -> Option<u64> {
        if let Some(e) = self.seen.get_mut(&source) {
            if now.saturating_duration_since(e.reported) < self.every {
                e.unreported += 1;
                return None;
            }
            let n = e.unreported + 1;
            *e = Entry {
                reported: now,
                unreported: 0,
            };
            return Some(n);
        }
        if self.seen.len() >= self.capacity {
            let every = self.every;
            self.seen
                .retain(|_, e| now.saturating_duration_since(e.reported) < every);
            if self.seen.len() >= self.capacity {
                return None;
            }
        }
        self.seen.insert(
            source,
            Entry {
                reported: now,
                unreported: 0,
            },
        );
        Some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, last])
    }

    #[test]
    fn one_line_per_source_per_minute_counting_the_rest() {
        let t0 = Instant::now();
        let mut o = Offenders::default();
        assert_eq!(o.refused(t0, ip(1)), Some(1));
        for i in 1..100 {
            assert_eq!(o.refused(t0 + Duration::from_millis(i * 100), ip(1)), None);
        }
        assert_eq!(
            o.refused(t0, ip(2)),
            Some(1),
            "another source has its own line"
        );
        assert_eq!(o.refused(t0 + Duration::from_secs(60), ip(1)), Some(100));
        assert_eq!(o.refused(t0 + Duration::from_secs(61), ip(1)), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let t0 = Instant::now();
        let mut o = Offenders::new(Duration::from_secs(60), 2);
        assert_eq!(o.refused(t0, ip(1)), Some(1));
        assert_eq!(o.refused(t0, ip(2)), Some(1));
        assert_eq!(o.refused(t0, ip(3)), None, "full of recent offenders");
        let later = t0 + Duration::from_secs(60);
        assert_eq!(o.refused(later, ip(3)), Some(1), "old entries made room");
        assert_eq!(o.seen.len(), 1);
    }
}
