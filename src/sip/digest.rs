//! Digest authentication of trunks (RFC 3261 §22, RFC 8760: SHA-256, MD5 for old
//! trunks). Sans-IO: challenges and verdicts are computed from `now`.
//!
//! Nonces are stateless: the time they were made and a keyed hash of it under a secret
//! drawn at start, so any nonce we made is recognised without a table the network could
//! fill, and an old one is answered "stale" (the peer retries without asking its user).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::Md5;
use sha2::{Digest, Sha256};

use super::cidr::Cidr;

/// A nonce is good this long.
const NONCE_LIFETIME: Duration = Duration::from_secs(300);
pub const REALM: &str = "voicebot";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Md5,
}

impl Algorithm {
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "SHA-256" => Some(Algorithm::Sha256),
            "MD5" => Some(Algorithm::Md5),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
            Algorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Algorithm::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown digest algorithm {s:?} (SHA-256 or MD5)"))
        })
    }
}

/// `[[sip.trunks]]`: a trunk that must authenticate: INVITEs from `source` are taken
/// only with its credentials, and then as from a trusted peer.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    pub name: String,
    pub source: Cidr,
    pub username: String,
    pub password: String,
    /// Offered in this order (RFC 8760: the preferred first).
    #[serde(default = "both")]
    pub algorithms: Vec<Algorithm>,
}

fn both() -> Vec<Algorithm> {
    vec![Algorithm::Sha256, Algorithm::Md5]
}

impl std::fmt::Debug for Trunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password: configs end up in logs.
        f.debug_struct("Trunk")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("username", &self.username)
            .field("algorithms", &self.algorithms)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Good,
    /// Our nonce, but too old: challenge again with `stale=true`.
    Stale,
    /// Wrong user, password, realm, nonce or algorithm.
    Bad,
}

/// What an Authorization (or Proxy-Authorization) header says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

pub struct Authenticator {
    secret: [u8; 32],
}

impl Authenticator {
    pub fn new(secret: [u8; 32]) -> Self {
        Authenticator { secret }
    }

    fn mac(&self, stamp: &str) -> String {
        // HMAC-SHA-256 (RFC 2104), truncated: nonces must not be forgeable.
        let mut inner = Sha256::new();
        let mut outer = Sha256::new();
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&self.secret);
        inner.update(key.map(|b| b ^ 0x36));
        inner.update(stamp.as_bytes());
        outer.update(key.map(|b| b ^ 0x5c));
        outer.update(inner.finalize());
        hex(&outer.finalize()[..16])
    }

    pub fn nonce(&self, now: SystemTime) -> String {
        let stamp = format!("{:016x}", secs(now));
        format!("{stamp}{}", self.mac(&stamp))
    }

    /// WWW-Authenticate values for a 401, one per algorithm of the trunk.
    pub fn challenges(&self, now: SystemTime, trunk: &Trunk, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        let stale = if stale { ", stale=true" } else { "" };
        trunk
            .algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
                    a.name()
                )
            })
            .collect()
    }

    pub fn verify(
        &self,
        now: SystemTime,
        trunk: &Trunk,
        method: &str,
        creds: &Credentials,
    ) -> Verdict {
        let algorithm = match creds.algorithm.as_deref() {
            None => Algorithm::Md5,
            Some(a) => match Algorithm::parse(a) {
                Some(a) => a,
                None => return Verdict::Bad,
            },
        };
        let ours = creds.nonce.len() == 48
            && creds.nonce.is_ascii()
            && self.mac(&creds.nonce[..16]) == creds.nonce[16..];
        if !ours
            || !trunk.algorithms.contains(&algorithm)
            || creds.username != trunk.username
            || creds.realm != REALM
        {
            return Verdict::Bad;
        }
        if response(algorithm, creds, &trunk.password, method) != creds.response {
            return Verdict::Bad;
        }
        let made = u64::from_str_radix(&creds.nonce[..16], 16).unwrap_or(0);
        if secs(now).saturating_sub(made) > NONCE_LIFETIME.as_secs() {
            return Verdict::Stale;
        }
        Verdict::Good
    }
}

/// The response a peer knowing `password` computes (RFC 2617 §3.2.2, RFC 7616 §3.4.1).
pub fn response(algorithm: Algorithm, c: &Credentials, password: &str, method: &str) -> String {
    let h = |s: &str| algorithm.hash(s);
    let ha1 = h(&format!("{}:{}:{password}", c.username, c.realm));
    let ha2 = h(&format!("{method}:{}", c.uri));
    match (&c.qop, &c.nc, &c.cnonce) {
        (Some(qop), Some(nc), Some(cnonce)) => {
            h(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", c.nonce))
        }
        _ => h(&format!("{ha1}:{}:{ha2}", c.nonce)),
    }
}

/// Parses `Digest username="…", realm="…", …`; None if it is not a digest header or
/// lacks a required field.
pub fn parse(value: &str) -> Option<Credentials> {
    let rest = value.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut c = Credentials::default();
    for (key, val) in params_of(params) {
        match key.to_ascii_lowercase().as_str() {
            "username" => c.username = val,
            "realm" => c.realm = val,
            "nonce" => c.nonce = val,
            "uri" => c.uri = val,
            "response" => c.response = val.to_ascii_lowercase(),
            "algorithm" => c.algorithm = Some(val),
            "qop" => c.qop = Some(val),
            "nc" => c.nc = Some(val),
            "cnonce" => c.cnonce = Some(val),
            _ => {}
        }
    }
    let complete = [&c.username, &c.nonce, &c.uri, &c.response]
        .iter()
        .all(|f| !f.is_empty());
    complete.then_some(c)
}

/// `key=value` pairs separated by commas, values quoted (with `\` escapes) or bare.
fn params_of(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() {
            return out;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            val = chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.push((key, val));
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1's example (an HTTP request, the same computation).
    fn rfc_example(algorithm: &str) -> Credentials {
        Credentials {
            username: "Mufasa".into(),
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            uri: "/dir/index.html".into(),
            response: String::new(),
            algorithm: Some(algorithm.into()),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into()),
        }
    }

    #[test]
    fn responses_match_rfc_7616() {
        let c = rfc_example("SHA-256");
        assert_eq!(
            response(Algorithm::Sha256, &c, "Circle of Life", "GET"),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(
            response(Algorithm::Md5, &rfc_example("MD5"), "Circle of Life", "GET"),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    fn trunk() -> Trunk {
        Trunk {
            name: "carrier".into(),
            source: "192.0.2.0/24".parse().unwrap(),
            username: "kommune".into(),
            password: "hemmelig".into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        }
    }

    /// What a peer sends back to our challenge.
    fn answer(a: &Authenticator, now: SystemTime, alg: &str, password: &str) -> Credentials {
        let mut c = Credentials {
            username: "kommune".into(),
            realm: REALM.into(),
            nonce: a.nonce(now),
            uri: "sip:bot@192.0.2.10".into(),
            algorithm: Some(alg.into()),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("abc".into()),
            ..Credentials::default()
        };
        c.response = response(Algorithm::parse(alg).unwrap(), &c, password, "INVITE");
        c
    }

    #[test]
    fn our_nonce_with_the_right_password_passes_and_anything_else_fails() {
        let a = Authenticator::new([7; 32]);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let good = answer(&a, t0, "SHA-256", "hemmelig");
        assert_eq!(a.verify(t0, &trunk(), "INVITE", &good), Verdict::Good);
        let md5 = answer(&a, t0, "MD5", "hemmelig");
        assert_eq!(a.verify(t0, &trunk(), "INVITE", &md5), Verdict::Good);
        // Another method than the one answered for.
        assert_eq!(a.verify(t0, &trunk(), "BYE", &good), Verdict::Bad);
        let wrong = answer(&a, t0, "SHA-256", "gæt");
        assert_eq!(a.verify(t0, &trunk(), "INVITE", &wrong), Verdict::Bad);
        // A nonce we did not make, even with a response that fits it.
        let mut forged = good.clone();
        forged.nonce = format!("{:016x}{}", 1_800_000_000u64, "0".repeat(32));
        forged.response = response(Algorithm::Sha256, &forged, "hemmelig", "INVITE");
        assert_eq!(a.verify(t0, &trunk(), "INVITE", &forged), Verdict::Bad);
        // Another gateway's secret.
        let other = Authenticator::new([8; 32]);
        assert_eq!(other.verify(t0, &trunk(), "INVITE", &good), Verdict::Bad);
        // Old: stale, so the trunk retries with a fresh nonce.
        let later = t0 + NONCE_LIFETIME + Duration::from_secs(1);
        assert_eq!(a.verify(later, &trunk(), "INVITE", &good), Verdict::Stale);
        // An algorithm the trunk is not offered.
        let mut sha_only = trunk();
        sha_only.algorithms = vec![Algorithm::Sha256];
        assert_eq!(a.verify(t0, &sha_only, "INVITE", &md5), Verdict::Bad);
    }

    #[test]
    fn challenges_list_the_algorithms_in_order_of_preference() {
        let a = Authenticator::new([1; 32]);
        let c = a.challenges(UNIX_EPOCH, &trunk(), true);
        assert_eq!(c.len(), 2);
        assert!(c[0].contains("algorithm=SHA-256") && c[1].contains("algorithm=MD5"));
        assert!(c
            .iter()
            .all(|h| h.contains("stale=true") && h.contains("qop=\"auth\"")));
    }

    #[test]
    fn authorization_headers_parse_with_quotes_escapes_and_bare_values() {
        let c = parse(
            "Digest username=\"ko\\\"mmune\", realm=\"voicebot\",nonce=\"n\", uri=\"sip:bot@x\", \
             response=\"ABCDEF\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\"",
        )
        .unwrap();
        assert_eq!(c.username, "ko\"mmune");
        assert_eq!(c.response, "abcdef");
        assert_eq!(c.algorithm.as_deref(), Some("MD5"));
        assert_eq!(c.nc.as_deref(), Some("00000001"));
        assert_eq!(parse("Basic dXNlcjpwYXNz"), None);
        assert_eq!(parse("Digest realm=\"voicebot\""), None);
        assert_eq!(parse("Digest"), None);
        assert_eq!(
            parse("Digest username=\"a\", uri=\"b\", response=\"c\", nonce=\"d"),
            parse("Digest username=\"a\", uri=\"b\", response=\"c\", nonce=\"d\"")
        );
    }
}
