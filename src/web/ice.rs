//! The STUN and TURN servers a web call uses, as the page and the gateway get them.
//!
//! A TURN server with a `secret` gets credentials made for each call (the TURN REST
//! API that coturn and others implement): the username is the time they expire, the
//! password an HMAC-SHA1 of it under the shared secret. The server checks them with
//! the secret alone, and a password copied from one page stops working later.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use webrtc::ice_transport::ice_server::RTCIceServer;

use crate::config::{IcePolicy, IceServer, WebrtcConfig};

/// How long minted TURN credentials last: a call must be able to refresh its relay
/// allocation until it ends, and the page asks just before it calls.
pub const CREDENTIAL_LIFETIME: Duration = Duration::from_secs(4 * 3600);

/// What `GET /webrtc/ice` gives the page: an `RTCConfiguration` for its peer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageIce {
    pub ice_servers: Vec<Server>,
    pub ice_transport_policy: IcePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credential: String,
}

/// The configured servers with credentials valid from `now`.
pub fn servers(config: &WebrtcConfig, now: SystemTime) -> Vec<Server> {
    config.ice_servers.iter().map(|s| server(s, now)).collect()
}

pub fn for_page(config: &WebrtcConfig, now: SystemTime) -> PageIce {
    PageIce {
        ice_servers: servers(config, now),
        ice_transport_policy: config.ice_transport_policy,
    }
}

pub fn for_gateway(config: &WebrtcConfig, now: SystemTime) -> Vec<RTCIceServer> {
    servers(config, now)
        .into_iter()
        .map(|s| RTCIceServer {
            urls: s.urls,
            username: s.username,
            credential: s.credential,
        })
        .collect()
}

fn server(s: &IceServer, now: SystemTime) -> Server {
    if s.secret.is_empty() {
        return Server {
            urls: s.urls.clone(),
            username: s.username.clone(),
            credential: s.credential.clone(),
        };
    }
    let expires = (now + CREDENTIAL_LIFETIME)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let user = if s.username.is_empty() {
        "voicebot"
    } else {
        &s.username
    };
    let username = format!("{expires}:{user}");
    let credential = rest_password(&s.secret, &username);
    Server {
        urls: s.urls.clone(),
        username,
        credential,
    }
}

/// base64(HMAC-SHA1(secret, username)), as coturn's `use-auth-secret` checks it.
fn rest_password(secret: &str, username: &str) -> String {
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(secret: &str, credential: &str) -> IceServer {
        IceServer {
            urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
            username: String::new(),
            credential: credential.into(),
            secret: secret.into(),
        }
    }

    /// The reference value is openssl's: `echo -n 1700003600:voicebot |
    /// openssl dgst -binary -sha1 -hmac north-sea | base64`.
    #[test]
    fn a_secret_makes_credentials_that_expire_as_coturn_checks_them() {
        let config = WebrtcConfig {
            ice_servers: vec![turn("north-sea", "")],
            ..WebrtcConfig::default()
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_700_003_600) - CREDENTIAL_LIFETIME;
        let s = &servers(&config, now)[0];
        assert_eq!(s.username, "1700003600:voicebot");
        assert_eq!(s.credential, "wLMXTd6Ty3cQzluvu8F2dKdArVU=");
        let later = &servers(&config, now + Duration::from_secs(60))[0];
        assert_ne!(later.credential, s.credential, "each call its own");
    }

    #[test]
    fn fixed_credentials_and_stun_pass_through_and_the_page_gets_the_policy() {
        let config = WebrtcConfig {
            ice_servers: vec![
                IceServer {
                    urls: vec!["stun:stun.example.org:3478".into()],
                    username: String::new(),
                    credential: String::new(),
                    secret: String::new(),
                },
                IceServer {
                    username: "kiosk".into(),
                    ..turn("", "pw")
                },
            ],
            ice_transport_policy: IcePolicy::Relay,
            ..WebrtcConfig::default()
        };
        config.check().unwrap();
        let page = serde_json::to_value(for_page(&config, SystemTime::now())).unwrap();
        assert_eq!(
            page,
            serde_json::json!({
                "iceServers": [
                    {"urls": ["stun:stun.example.org:3478"]},
                    {"urls": ["turn:turn.example.org:3478?transport=udp"],
                     "username": "kiosk", "credential": "pw"},
                ],
                "iceTransportPolicy": "relay",
            })
        );
    }

    #[test]
    fn a_secret_on_stun_or_beside_a_credential_and_relay_without_turn_are_refused() {
        let stun_secret = IceServer {
            urls: vec!["stun:stun.example.org".into()],
            ..turn("s", "")
        };
        for (servers, policy, needle) in [
            (vec![stun_secret.clone()], IcePolicy::All, "secret"),
            (vec![turn("s", "pw")], IcePolicy::All, "secret"),
            (vec![], IcePolicy::Relay, "needs a TURN server"),
            (vec![stun_secret], IcePolicy::Relay, "secret"),
        ] {
            let config = WebrtcConfig {
                ice_servers: servers,
                ice_transport_policy: policy,
                ..WebrtcConfig::default()
            };
            let e = config.check().unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }
}
