//! `[webrtc]`: callers from the municipality's web page (see `web`).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebrtcConfig {
    /// Serve `/call` and `/webrtc/offer` on the HTTP listener.
    pub enabled: bool,
    /// STUN and TURN servers the page and the gateway use to find a path between
    /// them; none: host candidates only (the page and the gateway see each other).
    pub ice_servers: Vec<IceServer>,
    /// How callers' browsers may send media: "all" (directly when they can), or
    /// "relay" (only through the TURN servers: a caller behind a strict firewall, or
    /// whose address should stay hidden from the gateway).
    pub ice_transport_policy: IcePolicy,
    /// Pages on other sites that may embed the call button (their origins,
    /// "https://www.kommune.dk"); the gateway's own page is always allowed.
    pub allowed_origins: Vec<String>,
    /// Web calls one client address may start per minute (and at once in a burst).
    pub offers_per_minute: u32,
    /// UDP ports for web calls' media, `[low, high]`; none: any free port.
    pub ports: Option<(u16, u16)>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// "stun:stun.example.org:3478", "turn:turn.example.org:3478?transport=udp".
    pub urls: Vec<String>,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub credential: String,
    /// A TURN server's shared secret (coturn `static-auth-secret`): each call gets
    /// its own short-lived username and password made from it (the TURN REST API),
    /// instead of one fixed password published in every page.
    #[serde(default)]
    pub secret: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IcePolicy {
    #[default]
    All,
    Relay,
}

impl Default for WebrtcConfig {
    fn default() -> Self {
        WebrtcConfig {
            enabled: true,
            ice_servers: Vec::new(),
            ice_transport_policy: IcePolicy::All,
            allowed_origins: Vec::new(),
            offers_per_minute: 6,
            ports: None,
        }
    }
}

impl WebrtcConfig {
    pub fn check(&self) -> Result<(), String> {
        if self.offers_per_minute == 0 {
            return Err("[webrtc] offers_per_minute must be at least 1".into());
        }
        if self.ports.is_some_and(|(low, high)| low == 0 || low > high) {
            return Err("[webrtc] ports must be [low, high] with 0 < low <= high".into());
        }
        for s in &self.ice_servers {
            if let Some(bad) = s.urls.iter().find(|u| {
                !["stun:", "stuns:", "turn:", "turns:"]
                    .iter()
                    .any(|p| u.starts_with(p))
            }) {
                return Err(format!(
                    "[webrtc] ice_servers: {bad:?} is not a stun: or turn: URL"
                ));
            }
            let turn = s.urls.iter().all(|u| u.starts_with("turn"));
            if !s.secret.is_empty() && (!turn || !s.credential.is_empty()) {
                return Err(format!(
                    "[webrtc] ice_servers {:?}: a secret is for TURN servers, instead of a credential",
                    s.urls
                ));
            }
        }
        if self.ice_transport_policy == IcePolicy::Relay
            && !self
                .ice_servers
                .iter()
                .any(|s| s.urls.iter().any(|u| u.starts_with("turn")))
        {
            return Err(
                "[webrtc] ice_transport_policy = \"relay\" needs a TURN server in ice_servers"
                    .into(),
            );
        }
        for o in &self.allowed_origins {
            if !(o.starts_with("https://") || o.starts_with("http://")) || o.ends_with('/') {
                return Err(format!(
                    "[webrtc] allowed_origins: {o:?} is not an origin like \"https://www.kommune.dk\""
                ));
            }
        }
        Ok(())
    }
}
