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
}

impl Default for WebrtcConfig {
    fn default() -> Self {
        WebrtcConfig {
            enabled: true,
            ice_servers: Vec::new(),
            allowed_origins: Vec::new(),
            offers_per_minute: 6,
            ports: None,
        }
    }
}

impl WebrtcConfig {
    pub(super) fn check(&self) -> Result<(), String> {
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
