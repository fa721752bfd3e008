//! Following a blind transfer by REFER (RFC 3515) to its end, sans-IO.
//!
//! A 202 to the REFER only means the caller's phone will try; what counts is the
//! status line in the NOTIFYs' `message/sipfrag` bodies: a 2xx there is success, a
//! 3xx–6xx is failure, and so is silence past the deadline. (rsipstack's
//! `ReferStatus::parse` fails on real NOTIFYs, so the sipfrag is read here.)

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Still waiting; feed events until the deadline.
    Waiting,
    /// The queue answered the caller's new call.
    Succeeded,
    Failed(Failure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The REFER itself was refused (or got no answer: 0).
    Rejected(u16),
    /// The caller's call to the queue failed with this status.
    Notified(u16),
    /// The subscription ended without a final status.
    Ended,
    TimedOut,
}

#[derive(Debug)]
pub struct ReferTracker {
    deadline: Instant,
    progress: Progress,
    /// The last provisional status heard (100 Trying, 180 Ringing), for logs.
    pub last_provisional: Option<u16>,
}

impl ReferTracker {
    pub fn new(now: Instant, timeout: Duration) -> ReferTracker {
        ReferTracker {
            deadline: now + timeout,
            progress: Progress::Waiting,
            last_provisional: None,
        }
    }

    pub fn progress(&self) -> Progress {
        self.progress
    }

    pub fn deadline(&self) -> Option<Instant> {
        (self.progress == Progress::Waiting).then_some(self.deadline)
    }

    /// The final response to the REFER (None: the request got no answer at all).
    pub fn on_refer_response(&mut self, status: Option<u16>) -> Progress {
        if self.progress == Progress::Waiting {
            match status {
                Some(s) if (200..300).contains(&s) => {}
                other => self.progress = Progress::Failed(Failure::Rejected(other.unwrap_or(0))),
            }
        }
        self.progress
    }

    /// A NOTIFY for the refer subscription: its body and `Subscription-State` value.
    pub fn on_notify(&mut self, body: &[u8], subscription_state: Option<&str>) -> Progress {
        if self.progress != Progress::Waiting {
            return self.progress;
        }
        match sipfrag_status(body) {
            Some(s) if (200..300).contains(&s) => self.progress = Progress::Succeeded,
            Some(s) if s >= 300 => self.progress = Progress::Failed(Failure::Notified(s)),
            Some(s) => self.last_provisional = Some(s),
            None => {}
        }
        let terminated = subscription_state
            .is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("terminated"));
        if terminated && self.progress == Progress::Waiting {
            self.progress = Progress::Failed(Failure::Ended);
        }
        self.progress
    }

    pub fn on_timer(&mut self, now: Instant) -> Progress {
        if self.progress == Progress::Waiting && now >= self.deadline {
            self.progress = Progress::Failed(Failure::TimedOut);
        }
        self.progress
    }
}

/// The status code of a `message/sipfrag` body's status line, `SIP/2.0 200 OK`.
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().find(|l| !l.trim().is_empty())?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code: u16 = parts.next()?.parse().ok()?;
    (100..700).contains(&code).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> (ReferTracker, Instant) {
        let now = Instant::now();
        (ReferTracker::new(now, Duration::from_secs(10)), now)
    }

    #[test]
    fn sipfrag_status_lines_are_read() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying"), Some(100));
        assert_eq!(
            sipfrag_status(b"\r\nSIP/2.0 486 Busy Here\r\nVia: x\r\n"),
            Some(486)
        );
        assert_eq!(sipfrag_status(b"sip/2.0 603 Decline"), Some(603));
        assert_eq!(sipfrag_status(b"SIP/2.0 OK"), None);
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 999 Nope"), None);
        assert_eq!(sipfrag_status(b""), None);
        assert_eq!(sipfrag_status(&[0xff, 0xfe]), None);
    }

    #[test]
    fn a_202_is_not_success_only_a_2xx_notify_is() {
        let (mut t, _) = tracker();
        assert_eq!(t.on_refer_response(Some(202)), Progress::Waiting);
        assert_eq!(
            t.on_notify(b"SIP/2.0 100 Trying", Some("active;expires=60")),
            Progress::Waiting
        );
        assert_eq!(
            t.on_notify(b"SIP/2.0 180 Ringing", Some("active")),
            Progress::Waiting
        );
        assert_eq!(t.last_provisional, Some(180));
        assert_eq!(
            t.on_notify(b"SIP/2.0 200 OK", Some("terminated;reason=noresource")),
            Progress::Succeeded
        );
        assert_eq!(t.deadline(), None);
    }

    #[test]
    fn a_busy_queue_in_the_notify_is_a_failure() {
        let (mut t, _) = tracker();
        t.on_refer_response(Some(202));
        assert_eq!(
            t.on_notify(b"SIP/2.0 486 Busy Here", Some("terminated")),
            Progress::Failed(Failure::Notified(486))
        );
        // Later NOTIFYs do not change the verdict.
        assert_eq!(
            t.on_notify(b"SIP/2.0 200 OK", None),
            Progress::Failed(Failure::Notified(486))
        );
    }

    #[test]
    fn a_refused_or_unanswered_refer_fails_at_once() {
        let (mut t, _) = tracker();
        assert_eq!(
            t.on_refer_response(Some(603)),
            Progress::Failed(Failure::Rejected(603))
        );
        let (mut t, _) = tracker();
        assert_eq!(
            t.on_refer_response(Some(501)),
            Progress::Failed(Failure::Rejected(501))
        );
        let (mut t, _) = tracker();
        assert_eq!(
            t.on_refer_response(None),
            Progress::Failed(Failure::Rejected(0))
        );
    }

    #[test]
    fn silence_past_the_deadline_and_a_bare_termination_fail() {
        let (mut t, now) = tracker();
        t.on_refer_response(Some(202));
        assert_eq!(t.on_timer(now + Duration::from_secs(9)), Progress::Waiting);
        assert_eq!(t.deadline(), Some(now + Duration::from_secs(10)));
        assert_eq!(
            t.on_timer(now + Duration::from_secs(10)),
            Progress::Failed(Failure::TimedOut)
        );
        let (mut t, _) = tracker();
        t.on_refer_response(Some(202));
        assert_eq!(
            t.on_notify(b"SIP/2.0 100 Trying", Some("terminated;reason=timeout")),
            Progress::Failed(Failure::Ended)
        );
    }
}
