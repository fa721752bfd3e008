//! Staff sessions: `POST /login` with the dashboard token gives a browser a random
//! session id in an HttpOnly cookie, so the token itself never goes into a URL (and so
//! into browser history, proxy and access logs) and is typed once.
//!
//! Sans-IO: every call takes `now`. Bounded: at most `capacity` sessions live; the
//! one closest to expiry makes room for a new login.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "voicebot_session";
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
pub const MAX_SESSIONS: usize = 1024;

#[derive(Debug)]
pub struct Sessions {
    lifetime: Duration,
    capacity: usize,
    /// Session id → when it expires.
    live: HashMap<String, Instant>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(LIFETIME, MAX_SESSIONS)
    }
}

impl Sessions {
    pub fn new(lifetime: Duration, capacity: usize) -> Self {
        Sessions {
            lifetime,
            capacity: capacity.max(1),
            live: HashMap::new(),
        }
    }

    /// A new session (256 random bits, hex); the oldest one goes if there is no room.
    pub fn create(&mut self, now: Instant) -> String {
        self.live.retain(|_, expires| *expires > now);
        if self.live.len() >= self.capacity {
            if let Some(oldest) = self
                .live
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(id, _)| id.clone())
            {
                self.live.remove(&oldest);
            }
        }
        let id: String = rand::random::<[u8; 32]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.live.insert(id.clone(), now + self.lifetime);
        id
    }

    pub fn is_valid(&self, now: Instant, id: &str) -> bool {
        self.live.get(id).is_some_and(|expires| *expires > now)
    }

    pub fn end(&mut self, id: &str) {
        self.live.remove(id);
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

/// The session id in a `Cookie` header, if there is one.
pub fn from_cookie_header(cookie: &str) -> Option<&str> {
    cookie.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_are_bounded() {
        let t0 = Instant::now();
        let mut s = Sessions::new(Duration::from_secs(60), 2);
        let a = s.create(t0);
        assert_eq!(a.len(), 64);
        assert!(s.is_valid(t0, &a));
        assert!(!s.is_valid(t0, "0000"));
        assert!(!s.is_valid(t0 + Duration::from_secs(60), &a), "expired");
        let b = s.create(t0 + Duration::from_secs(1));
        let c = s.create(t0 + Duration::from_secs(2));
        assert_ne!(b, c);
        assert!(
            !s.is_valid(t0 + Duration::from_secs(2), &a),
            "the oldest made room"
        );
        assert!(s.is_valid(t0 + Duration::from_secs(2), &b));
        s.end(&b);
        assert!(!s.is_valid(t0 + Duration::from_secs(2), &b), "logged out");
        assert_eq!(s.live.len(), 1);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        assert_eq!(
            from_cookie_header("a=1; voicebot_session=abc; b=2"),
            Some("abc")
        );
        assert_eq!(from_cookie_header("voicebot_sessionx=abc"), None);
        assert_eq!(from_cookie_header(""), None);
    }
}
