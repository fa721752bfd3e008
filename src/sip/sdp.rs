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
mod tests {
    use super::*;

    fn sdp(m: &str, extra: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n{m}\r\n{extra}"
        )
    }

    const PREF: &[Law] = &[Law::Alaw, Law::Ulaw];
    const OFF: SrtpPolicy = SrtpPolicy::Off;
    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn g729_only_has_no_common_codec() {
        let remote =
            parse(sdp("m=audio 4000 RTP/AVP 18", "a=rtpmap:18 G729/8000\r\n").as_bytes()).unwrap();
        assert_eq!(
            negotiate(&remote, PREF),
            Err(SdpError::NoCommonCodec("G729".into()))
        );
    }

    #[test]
    fn payload_types_above_127_are_not_usable() {
        let remote = parse(
            sdp(
                "m=audio 4000 RTP/AVP 200 201",
                "a=rtpmap:200 PCMA/8000\r\na=rtpmap:201 telephone-event/8000\r\n",
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(remote.formats.is_empty(), "{:?}", remote.formats);
        assert!(negotiate(&remote, PREF).is_err());
        let remote = parse(
            sdp(
                "m=audio 4000 RTP/AVP 200 8 201",
                "a=rtpmap:200 PCMU/8000\r\na=rtpmap:201 telephone-event/8000\r\n",
            )
            .as_bytes(),
        )
        .unwrap();
        let n = negotiate(&remote, PREF).unwrap();
        assert_eq!((n.payload_type, n.dtmf_payload_type), (8, None));
    }

    #[test]
    fn picks_by_our_preference_not_the_offer_order() {
        let remote = parse(
            sdp(
                "m=audio 4000 RTP/AVP 0 8 101",
                "a=rtpmap:101 telephone-event/8000\r\n",
            )
            .as_bytes(),
        )
        .unwrap();
        let n = negotiate(&remote, PREF).unwrap();
        assert_eq!(
            (n.law, n.payload_type, n.dtmf_payload_type),
            (Law::Alaw, 8, Some(101))
        );
        let n = negotiate(&remote, &[Law::Ulaw, Law::Alaw]).unwrap();
        assert_eq!((n.law, n.payload_type), (Law::Ulaw, 0));
        assert_eq!(n.remote, "10.0.0.5:4000".parse::<SocketAddr>().unwrap());
    }

    #[test]
    fn static_types_without_rtpmap_are_understood() {
        let remote = parse(sdp("m=audio 4000 RTP/AVP 0", "").as_bytes()).unwrap();
        assert_eq!(remote.formats, vec![(0, "PCMU".to_string())]);
        assert_eq!(negotiate(&remote, PREF).unwrap().law, Law::Ulaw);
    }

    #[test]
    fn ptime_accepted_between_10_and_30() {
        for (p, want) in [(10, 10), (30, 30), (60, 20), (5, 20)] {
            let remote =
                parse(sdp("m=audio 4000 RTP/AVP 8", &format!("a=ptime:{p}\r\n")).as_bytes())
                    .unwrap();
            assert_eq!(
                negotiate(&remote, PREF).unwrap().ptime_ms,
                want,
                "ptime {p}"
            );
        }
    }

    #[test]
    fn hold_directions_are_mirrored() {
        let hold = parse(sdp("m=audio 4000 RTP/AVP 8", "a=sendonly\r\n").as_bytes()).unwrap();
        let n = negotiate(&hold, PREF).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(!n.direction.we_send());
        let old_style =
            sdp("m=audio 4000 RTP/AVP 8", "").replace("c=IN IP4 10.0.0.5", "c=IN IP4 0.0.0.0");
        assert_eq!(
            negotiate(&parse(old_style.as_bytes()).unwrap(), PREF)
                .unwrap()
                .direction,
            Direction::RecvOnly
        );
        let unhold = parse(sdp("m=audio 4000 RTP/AVP 8", "a=sendrecv\r\n").as_bytes()).unwrap();
        assert!(negotiate(&unhold, PREF).unwrap().direction.we_send());
    }

    #[test]
    fn answer_and_offer_parse_back() {
        let local: SocketAddr = "192.0.2.1:20000".parse().unwrap();
        let o = parse(offer(local, 7, PREF, None).as_bytes()).unwrap();
        assert_eq!(o.addr, local);
        assert_eq!(
            o.formats.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![8, 0, DTMF_PT]
        );
        let n = negotiate(&o, &[Law::Ulaw]).unwrap();
        let a = parse(answer(&n, local, 9).as_bytes()).unwrap();
        assert_eq!(
            a.formats,
            vec![(0, "PCMU".into()), (DTMF_PT, "TELEPHONE-EVENT".into())]
        );
    }

    #[test]
    fn media_addresses_we_never_send_to_are_refused() {
        let public: IpAddr = "192.0.2.1".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let offer_to = |addr: &str| {
            sdp("m=audio 4000 RTP/AVP 8", "")
                .replace("c=IN IP4 10.0.0.5", &format!("c=IN IP4 {addr}"))
        };
        for bad in ["224.0.0.1", "239.1.2.3", "255.255.255.255", "0.1.2.3"] {
            let e = accept(offer_to(bad).as_bytes(), PREF, lo, OFF).unwrap_err();
            assert_eq!(e, SdpError::RefusedAddress(bad.parse().unwrap()), "{bad}");
        }
        assert!(accept(offer_to("127.0.0.1").as_bytes(), PREF, public, OFF).is_err());
        assert!(accept(offer_to("127.0.0.1").as_bytes(), PREF, lo, OFF).is_ok());
        assert!(accept(offer_to("10.0.0.5").as_bytes(), PREF, public, OFF).is_ok());
        // Hold, old style: allowed, and nothing is sent.
        let hold = accept(offer_to("0.0.0.0").as_bytes(), PREF, public, OFF).unwrap();
        assert!(!hold.direction.we_send());
        for bad in ["ff02::1", "::1", "::ffff:127.0.0.1", "::ffff:224.0.0.1"] {
            assert!(
                check_address(bad.parse().unwrap(), public).is_err(),
                "{bad}"
            );
        }
        assert!(check_address("2001:db8::5".parse().unwrap(), public).is_ok());
    }

    #[test]
    fn garbage_and_videos_only_are_errors() {
        assert!(matches!(parse(b"hello"), Err(SdpError::Malformed(_))));
        let video = sdp("m=video 4000 RTP/AVP 96", "");
        assert_eq!(parse(video.as_bytes()), Err(SdpError::NoAudio));
    }

    fn srtp_offer(profile: &str, crypto: &str) -> String {
        sdp(&format!("m=audio 4000 {profile} 8"), crypto)
    }

    #[test]
    fn srtp_follows_the_transport_policy() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let line = format!("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n");
        let savp = srtp_offer("RTP/SAVP", &line);
        let avp_keys = srtp_offer("RTP/AVP", &line);
        let plain = srtp_offer("RTP/AVP", "");
        let accept = |o: &str, p| accept(o.as_bytes(), PREF, lo, p);
        use SrtpPolicy::*;
        // Not on TLS (or srtp = "off"): SAVP cannot be answered; a=crypto is ignored.
        assert_eq!(accept(&savp, Off), Err(SdpError::SrtpOff));
        assert_eq!(accept(&avp_keys, Off).unwrap().srtp, None);
        assert_eq!(accept(&plain, Optional).unwrap().srtp, None);
        assert_eq!(accept(&plain, Required), Err(SdpError::SrtpRequired));
        let s = accept(&savp, Required).unwrap().srtp.unwrap();
        assert_eq!(
            (s.tag, s.suite, s.savp),
            (3, Suite::AesCm128HmacSha1_80, true)
        );
        assert_eq!(
            s.theirs,
            sdes::parse(&format!("3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"))
                .unwrap()
                .key
        );
        assert_ne!(s.ours, s.theirs);
        assert!(!accept(&avp_keys, Optional).unwrap().srtp.unwrap().savp);
        let bad = srtp_offer(
            "RTP/SAVP",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\r\n",
        );
        let e = accept(&bad, Optional).unwrap_err();
        assert!(e.to_string().contains("30 bytes"), "{e}");
        let e = accept(&srtp_offer("RTP/SAVP", ""), Required).unwrap_err();
        assert_eq!(e, SdpError::Crypto(SdesError::Missing));
    }

    #[test]
    fn srtp_answer_carries_our_key_under_their_tag() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let line = format!("a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{KEY}\r\n");
        let n = accept(
            srtp_offer("RTP/SAVP", &line).as_bytes(),
            PREF,
            lo,
            SrtpPolicy::Required,
        )
        .unwrap();
        let answer = answer(&n, "127.0.0.1:20000".parse().unwrap(), 1);
        assert!(answer.contains("m=audio 20000 RTP/SAVP 8\r\n"), "{answer}");
        let back = parse(answer.as_bytes()).unwrap();
        let ours = back.crypto.unwrap();
        let s = n.srtp.unwrap();
        assert_eq!((ours.tag, ours.suite, ours.key), (3, s.suite, s.ours));
        // Our late offer: SAVP with the key given.
        let key = sdes::Crypto {
            tag: 1,
            suite: Suite::AesCm128HmacSha1_80,
            key: s.ours,
        };
        let o = parse(offer("127.0.0.1:20000".parse().unwrap(), 1, PREF, Some(&key)).as_bytes())
            .unwrap();
        assert!(o.savp);
        assert_eq!(o.crypto, Ok(key));
    }
}
