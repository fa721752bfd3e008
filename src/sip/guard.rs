//! Request validation in front of the SIP stack (RFC 3261 §8.2).
//!
//! rsipstack answers malformed requests with 200 or drops them silently, and a
//! non-UTF-8 header byte makes it lose the rest of the headers. So every message is
//! checked here first: a bad request gets the right 4xx/5xx with a reason phrase, a
//! message that cannot be answered (no Via, a broken response) is dropped with a log
//! line, and only what passes reaches the stack. A bare CR or a NUL in the headers is
//! refused (400): neither we nor rsipstack split lines on a lone CR, so it would ride
//! inside a header value into whatever repeats it.

use super::header_value::sanitize;

/// Largest datagram the stack reads (it truncates beyond this); over it we answer 513.
pub const MAX_DATAGRAM: usize = 8192;
/// Largest header section accepted on a stream before the connection is refused.
pub const MAX_HEADERS: usize = 16 * 1024;
/// Largest body accepted on a stream.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest whole message accepted on a stream: what the stack's stream codec takes.
pub const MAX_STREAM_MESSAGE: usize = 65535;

/// Option tags we implement; a `Require` naming anything else gets 420.
const SUPPORTED_EXTENSIONS: &[&str] = &[];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Answer with this response; the message goes no further.
    Reply {
        response: Vec<u8>,
        status: u16,
        reason: String,
    },
    /// Nothing can be answered; log and forget.
    Drop(String),
}

/// How a byte stream (TCP) splits into messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// Need more bytes.
    Incomplete,
    /// CRLF keepalives to skip.
    Keepalive(usize),
    /// A whole message of this many bytes is at the front.
    Message(usize),
    /// The stream cannot be framed: answer (if possible) and close.
    Broken(Verdict),
}

struct Head<'a> {
    /// The whole header section, as received.
    text: &'a str,
    start_line: &'a str,
    /// (lower-cased canonical name, value) in order.
    headers: Vec<(String, String)>,
    body: &'a [u8],
}

fn canonical(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    match n.as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "l" => "content-length",
        "c" => "content-type",
        "m" => "contact",
        "k" => "supported",
        other => other,
    }
    .to_string()
}

fn header_end(raw: &[u8]) -> Option<(usize, usize)> {
    let crlf = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, p + 4));
    let lf = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|p| (p, p + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn split_head(raw: &[u8]) -> Result<Head<'_>, String> {
    let (head_len, body_start) = header_end(raw).unwrap_or((raw.len(), raw.len()));
    let head = std::str::from_utf8(&raw[..head_len])
        .map_err(|_| "Invalid UTF-8 in headers".to_string())?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or_default();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header (RFC 3261 §7.3.1).
            match headers.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                None => return Err("Malformed header folding".into()),
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("Malformed header line {:.40?}", line))?;
        if name.trim().is_empty() || name.trim().contains(char::is_whitespace) {
            return Err("Malformed header name".into());
        }
        headers.push((canonical(name), value.trim().to_string()));
    }
    Ok(Head {
        text: head,
        start_line,
        headers,
        body: &raw[body_start..],
    })
}

impl Head<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Why the header section cannot be taken apart safely, if it cannot.
    fn unsafe_characters(&self) -> Option<&'static str> {
        let bytes = self.text.as_bytes();
        let bare_cr = bytes
            .iter()
            .enumerate()
            .any(|(i, b)| *b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
        if bare_cr {
            Some("Bare CR in Headers")
        } else if bytes.contains(&0) {
            Some("NUL in Headers")
        } else {
            None
        }
    }
}

/// Longest header value echoed in an error response.
const MAX_ECHO: usize = 1024;

/// Builds a stateless error response that echoes what the request gave us (without
/// control characters: it may be the very request refused for them).
fn error_response(head: &Head<'_>, status: u16, reason: &str, extra: &[(&str, String)]) -> Verdict {
    let mut r = format!("SIP/2.0 {status} {reason}\r\n");
    let clean = |v: &str| sanitize(v, MAX_ECHO);
    for via in head.all("via") {
        r += &format!("Via: {}\r\n", clean(via));
    }
    if let Some(v) = head.get("from") {
        r += &format!("From: {}\r\n", clean(v));
    }
    if let Some(v) = head.get("to").map(clean) {
        let tag = if v.contains(";tag=") {
            ""
        } else {
            ";tag=vbguard"
        };
        r += &format!("To: {v}{tag}\r\n");
    }
    for name in ["call-id", "cseq"] {
        if let Some(v) = head.get(name) {
            let label = if name == "call-id" { "Call-ID" } else { "CSeq" };
            r += &format!("{label}: {}\r\n", clean(v));
        }
    }
    for (name, value) in extra {
        r += &format!("{name}: {}\r\n", clean(value));
    }
    r += &format!("Server: {}\r\nContent-Length: 0\r\n\r\n", super::AGENT);
    Verdict::Reply {
        response: r.into_bytes(),
        status,
        reason: reason.to_string(),
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Checks one datagram.
pub fn check(raw: &[u8]) -> Verdict {
    check_within(raw, MAX_DATAGRAM)
}

/// Checks one message framed on a stream, which may be larger than a datagram.
pub fn check_stream(raw: &[u8]) -> Verdict {
    check_within(raw, MAX_STREAM_MESSAGE)
}

fn check_within(raw: &[u8], max: usize) -> Verdict {
    if raw.len() > max {
        // Headers may still be readable: answer so the sender can switch to TCP.
        return match split_head(raw) {
            Ok(head) if head.get("via").is_some() => {
                error_response(&head, 513, "Message Too Large", &[])
            }
            _ => Verdict::Drop(format!(
                "oversized message ({} bytes) without readable headers",
                raw.len()
            )),
        };
    }
    let head = match split_head(raw) {
        Ok(h) => h,
        Err(e) => return Verdict::Drop(e),
    };
    if head.start_line.starts_with("SIP/") {
        if let Some(why) = head.unsafe_characters() {
            return Verdict::Drop(format!("response with {why}"));
        }
        return check_response(&head);
    }
    let parts: Vec<&str> = head.start_line.split(' ').collect();
    let method = parts.first().copied().unwrap_or_default();
    let reply_possible = head.get("via").is_some() && method != "ACK";
    let reject = |status: u16, reason: &str| {
        if reply_possible {
            error_response(&head, status, reason, &[])
        } else {
            Verdict::Drop(format!(
                "{status} {reason} (cannot answer: no Via, or an ACK)"
            ))
        }
    };
    if let Some(why) = head.unsafe_characters() {
        return reject(400, why);
    }
    if parts.len() != 3 || !is_token(method) || parts[1].is_empty() {
        return reject(400, "Malformed Request-Line");
    }
    let version = parts[2];
    if version != "SIP/2.0" {
        if version.starts_with("SIP/") {
            return reject(505, "Version Not Supported");
        }
        return reject(400, "Malformed Request-Line");
    }
    for name in ["via", "from", "to", "call-id", "cseq"] {
        if head.get(name).is_none() {
            let label = match name {
                "via" => "Via",
                "from" => "From",
                "to" => "To",
                "call-id" => "Call-ID",
                _ => "CSeq",
            };
            return reject(400, &format!("Missing {label} Header"));
        }
    }
    let cseq = head.get("cseq").unwrap_or_default();
    let mut cseq_parts = cseq.split_whitespace();
    let valid_number = cseq_parts
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .is_some();
    let cseq_method = cseq_parts.next();
    if !valid_number || cseq_parts.next().is_some() {
        return reject(400, "Malformed CSeq");
    }
    if cseq_method != Some(method) {
        return reject(400, "CSeq Method Does Not Match Request");
    }
    if let Some(cl) = head.get("content-length") {
        match cl.parse::<usize>() {
            Ok(n) if n > head.body.len() => return reject(400, "Content-Length Exceeds Body"),
            Ok(_) => {}
            Err(_) => return reject(400, "Malformed Content-Length"),
        }
    }
    if !matches!(method, "ACK" | "CANCEL") {
        let unsupported: Vec<String> = head
            .all("require")
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty() && !SUPPORTED_EXTENSIONS.contains(&t.as_str()))
            .collect();
        if !unsupported.is_empty() {
            return error_response(
                &head,
                420,
                "Bad Extension",
                &[("Unsupported", unsupported.join(", "))],
            );
        }
    }
    if let Err(e) = rsipstack::sip::SipMessage::try_from(raw) {
        return reject(
            400,
            &format!("Unparseable Request ({})", first_words(&e.to_string())),
        );
    }
    Verdict::Pass
}

fn first_words(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(60).collect()
}

fn check_response(head: &Head<'_>) -> Verdict {
    let mut parts = head.start_line.splitn(3, ' ');
    let version = parts.next();
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    if version != Some("SIP/2.0") || !matches!(code, Some(100..=699)) {
        return Verdict::Drop(format!("malformed status line {:.60?}", head.start_line));
    }
    if head.get("via").is_none() || head.get("cseq").is_none() || head.get("call-id").is_none() {
        return Verdict::Drop("response without Via, CSeq or Call-ID".into());
    }
    Verdict::Pass
}

/// Finds the first message in a TCP byte stream (RFC 3261 §18.3: Content-Length is
/// mandatory on streams).
pub fn frame(buf: &[u8]) -> Framing {
    let ws = buf
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    if ws > 0 {
        return Framing::Keepalive(ws);
    }
    let Some((_, body_start)) = header_end(buf) else {
        if buf.len() > MAX_HEADERS {
            return Framing::Broken(Verdict::Drop(format!(
                "header section over {MAX_HEADERS} bytes"
            )));
        }
        return Framing::Incomplete;
    };
    if body_start > MAX_HEADERS {
        return Framing::Broken(refuse(buf, 513, "Message Too Large"));
    }
    let head = match split_head(&buf[..body_start]) {
        Ok(h) => h,
        Err(e) => return Framing::Broken(Verdict::Drop(e)),
    };
    let length = match head.get("content-length") {
        None => return Framing::Broken(refuse(buf, 400, "Missing Content-Length")),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= MAX_BODY => n,
            Ok(_) => return Framing::Broken(refuse(buf, 513, "Message Too Large")),
            Err(_) => return Framing::Broken(refuse(buf, 400, "Malformed Content-Length")),
        },
    };
    if body_start + length > MAX_STREAM_MESSAGE {
        return Framing::Broken(refuse(buf, 513, "Message Too Large"));
    }
    if buf.len() < body_start + length {
        return Framing::Incomplete;
    }
    Framing::Message(body_start + length)
}

fn refuse(buf: &[u8], status: u16, reason: &str) -> Verdict {
    let end = header_end(buf).map_or(buf.len(), |(_, e)| e);
    match split_head(&buf[..end]) {
        Ok(head) if head.get("via").is_some() && !head.start_line.starts_with("SIP/") => {
            error_response(&head, status, reason, &[])
        }
        _ => Verdict::Drop(format!("{status} {reason}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "INVITE sip:bot@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n\
        From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bot@127.0.0.1>\r\n\
        Call-ID: abc\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
        Contact: <sip:a@127.0.0.1:5061>\r\nContent-Length: 0\r\n\r\n";

    fn status(v: &Verdict) -> Option<u16> {
        match v {
            Verdict::Reply { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn reply_text(v: &Verdict) -> String {
        match v {
            Verdict::Reply { response, .. } => String::from_utf8(response.clone()).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_passes() {
        assert_eq!(check(GOOD.as_bytes()), Verdict::Pass);
    }

    #[test]
    fn missing_mandatory_headers_get_400_naming_them() {
        for (header, label) in [
            ("Call-ID: abc\r\n", "Call-ID"),
            ("CSeq: 1 INVITE\r\n", "CSeq"),
            ("From: <sip:a@127.0.0.1>;tag=1\r\n", "From"),
        ] {
            let v = check(GOOD.replace(header, "").as_bytes());
            assert_eq!(status(&v), Some(400));
            assert!(reply_text(&v).starts_with(&format!("SIP/2.0 400 Missing {label} Header\r\n")));
        }
    }

    #[test]
    fn no_via_cannot_be_answered() {
        let v = check(
            GOOD.replace("Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n", "")
                .as_bytes(),
        );
        assert!(
            matches!(v, Verdict::Drop(ref m) if m.contains("Missing Via")),
            "{v:?}"
        );
    }

    #[test]
    fn wrong_version_gets_505() {
        let v = check(
            GOOD.replace("bot@127.0.0.1 SIP/2.0", "bot@127.0.0.1 SIP/7.0")
                .as_bytes(),
        );
        assert_eq!(status(&v), Some(505));
    }

    #[test]
    fn content_length_beyond_body_gets_400() {
        let v = check(
            GOOD.replace("Content-Length: 0", "Content-Length: 50")
                .as_bytes(),
        );
        assert_eq!(status(&v), Some(400));
        let v = check(
            GOOD.replace("Content-Length: 0", "Content-Length: 18446744073709551616")
                .as_bytes(),
        );
        assert!(reply_text(&v).contains("Malformed Content-Length"));
    }

    #[test]
    fn cseq_method_mismatch_gets_400() {
        let v = check(GOOD.replace("CSeq: 1 INVITE", "CSeq: 1 BYE").as_bytes());
        assert!(reply_text(&v).contains("400 CSeq Method Does Not Match Request"));
    }

    #[test]
    fn require_gets_420_with_unsupported() {
        let v = check(
            GOOD.replace(
                "Max-Forwards: 70\r\n",
                "Max-Forwards: 70\r\nRequire: foo, 100rel\r\n",
            )
            .as_bytes(),
        );
        let text = reply_text(&v);
        assert!(text.starts_with("SIP/2.0 420 Bad Extension"));
        assert!(text.contains("Unsupported: foo, 100rel\r\n"));
    }

    #[test]
    fn non_utf8_headers_are_refused_not_truncated() {
        let mut raw = GOOD.as_bytes().to_vec();
        let pos = GOOD.find("Max-Forwards").unwrap();
        raw.splice(pos..pos, b"X-Bad: \xff\xfe\r\n".iter().copied());
        assert!(matches!(check(&raw), Verdict::Drop(_)));
    }

    #[test]
    fn a_bare_cr_or_nul_in_the_headers_gets_400_and_is_not_echoed() {
        for (evil, reason) in [
            ("Call-ID: abc\rX-Evil: 1\r\n", "Bare CR in Headers"),
            ("Call-ID: abc\0X-Evil: 1\r\n", "NUL in Headers"),
        ] {
            let v = check(GOOD.replace("Call-ID: abc\r\n", evil).as_bytes());
            let text = reply_text(&v);
            assert!(
                text.starts_with(&format!("SIP/2.0 400 {reason}\r\n")),
                "{text:?}"
            );
            assert!(text.contains("Call-ID: abcX-Evil: 1\r\n"), "{text:?}");
            let lines: Vec<&str> = text.split("\r\n").collect();
            assert!(
                !lines.iter().any(|l| l.contains(['\r', '\n', '\0'])),
                "{text:?}"
            );
        }
        // In a response: dropped.
        let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: a\rb\r\nCSeq: 1 INVITE\r\n\r\n";
        assert!(matches!(check(resp.as_bytes()), Verdict::Drop(_)));
    }

    #[test]
    fn reply_echoes_dialog_headers_and_adds_a_to_tag() {
        let text = reply_text(&check(
            GOOD.replace("CSeq: 1 INVITE", "CSeq: 1 BYE").as_bytes(),
        ));
        assert!(text.contains("Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n"));
        assert!(text.contains("Call-ID: abc\r\n"));
        assert!(text.contains("To: <sip:bot@127.0.0.1>;tag=vbguard\r\n"));
    }

    #[test]
    fn acks_are_never_answered() {
        let ack = GOOD
            .replace("INVITE sip", "ACK sip")
            .replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
        assert!(matches!(check(ack.as_bytes()), Verdict::Drop(_)));
    }

    #[test]
    fn huge_datagram_gets_513() {
        let big = GOOD.replace(
            "Max-Forwards: 70\r\n",
            &format!("Max-Forwards: 70\r\nX-Pad: {}\r\n", "a".repeat(9000)),
        );
        assert_eq!(status(&check(big.as_bytes())), Some(513));
    }

    #[test]
    fn truncated_and_garbage_are_handled() {
        assert!(matches!(check(b"\x00\x01garbage"), Verdict::Drop(_)));
        assert_eq!(status(&check(&GOOD.as_bytes()[..120])), Some(400));
        assert!(matches!(check(b"SIP/2.0 abc\r\n\r\n"), Verdict::Drop(_)));
    }

    #[test]
    fn stream_framing() {
        let two = format!("\r\n\r\n{GOOD}{GOOD}");
        assert_eq!(frame(two.as_bytes()), Framing::Keepalive(4));
        assert_eq!(frame(GOOD.as_bytes()), Framing::Message(GOOD.len()));
        assert_eq!(frame(&GOOD.as_bytes()[..50]), Framing::Incomplete);
        let with_body = GOOD.replace("Content-Length: 0", "Content-Length: 5") + "he";
        assert_eq!(frame(with_body.as_bytes()), Framing::Incomplete);
        let huge = GOOD.replace("Content-Length: 0", "Content-Length: 18446744073709551615");
        assert!(matches!(
            frame(huge.as_bytes()),
            Framing::Broken(Verdict::Reply { status: 513, .. })
        ));
        let overflow = GOOD.replace(
            "Content-Length: 0",
            "Content-Length: 99999999999999999999999",
        );
        assert!(matches!(
            frame(overflow.as_bytes()),
            Framing::Broken(Verdict::Reply { status: 400, .. })
        ));
        let none = GOOD.replace("Content-Length: 0\r\n", "");
        assert!(matches!(
            frame(none.as_bytes()),
            Framing::Broken(Verdict::Reply { status: 400, .. })
        ));
    }
}
