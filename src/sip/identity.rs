//! Who is calling, as far as we may believe it (RFC 3325, a trust domain).
//!
//! `P-Asserted-Identity` is what a network we trust asserts about the caller, and
//! counts only when the request came from one of `[sip] trusted`: from anyone else it
//! is just text the caller wrote. `From` is always the caller's own writing, so it
//! counts only with `[sms] trust_from` (a PBX that sets no PAI) and, again, only from a
//! trusted peer. `Privacy: id` (or `header`, `user`) withholds the identity whatever
//! the source. The one place the gateway reads a caller's identity: the number shown
//! to staff and on the dashboard, and the number an SMS may go to, come from here.

use rsipstack::sip::Request;

/// How much a request's identity headers are believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trust {
    /// The request came from a trusted peer.
    pub peer: bool,
    /// `[sms] trust_from`: From counts (from a trusted peer) when no PAI does.
    pub from: bool,
}

/// The caller's identity: user parts of its URIs (a number, usually), best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    users: Vec<String>,
}

impl Identity {
    /// The first identity, e.g. for display.
    pub fn user(&self) -> &str {
        &self.users[0]
    }

    /// Every identity asserted (PAI may carry a sip: and a tel: URI).
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(String::as_str)
    }
}

/// Why a call has no identity we may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unknown {
    /// `Privacy: id` (or `header`/`user`): the caller withheld their identity.
    #[error("caller withheld their identity")]
    Withheld,
    /// `anonymous@anonymous.invalid` and its relatives.
    #[error("caller is anonymous")]
    Anonymous,
    /// Only headers we may not believe name the caller.
    #[error("caller's identity is not asserted by a trusted peer")]
    Unverified,
    /// No header names the caller in a form we read.
    #[error("caller's identity is missing or unreadable")]
    Missing,
}

/// The caller's identity in a request, under `trust`.
pub fn caller(request: &Request, trust: Trust) -> Result<Identity, Unknown> {
    let values = |name: &str| -> Vec<String> {
        request
            .headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| h.value().to_string())
            .collect()
    };
    let pai = values("P-Asserted-Identity");
    let from = values("From");
    let privacy = values("Privacy");
    from_headers(
        &pai.iter().map(String::as_str).collect::<Vec<_>>(),
        from.first().map(String::as_str),
        &privacy.iter().map(String::as_str).collect::<Vec<_>>(),
        trust,
    )
}

/// The user part of the request's To header: the number dialled, as the caller's side
/// wrote it (a proxy may have rewritten the Request-URI's user on the way).
pub fn to_user(request: &Request) -> Option<String> {
    let to = request
        .headers
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case("To"))?;
    read_name_addr(to.value()).ok()
}

/// `caller` on raw header values.
pub fn from_headers(
    pai: &[&str],
    from: Option<&str>,
    privacy: &[&str],
    trust: Trust,
) -> Result<Identity, Unknown> {
    if privacy.iter().any(|p| withholds(p)) {
        return Err(Unknown::Withheld);
    }
    let mut first_err = None;
    let mut ignored = false;
    let mut users = Vec::new();
    if trust.peer {
        for value in pai.iter().flat_map(|v| split_header(v)) {
            match read_name_addr(value) {
                Ok(u) => users.push(u),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
    } else {
        ignored |= !pai.is_empty();
    }
    if users.is_empty() {
        match from {
            Some(f) if trust.peer && trust.from => match read_name_addr(f) {
                Ok(u) => users.push(u),
                // An anonymous From behind an unusable PAI: the PAI's reason is better.
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            },
            Some(_) => ignored = true,
            None => {}
        }
    }
    if users.is_empty() {
        return Err(first_err.unwrap_or(if ignored {
            Unknown::Unverified
        } else {
            Unknown::Missing
        }));
    }
    Ok(Identity { users })
}

/// The user part of one `name-addr` / `addr-spec` header value.
fn read_name_addr(value: &str) -> Result<String, Unknown> {
    let value = value.trim();
    let (display, uri) = match (value.find('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => (&value[..open], &value[open + 1..close]),
        // Without angle brackets, `;` starts header parameters (`;tag=`).
        _ => ("", value.split(';').next().unwrap_or("")),
    };
    if display
        .trim()
        .trim_matches('"')
        .eq_ignore_ascii_case("anonymous")
    {
        return Err(Unknown::Anonymous);
    }
    let (scheme, rest) = uri.split_once(':').ok_or(Unknown::Missing)?;
    let user = match scheme.trim().to_ascii_lowercase().as_str() {
        "tel" => rest.split(';').next().unwrap_or(""),
        "sip" | "sips" => {
            let (user, host) = rest.split_once('@').ok_or(Unknown::Missing)?;
            let host = host.split([';', ':', '>']).next().unwrap_or("");
            if host.eq_ignore_ascii_case("anonymous.invalid") {
                return Err(Unknown::Anonymous);
            }
            // User parameters (`+4520123456;npdi`) are not part of the number.
            user.split(';').next().unwrap_or("")
        }
        _ => return Err(Unknown::Missing),
    };
    if [
        "anonymous",
        "unknown",
        "restricted",
        "private",
        "unavailable",
    ]
    .iter()
    .any(|a| user.eq_ignore_ascii_case(a))
    {
        return Err(Unknown::Anonymous);
    }
    if user.is_empty() {
        return Err(Unknown::Missing);
    }
    Ok(user.to_string())
}

/// RFC 3323/3325: `id`, `header` and `user` all hide who is calling.
fn withholds(privacy: &str) -> bool {
    privacy.split([';', ',']).map(str::trim).any(|p| {
        ["id", "header", "user"]
            .iter()
            .any(|w| p.eq_ignore_ascii_case(w))
    })
}

/// Splits a header value at commas outside quotes and angle brackets.
fn split_header(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut angle) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUSTED: Trust = Trust {
        peer: true,
        from: false,
    };
    const TRUSTED_FROM: Trust = Trust {
        peer: true,
        from: true,
    };
    const UNTRUSTED: Trust = Trust {
        peer: false,
        from: true,
    };

    fn users(r: Result<Identity, Unknown>) -> Result<Vec<String>, Unknown> {
        r.map(|i| i.users().map(String::from).collect())
    }

    fn one(s: &str) -> Result<Vec<String>, Unknown> {
        Ok(vec![s.to_string()])
    }

    #[test]
    fn pai_counts_only_from_a_trusted_peer() {
        let pai = ["<sip:+4520123456@carrier>"];
        let from = Some("<sip:+4530000001@pbx>;tag=1");
        assert_eq!(
            users(from_headers(&pai, from, &[], TRUSTED)),
            one("+4520123456")
        );
        assert_eq!(
            users(from_headers(&pai, from, &[], UNTRUSTED)),
            Err(Unknown::Unverified),
            "an untrusted source's PAI and From are its own writing"
        );
        assert_eq!(
            users(from_headers(&pai, None, &[], UNTRUSTED)),
            Err(Unknown::Unverified)
        );
        assert_eq!(
            users(from_headers(&[], None, &[], UNTRUSTED)),
            Err(Unknown::Missing)
        );
    }

    #[test]
    fn from_counts_only_when_configured() {
        let from = Some("\"Anna\" <sip:+4520123456@host;user=phone>;tag=1");
        assert_eq!(
            users(from_headers(&[], from, &[], TRUSTED)),
            Err(Unknown::Unverified)
        );
        assert_eq!(
            users(from_headers(&[], from, &[], TRUSTED_FROM)),
            one("+4520123456")
        );
        for (value, want) in [
            ("<tel:+4520123456>", "+4520123456"),
            ("sip:20123456@host;tag=abc", "20123456"),
            ("<sip:+45-20-12-34-56;npdi@host>", "+45-20-12-34-56"),
            ("<sips:4520123456@host>", "4520123456"),
        ] {
            assert_eq!(
                users(from_headers(&[], Some(value), &[], TRUSTED_FROM)),
                one(want),
                "{value}"
            );
        }
        // A useless PAI falls back to From, where From counts.
        assert_eq!(
            users(from_headers(
                &["<sip:anonymous@pbx>"],
                from,
                &[],
                TRUSTED_FROM
            )),
            one("+4520123456")
        );
    }

    #[test]
    fn several_identities_in_order() {
        let pai = ["\"A, B\" <sip:anna@carrier>, <tel:+4540000002>"];
        assert_eq!(
            users(from_headers(&pai, Some("<sip:1234@pbx>"), &[], TRUSTED)),
            Ok(vec!["anna".to_string(), "+4540000002".to_string()])
        );
        let two_lines = ["<sip:reception@pbx>", "<tel:+4540000002>"];
        let id = from_headers(&two_lines, None, &[], TRUSTED).unwrap();
        assert_eq!(id.user(), "reception");
        // A trusted network asserts the number behind an anonymous From.
        assert_eq!(
            users(from_headers(
                &["<tel:+4520123456>"],
                Some("\"Anonymous\" <sip:anonymous@anonymous.invalid>"),
                &[],
                TRUSTED
            )),
            one("+4520123456")
        );
    }

    #[test]
    fn withheld_and_anonymous() {
        let pai = ["<sip:+4520123456@carrier>"];
        assert_eq!(
            users(from_headers(&pai, None, &["id"], TRUSTED)),
            Err(Unknown::Withheld)
        );
        assert_eq!(
            users(from_headers(&pai, None, &["header; ID"], TRUSTED)),
            Err(Unknown::Withheld)
        );
        assert_eq!(
            users(from_headers(&pai, None, &["none"], TRUSTED)),
            one("+4520123456")
        );
        for anon in [
            "sip:anonymous@anonymous.invalid",
            "\"Anonymous\" <sip:+4520123456@host>",
            "<sip:Unknown@10.0.0.1>",
        ] {
            assert_eq!(
                users(from_headers(&[], Some(anon), &[], TRUSTED_FROM)),
                Err(Unknown::Anonymous),
                "{anon}"
            );
        }
        for garbage in ["garbage", "<mailto:a@b>", "<sip:@host>"] {
            assert_eq!(
                users(from_headers(&[], Some(garbage), &[], TRUSTED_FROM)),
                Err(Unknown::Missing),
                "{garbage}"
            );
        }
    }
}
