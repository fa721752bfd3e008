use super::*;

fn sdp(m: &str, extra: &str) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n{m}\r\n{extra}")
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
            parse(sdp("m=audio 4000 RTP/AVP 8", &format!("a=ptime:{p}\r\n")).as_bytes()).unwrap();
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
        sdp("m=audio 4000 RTP/AVP 8", "").replace("c=IN IP4 10.0.0.5", &format!("c=IN IP4 {addr}"))
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
    let o =
        parse(offer("127.0.0.1:20000".parse().unwrap(), 1, PREF, Some(&key)).as_bytes()).unwrap();
    assert!(o.savp);
    assert_eq!(o.crypto, Ok(key));
}

#[test]
fn our_late_offer_keeps_our_key_and_a_reinvite_may_not_rekey() {
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let theirs = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n");
    let answer = srtp_offer("RTP/SAVP", &theirs);
    let ours = sdes::Crypto {
        tag: 1,
        suite: Suite::AesCm128HmacSha1_80,
        key: MasterKey::random(),
    };
    let take = |body: &str| accept(body.as_bytes(), PREF, lo, SrtpPolicy::Required).unwrap();
    let n = answered(take(&answer), Some(&ours)).unwrap();
    assert_eq!(n.srtp.unwrap().ours, ours.key);
    let other_tag = answer.replace("a=crypto:1", "a=crypto:2");
    assert_eq!(
        answered(take(&other_tag), Some(&ours)),
        Err(SdpError::SrtpAnswer)
    );
    let plain = accept(srtp_offer("RTP/AVP", "").as_bytes(), PREF, lo, OFF).unwrap();
    assert_eq!(answered(plain, Some(&ours)), Err(SdpError::SrtpAnswer));
    assert!(answered(plain, None).is_ok());
    // A re-INVITE with the same keys: our answer repeats our key.
    let first = n.srtp;
    let again = same_keys(take(&answer), first).unwrap();
    assert_eq!(again.srtp.unwrap().ours, ours.key);
    let rekeyed = answer.replace(KEY, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk");
    assert_eq!(same_keys(take(&rekeyed), first), Err(SdpError::Rekey));
    assert_eq!(same_keys(plain, first), Err(SdpError::Rekey));
    assert_eq!(same_keys(take(&answer), None), Err(SdpError::Rekey));
    assert!(same_keys(plain, None).is_ok());
}
