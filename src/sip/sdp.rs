//! SDP offer/answer (RFC 3264) for a G.711 voice call.
//!
//! Parsing uses the webrtc-rs `sdp` crate; what we send is small enough to write out.
//! We speak PCMA and PCMU (order of preference from config) plus RFC 4733
//! telephone-event, and follow the caller's hold direction. A media address we must
//! never send to (multicast, broadcast, loopback of a public gateway) refuses the offer:
//! otherwise one spoofed INVITE points a call's RTP at a victim. On SIP over TLS the
//! call may use SRTP with SDES keys (`sdes`, `[sip] srtp`); elsewhere RTP/SAVP is refused.

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use super::sdes::{self, Crypto, MasterKey, SdesError, SrtpPolicy, Suite};
use crate::audio::g711::Law;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("SDP does not parse: {0}")]
    Malformed(String),
    #[error("SDP has no audio stream")]
    NoAudio,
    #[error("SDP audio stream has no connection address")]
    NoAddress,
    #[error("no common codec (offered: {0})")]
    NoCommonCodec(String),
    #[error("media address {0} refused (multicast, broadcast, this-network or loopback)")]
    RefusedAddress(IpAddr),
    #[error("SRTP (RTP/SAVP) is used only on SIP over TLS with [sip] srtp on")]
    SrtpOff,
    #[error("SRTP is required on SIP over TLS: offer RTP/SAVP with a=crypto")]
    SrtpRequired,
    #[error("SRTP keys: {0}")]
    Crypto(#[from] SdesError),
    #[error("the answer does not take our SRTP offer")]
    SrtpAnswer,
    #[error("SRTP cannot be switched or rekeyed by a re-INVITE")]
    Rekey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction to answer with (RFC 3264 §6.1).
    fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    pub fn we_send(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
}

/// The audio part of a remote description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAudio {
    pub addr: SocketAddr,
    /// Offered formats in the remote's order: payload type and encoding name.
    pub formats: Vec<(u8, String)>,
    pub ptime_ms: Option<u32>,
    pub direction: Direction,
    /// The profile is RTP/SAVP (SRTP) rather than RTP/AVP.
    pub savp: bool,
    /// The offer's first usable `a=crypto` line, or why there is none.
    pub crypto: Result<Crypto, SdesError>,
}

/// SRTP as agreed: the suite and tag of the line chosen, each side's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Srtp {
    pub tag: u32,
    pub suite: Suite,
    /// What the far end encrypts with (its `a=crypto` key).
    pub theirs: MasterKey,
    /// What we encrypt with (in our answer).
    pub ours: MasterKey,
    /// The offer said RTP/SAVP (else RTP/AVP with a=crypto): the answer says the same.
    pub savp: bool,
}

impl Srtp {
    fn our_line(&self) -> Crypto {
        Crypto {
            tag: self.tag,
            suite: self.suite,
            key: self.ours,
        }
    }
}

/// What both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub law: Law,
    pub payload_type: u8,
    pub dtmf_payload_type: Option<u8>,
    pub remote: SocketAddr,
    /// Packet time the remote asked for; we send 20 ms unless it asked for 10–30.
    pub ptime_ms: u32,
    /// Our direction, as put in the answer.
    pub direction: Direction,
    /// None: plain RTP.
    pub srtp: Option<Srtp>,
}

pub fn parse(body: &[u8]) -> Result<RemoteAudio, SdpError> {
    let desc = sdp::SessionDescription::unmarshal(&mut Cursor::new(body))
        .map_err(|e| SdpError::Malformed(e.to_string()))?;
    let media = desc
        .media_descriptions
        .iter()
        .find(|m| m.media_name.media == "audio" && m.media_name.port.value > 0)
        .ok_or(SdpError::NoAudio)?;
    let conn = media
        .connection_information
        .as_ref()
        .or(desc.connection_information.as_ref())
        .and_then(|c| c.address.as_ref())
        .ok_or(SdpError::NoAddress)?;
    let ip: IpAddr = conn
        .address
        .split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|_| SdpError::NoAddress)?;
    let port = u16::try_from(media.media_name.port.value).map_err(|_| SdpError::NoAddress)?;

    let rtpmap = |pt: u8| -> Option<String> {
        media.attributes.iter().find_map(|a| {
            let v = a.value.as_deref()?;
            if a.key != "rtpmap" {
                return None;
            }
            let (num, enc) = v.split_once(' ')?;
            (num.trim().parse::<u8>().ok()? == pt).then(|| {
                enc.split('/')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase()
            })
        })
    };
    let formats = media
        .media_name
        .formats
        .iter()
        // RTP has seven bits for the payload type: 128 and above cannot be sent, and
        // taking one would give a silent call instead of a 488.
        .filter_map(|f| f.parse::<u8>().ok().filter(|pt| *pt < 128))
        .map(|pt| {
            let name = rtpmap(pt).unwrap_or_else(|| match pt {
                0 => "PCMU".into(),
                8 => "PCMA".into(),
                9 => "G722".into(),
                18 => "G729".into(),
                _ => format!("PT{pt}"),
            });
            (pt, name)
        })
        .collect();
    let ptime_ms = media
        .attribute("ptime")
        .flatten()
        .and_then(|v| v.trim().parse().ok());
    let attr_dir = |has: &dyn Fn(&str) -> bool| {
        if has("sendonly") {
            Some(Direction::SendOnly)
        } else if has("recvonly") {
            Some(Direction::RecvOnly)
        } else if has("inactive") {
            Some(Direction::Inactive)
        } else if has("sendrecv") {
            Some(Direction::SendRecv)
        } else {
            None
        }
    };
    let mut direction = attr_dir(&|k| media.has_attribute(k))
        .or_else(|| attr_dir(&|k| desc.has_attribute(k)))
        .unwrap_or(Direction::SendRecv);
    if ip.is_unspecified() {
        // RFC 2543-style hold: c=0.0.0.0 means "do not send to me".
        direction = match direction {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            _ => Direction::Inactive,
        };
    }
    let crypto = sdes::choose(
        media
            .attributes
            .iter()
            .filter(|a| a.key == "crypto")
            .map(|a| a.value.as_deref().unwrap_or_default()),
    );
    Ok(RemoteAudio {
        addr: SocketAddr::new(ip, port),
        formats,
        ptime_ms,
        direction,
        savp: media.media_name.protos.iter().any(|p| p == "SAVP"),
        crypto,
    })
}

/// A remote description from the network, refused if its media address is one we will
/// not send to (see [`check_address`]) or its SRTP does not fit `srtp` (the policy of
/// the call's transport), else negotiated.
pub fn accept(
    body: &[u8],
    preference: &[Law],
    local: IpAddr,
    srtp: SrtpPolicy,
) -> Result<Negotiated, SdpError> {
    let remote = parse(body)?;
    check_address(remote.addr.ip(), local)?;
    let mut n = negotiate(&remote, preference)?;
    n.srtp = secure(&remote, srtp)?;
    Ok(n)
}

/// The answer to our own offer (late offer): SRTP, if we offered it, with the key we
/// offered.
pub fn answered(mut n: Negotiated, offered: Option<&Crypto>) -> Result<Negotiated, SdpError> {
    match (offered, &mut n.srtp) {
        (None, None) => Ok(n),
        (Some(c), Some(s)) if s.tag == c.tag && s.suite == c.suite => {
            s.ours = c.key;
            Ok(n)
        }
        _ => Err(SdpError::SrtpAnswer),
    }
}

/// A re-INVITE's offer on a call using `current`: the same keys go on (our answer
/// repeats our key); new keys, or SRTP switched on or off, are refused.
pub fn same_keys(mut n: Negotiated, current: Option<Srtp>) -> Result<Negotiated, SdpError> {
    match (current, &mut n.srtp) {
        (None, None) => Ok(n),
        (Some(c), Some(s)) if c.theirs == s.theirs && c.suite == s.suite => {
            s.ours = c.ours;
            Ok(n)
        }
        _ => Err(SdpError::Rekey),
    }
}

/// SRTP for an offer under `policy`, with a fresh key of ours.
fn secure(remote: &RemoteAudio, policy: SrtpPolicy) -> Result<Option<Srtp>, SdpError> {
    let crypto = match (policy, remote.savp, &remote.crypto) {
        (SrtpPolicy::Off, true, _) => return Err(SdpError::SrtpOff),
        (_, true, Err(e)) => return Err(e.clone().into()),
        (SrtpPolicy::Required, false, _) => return Err(SdpError::SrtpRequired),
        (SrtpPolicy::Off, false, _) | (SrtpPolicy::Optional, false, Err(_)) => return Ok(None),
        (_, _, Ok(c)) => c,
    };
    Ok(Some(Srtp {
        tag: crypto.tag,
        suite: crypto.suite,
        theirs: crypto.key,
        ours: MasterKey::random(),
        savp: remote.savp,
    }))
}

/// Whether RTP may go to `remote`, from a gateway whose media address is `local`:
/// not multicast, not broadcast, not "this network" (0.x.x.x), and loopback only when
/// we are on loopback ourselves. The unspecified address is hold (we send nothing).
pub fn check_address(remote: IpAddr, local: IpAddr) -> Result<(), SdpError> {
    let ip = match remote {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(remote, IpAddr::V4),
        v4 => v4,
    };
    if ip.is_unspecified() {
        return Ok(());
    }
    let refused = ip.is_multicast()
        || match ip {
            IpAddr::V4(v4) => v4.is_broadcast() || v4.octets()[0] == 0,
            IpAddr::V6(_) => false,
        }
        || (ip.is_loopback() && !local.is_loopback());
    if refused {
        return Err(SdpError::RefusedAddress(remote));
    }
    Ok(())
}

/// Picks the first of our preferred laws that the remote offered.
pub fn negotiate(remote: &RemoteAudio, preference: &[Law]) -> Result<Negotiated, SdpError> {
    let (law, payload_type) = preference
        .iter()
        .find_map(|law| {
            remote
                .formats
                .iter()
                .find(|(_, name)| name == law.name())
                .map(|(pt, _)| (*law, *pt))
        })
        .ok_or_else(|| {
            SdpError::NoCommonCodec(
                remote
                    .formats
                    .iter()
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        })?;
    let dtmf_payload_type = remote
        .formats
        .iter()
        .find(|(_, n)| n == "TELEPHONE-EVENT")
        .map(|(pt, _)| *pt);
    let ptime_ms = remote
        .ptime_ms
        .filter(|p| (10..=30).contains(p))
        .unwrap_or(20);
    Ok(Negotiated {
        law,
        payload_type,
        dtmf_payload_type,
        remote: remote.addr,
        ptime_ms,
        direction: remote.direction.reversed(),
        srtp: None,
    })
}

/// Our answer to a negotiated offer.
pub fn answer(n: &Negotiated, local: SocketAddr, session_id: u64) -> String {
    let mut formats = vec![n.payload_type];
    let mut attrs = format!("a=rtpmap:{} {}/8000\r\n", n.payload_type, n.law.name());
    if let Some(dtmf) = n.dtmf_payload_type {
        formats.push(dtmf);
        attrs += &format!("a=rtpmap:{dtmf} telephone-event/8000\r\na=fmtp:{dtmf} 0-16\r\n");
    }
    let savp = n.srtp.is_some_and(|s| s.savp);
    if let Some(s) = &n.srtp {
        attrs += &s.our_line().attribute();
    }
    body(
        local,
        session_id,
        &formats,
        &attrs,
        n.ptime_ms,
        n.direction,
        savp,
    )
}

/// An offer listing every law we accept (late-offer INVITEs, and our test caller);
/// with `crypto`, as RTP/SAVP with that key.
pub fn offer(
    local: SocketAddr,
    session_id: u64,
    preference: &[Law],
    crypto: Option<&Crypto>,
) -> String {
    let mut formats: Vec<u8> = preference.iter().map(|l| l.payload_type()).collect();
    let mut attrs: String = preference
        .iter()
        .map(|l| format!("a=rtpmap:{} {}/8000\r\n", l.payload_type(), l.name()))
        .collect();
    formats.push(DTMF_PT);
    attrs += &format!("a=rtpmap:{DTMF_PT} telephone-event/8000\r\na=fmtp:{DTMF_PT} 0-16\r\n");
    if let Some(c) = crypto {
        attrs += &c.attribute();
    }
    let savp = crypto.is_some();
    body(
        local,
        session_id,
        &formats,
        &attrs,
        20,
        Direction::SendRecv,
        savp,
    )
}

/// The payload type we use for telephone-event when we make the offer.
pub const DTMF_PT: u8 = 101;

fn body(
    local: SocketAddr,
    session_id: u64,
    formats: &[u8],
    attrs: &str,
    ptime: u32,
    dir: Direction,
    savp: bool,
) -> String {
    let ip = local.ip();
    let profile = if savp { "RTP/SAVP" } else { "RTP/AVP" };
    let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
    let fmts: Vec<String> = formats.iter().map(u8::to_string).collect();
    format!(
        "v=0\r\no=- {session_id} {session_id} IN {family} {ip}\r\ns=-\r\n\
         c=IN {family} {ip}\r\nt=0 0\r\nm=audio {} {profile} {}\r\n{attrs}a=ptime:{ptime}\r\na={}\r\n",
        local.port(),
        fmts.join(" "),
        dir.attr()
    )
}

#[cfg(test)]
mod tests;
