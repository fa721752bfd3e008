//! What the switchboard learns with a transferred call, so staff never ask again:
//! `User-to-User` (RFC 7433, hex) and `X-Voicebot-*` headers on the INVITE that
//! reaches the queue, and a link to the call's page on the switchboard screen.
//!
//! A bridged INVITE carries them as headers; a REFER carries them embedded in the
//! Refer-To URI (RFC 3261 §19.1.1), which the caller's phone copies into its INVITE.
//! The call id is the caller's writing: every value is sanitised (`sip::header_value`)
//! before it goes into a header.

use crate::sip::header_value::{cut, sanitize};

/// Longest value of one context header; the page link may be longer (it carries the
/// call id escaped).
const MAX_VALUE: usize = 256;
const MAX_PAGE: usize = 1024;

/// The facts sent along; none of them personal (the topic and intent are ours, the
/// transcript stays on the switchboard page behind the link).
#[derive(Debug, Clone, PartialEq)]
pub struct TransferContext {
    pub call_id: String,
    pub topic: Option<String>,
    pub intent_id: Option<String>,
    pub reason: String,
    /// The switchboard page for this call.
    pub page: Option<String>,
}

impl TransferContext {
    /// Header name and value pairs, in the order sent, each value sanitised.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("User-to-User", self.user_to_user())];
        if let Some(topic) = &self.topic {
            out.push(("X-Voicebot-Topic", sanitize(topic, MAX_VALUE)));
        }
        if let Some(intent) = &self.intent_id {
            out.push(("X-Voicebot-Intent", sanitize(intent, MAX_VALUE)));
        }
        out.push(("X-Voicebot-Call-Id", sanitize(&self.call_id, MAX_VALUE)));
        out.push(("X-Voicebot-Reason", sanitize(&self.reason, MAX_VALUE)));
        if let Some(page) = &self.page {
            out.push(("X-Voicebot-Context", sanitize(page, MAX_PAGE)));
        }
        out
    }

    /// RFC 7433: the payload as hex, with `encoding=hex` and our purpose.
    fn user_to_user(&self) -> String {
        let payload = format!(
            "topic={};intent={};reason={};call={}",
            self.topic.as_deref().unwrap_or(""),
            self.intent_id.as_deref().unwrap_or(""),
            self.reason,
            self.call_id
        );
        // The UUI element of ISDN interworking holds at most 128 octets (RFC 7434).
        let hex: String = cut(&payload, 128)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{hex};encoding=hex;purpose=voicebot")
    }

    /// The queue URI with our headers embedded, for a REFER's Refer-To, kept within
    /// `max_len` bytes: phones have fixed buffers for it (baresip 1.0 fails the
    /// transfer with "500 Call Error" on a Refer-To of about 300 bytes). Headers go in
    /// by importance (the call id first: it finds the switchboard page) and those that
    /// do not fit are left out and named; a bridged INVITE always carries them all.
    /// The queue's URI is used exactly as configured; only `?headers` are appended.
    pub fn refer_to(&self, queue_uri: &str, max_len: usize) -> (String, Vec<&'static str>) {
        self.refer_to_with(queue_uri, max_len, self.headers())
    }

    /// `refer_to` for a queue's public alias: the switchboard page's address stays
    /// inside (staff find the call by its id there).
    pub fn public_refer_to(&self, alias: &str, max_len: usize) -> (String, Vec<&'static str>) {
        let mut headers = self.headers();
        headers.retain(|(name, _)| *name != "X-Voicebot-Context");
        self.refer_to_with(alias, max_len, headers)
    }

    fn refer_to_with(
        &self,
        queue_uri: &str,
        max_len: usize,
        mut headers: Vec<(&'static str, String)>,
    ) -> (String, Vec<&'static str>) {
        const ORDER: [&str; 6] = [
            "X-Voicebot-Call-Id",
            "X-Voicebot-Reason",
            "X-Voicebot-Topic",
            "X-Voicebot-Intent",
            "User-to-User",
            "X-Voicebot-Context",
        ];
        headers.sort_by_key(|(name, _)| ORDER.iter().position(|o| o == name));
        let mut uri = queue_uri.to_string();
        let mut sep = if queue_uri.contains('?') { '&' } else { '?' };
        let mut omitted = Vec::new();
        for (name, value) in headers {
            let part = format!("{sep}{name}={}", escape_hvalue(&value));
            // +2 for the angle brackets.
            if uri.len() + part.len() + 2 <= max_len {
                uri.push_str(&part);
                sep = '&';
            } else {
                omitted.push(name);
            }
        }
        (format!("<{uri}>"), omitted)
    }
}

/// Escapes a header value for a SIP URI's `?headers` part: only unreserved and the
/// few hnv-unreserved characters stay as they are (RFC 3261 §25.1).
fn escape_hvalue(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')'
            | b'['
            | b']'
            | b'/'
            | b':'
            | b'+'
            | b'$' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TransferContext {
        TransferContext {
            call_id: "a84b4c76e66710@pc33.example.org".into(),
            topic: Some("affald".into()),
            intent_id: Some("affald.storskrald".into()),
            reason: "dtmf".into(),
            page: Some(
                "http://127.0.0.1:8080/switchboard/calls/a84b4c76e66710%40pc33.example.org".into(),
            ),
        }
    }

    #[test]
    fn user_to_user_is_hex_with_encoding_and_purpose() {
        let (name, value) = ctx().headers()[0].clone();
        assert_eq!(name, "User-to-User");
        let (hex, params) = value.split_once(';').unwrap();
        assert_eq!(params, "encoding=hex;purpose=voicebot");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "topic=affald;intent=affald.storskrald;reason=dtmf;call=a84b4c76e66710@pc33.example.org"
        );
    }

    #[test]
    fn refer_to_embeds_every_header_escaped_when_there_is_room() {
        let (r, omitted) = ctx().refer_to("sip:affald@192.0.2.10:5080", 2000);
        assert!(omitted.is_empty());
        assert!(
            r.starts_with(
                "<sip:affald@192.0.2.10:5080?X-Voicebot-Call-Id=a84b4c76e66710%40pc33.example.org&"
            ),
            "{r}"
        );
        assert!(r.contains("%3Bencoding%3Dhex%3Bpurpose%3Dvoicebot"), "{r}");
        assert!(r.contains("&X-Voicebot-Topic=affald&"), "{r}");
        assert!(r.contains("&X-Voicebot-Reason=dtmf&"), "{r}");
        assert!(r.contains("calls/a84b4c76e66710%2540pc33"), "{r}");
        assert!(r.ends_with('>'));
        assert!(!r[1..r.len() - 1].contains(['<', '>', ' ', ';']), "{r}");
    }

    #[test]
    fn a_public_alias_never_carries_the_switchboard_address() {
        let (r, omitted) = ctx().public_refer_to("sip:borgerservice@kommune.example.org", 2000);
        assert!(omitted.is_empty());
        assert!(r.starts_with("<sip:borgerservice@kommune.example.org?X-Voicebot-Call-Id="));
        assert!(!r.contains("Context") && !r.contains("http"), "{r}");
    }

    #[test]
    fn a_short_refer_to_keeps_the_most_important_headers() {
        let (r, omitted) = ctx().refer_to("sip:affald@192.0.2.10:5080", 200);
        assert!(r.len() <= 200, "{} bytes: {r}", r.len());
        assert!(
            r.contains("X-Voicebot-Call-Id=") && r.contains("X-Voicebot-Reason=dtmf"),
            "{r}"
        );
        assert_eq!(omitted, ["User-to-User", "X-Voicebot-Context"]);
        let (r, omitted) = ctx().refer_to("sip:affald@192.0.2.10:5080", 20);
        assert_eq!(r, "<sip:affald@192.0.2.10:5080>");
        assert_eq!(omitted.len(), 6);
    }

    #[test]
    fn a_call_id_of_multibyte_characters_is_cut_on_a_character_boundary() {
        // A crafted Call-ID: "a" + 100 × "é" puts byte 128 inside an "é".
        let c = TransferContext {
            call_id: format!("a{}", "é".repeat(100)),
            ..ctx()
        };
        let (_, value) = c.headers()[0].clone();
        let hex = value.split(';').next().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert!(bytes.len() <= 128, "{} bytes", bytes.len());
        let text = String::from_utf8(bytes).expect("whole characters only");
        assert!(text.ends_with('é'), "{text}");
        let (refer_to, _) = c.refer_to("sip:q@192.0.2.10", 2000);
        assert!(
            refer_to.contains("X-Voicebot-Call-Id=a%C3%A9%C3%A9"),
            "{refer_to}"
        );
    }

    #[test]
    fn a_callers_call_id_with_cr_lf_never_reaches_a_header() {
        let c = TransferContext {
            call_id: format!("x\r\nX-Evil: 1\r\n\r\n{}\0", "æ".repeat(200)),
            ..ctx()
        };
        for (name, value) in c.headers() {
            assert!(!value.contains(['\r', '\n', '\0']), "{name}: {value:?}");
            assert!(value.len() <= MAX_PAGE, "{name}: {} bytes", value.len());
        }
        let call_id = c
            .headers()
            .into_iter()
            .find(|(n, _)| *n == "X-Voicebot-Call-Id")
            .unwrap()
            .1;
        assert!(call_id.starts_with("xX-Evil: 1æ"), "{call_id}");
        assert!(call_id.len() <= MAX_VALUE);
        let (refer_to, _) = c.refer_to("sip:affald@192.0.2.10", 2000);
        assert!(!refer_to.contains(['\r', '\n', '\0']), "{refer_to}");
    }

    #[test]
    fn missing_topic_and_intent_leave_their_headers_out() {
        let c = TransferContext {
            topic: None,
            intent_id: None,
            page: None,
            ..ctx()
        };
        let names: Vec<_> = c.headers().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["User-to-User", "X-Voicebot-Call-Id", "X-Voicebot-Reason"]
        );
    }
}
