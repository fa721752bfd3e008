//! SDES (RFC 4568): SRTP master keys carried in the SDP's `a=crypto` lines.
//!
//! The keys are in clear text in the SDP, so they are only as secret as the signalling:
//! the gateway uses them on SIP over TLS only (`[sip] srtp`). Sans-IO: parsing the
//! offer's lines, choosing one, and writing ours.

use base64::Engine;
use serde::Deserialize;

/// Bytes of an AES-128 master key and its 112-bit salt, as `inline:` carries them.
pub const KEY_SALT_LEN: usize = 30;
/// Where the key ends and the salt begins.
pub const KEY_LEN: usize = 16;

/// Whether calls over SIP/TLS use SRTP (`[sip] srtp`); other transports never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Plain RTP only: an offer of RTP/SAVP gets 488.
    Off,
    /// SRTP when the caller offers usable keys, else plain RTP.
    Optional,
    /// An offer without usable SRTP keys gets 488.
    #[default]
    Required,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn parse(name: &str) -> Option<Suite> {
        [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// A master key and salt. Never printed: Debug shows nothing of it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey(pub [u8; KEY_SALT_LEN]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A fresh key from the thread's CSPRNG (seeded by the OS), one per call.
    pub fn random() -> MasterKey {
        MasterKey(rand::random())
    }
}

/// One `a=crypto` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: Suite,
    pub key: MasterKey,
}

impl Crypto {
    /// The SDP attribute line, CRLF included.
    pub fn attribute(&self) -> String {
        let inline = base64::engine::general_purpose::STANDARD.encode(self.key.0);
        format!(
            "a=crypto:{} {} inline:{inline}\r\n",
            self.tag,
            self.suite.name()
        )
    }
}

/// Why an offer's crypto lines cannot be used; the text goes into the 488's Warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdesError {
    #[error("no a=crypto line")]
    Missing,
    #[error("no usable a=crypto line (we take AES_CM_128_HMAC_SHA1_80 or _32 with one inline key of 30 bytes, no MKI, no session parameters): {0}")]
    Unusable(String),
}

/// Picks the first usable line of the offer's (the offerer's preference); the error
/// says why the last one was refused.
pub fn choose<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Crypto, SdesError> {
    let mut last = None;
    for v in values {
        match parse(v) {
            Ok(c) => return Ok(c),
            Err(why) => last = Some(why),
        }
    }
    Err(last.map_or(SdesError::Missing, SdesError::Unusable))
}

/// One attribute value (after `crypto:`): `<tag> <suite> inline:<key||salt>[|lifetime]`.
pub fn parse(value: &str) -> Result<Crypto, String> {
    let mut fields = value.split_ascii_whitespace();
    let tag = fields
        .next()
        .and_then(|t| t.parse::<u32>().ok())
        .filter(|t| *t < 1_000_000_000)
        .ok_or("bad tag")?;
    let suite_name = fields.next().ok_or("no suite")?;
    let suite = Suite::parse(suite_name).ok_or("unsupported suite")?;
    let params = fields.next().ok_or("no key")?;
    if fields.next().is_some() {
        return Err("session parameters".into());
    }
    if params.contains(';') {
        return Err("more than one key".into());
    }
    let info = params.strip_prefix("inline:").ok_or("not an inline key")?;
    let mut parts = info.split('|');
    let b64 = parts.next().unwrap_or_default();
    for extra in parts {
        if extra.contains(':') {
            return Err("MKI".into());
        }
        if !lifetime_is_enough(extra) {
            return Err("short key lifetime".into());
        }
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "key is not base64")?;
    let key: [u8; KEY_SALT_LEN] = bytes
        .try_into()
        .map_err(|_| "key is not 30 bytes".to_string())?;
    Ok(Crypto {
        tag,
        suite,
        key: MasterKey(key),
    })
}

/// A lifetime (packets, `2^31` or decimal) of at least 2^31: a call never comes near
/// it, so we need no rekeying.
fn lifetime_is_enough(s: &str) -> bool {
    match s.strip_prefix("2^") {
        Some(exp) => exp.parse::<u32>().is_ok_and(|e| (31..=48).contains(&e)),
        None => s.parse::<u64>().is_ok_and(|n| n >= 1 << 31),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn a_plain_line_parses_and_writes_back() {
        let c = parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")).unwrap();
        assert_eq!((c.tag, c.suite), (1, Suite::AesCm128HmacSha1_80));
        assert_eq!(
            c.attribute(),
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n")
        );
        let with_lifetime = parse(&format!("7 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^31")).unwrap();
        assert_eq!(with_lifetime.key, c.key);
    }

    #[test]
    fn lines_we_cannot_honour_are_skipped_for_the_next() {
        let offered = [
            format!("1 AEAD_AES_256_GCM inline:{KEY}"),
            format!("2 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20"),
            format!("3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^31|1:4"),
            format!("4 AES_CM_128_HMAC_SHA1_80 inline:{KEY} KDR=1"),
            "5 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=".to_string(),
            format!("6 AES_CM_128_HMAC_SHA1_32 inline:{KEY}"),
        ];
        let c = choose(offered.iter().map(String::as_str)).unwrap();
        assert_eq!((c.tag, c.suite), (6, Suite::AesCm128HmacSha1_32));
        let e = choose(offered[..5].iter().map(String::as_str)).unwrap_err();
        assert_eq!(e, SdesError::Unusable("key is not 30 bytes".into()));
        assert_eq!(choose([]), Err(SdesError::Missing));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for v in [
            "",
            "x",
            "1",
            "99999999999 AES_CM_128_HMAC_SHA1_80 inline:x",
            "1 AES_CM_128_HMAC_SHA1_80",
            "1 AES_CM_128_HMAC_SHA1_80 inline:***",
            "1 AES_CM_128_HMAC_SHA1_80 inline:|||",
            "1 AES_CM_128_HMAC_SHA1_80 key:abc",
        ] {
            assert!(parse(v).is_err(), "{v:?}");
        }
    }

    #[test]
    fn random_keys_differ_and_never_print() {
        let (a, b) = (MasterKey::random(), MasterKey::random());
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "MasterKey(..)");
    }
}
