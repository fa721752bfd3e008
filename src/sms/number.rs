//! The caller's number, as an SMS can be sent to it: E.164, from the SIP headers.
//!
//! The network asserts the caller in `P-Asserted-Identity`; `From` is whatever the
//! caller's side wrote, so PAI wins when both are present. A withheld or anonymous
//! caller gets no SMS offer, and neither does a landline: a link read out by an SMS
//! voice service is of no use. The full number is needed to send, but it is personal
//! data: [`E164`]'s `Display` and `Debug` print only the [`E164::redacted`] form, so
//! logging a number by accident cannot leak it.

use std::fmt;

/// A phone number in E.164 form: `+`, country code, subscriber number (at most 15
/// digits in all).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct E164(String);

impl E164 {
    /// Accepts only the canonical form, `+` and 8–15 digits (as stored in the outbox).
    pub fn parse(s: &str) -> Option<E164> {
        let digits = s.strip_prefix('+')?;
        let ok = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        ok.then(|| E164(s.to_string()))
    }

    /// The full number, for sending only.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without `+` (SMPP addresses with TON international).
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// For logs and storage other than the outbox: a Danish number as `+45 20 ** ** 56`,
    /// any other as its first four and last two digits. Deterministic, so one caller's
    /// entries can be matched up without revealing the number.
    pub fn redacted(&self) -> String {
        let d = self.digits();
        match d.strip_prefix("45") {
            Some(national) if national.len() == 8 => {
                format!("+45 {} ** ** {}", &national[..2], &national[6..])
            }
            _ => format!(
                "+{}{}{}",
                &d[..4],
                "*".repeat(d.len() - 6),
                &d[d.len() - 2..]
            ),
        }
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.redacted())
    }
}

/// Why a call has no number an SMS could go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoNumber {
    /// `Privacy: id` (or `header`/`user`): the caller withheld their identity.
    #[error("caller withheld their number")]
    Withheld,
    /// `anonymous@anonymous.invalid` and its relatives.
    #[error("caller is anonymous")]
    Anonymous,
    /// An internal extension, a name, or garbage.
    #[error("caller's identity is not a phone number")]
    NotANumber,
}

/// How numbers are read and judged on this line: the country callers are in unless
/// their number says otherwise, and which foreign countries may get an SMS.
#[derive(Debug, Clone)]
pub struct NumberPlan {
    country_code: String,
    foreign_mobile: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a country code (1 to 3 digits)")]
pub struct BadCountryCode(String);

/// Danish mobile number blocks (first two digits of the eight), from the Danish
/// numbering plan. `2x` is entirely mobile.
const DK_MOBILE: [&str; 16] = [
    "30", "31", "40", "41", "42", "50", "51", "52", "53", "60", "61", "71", "81", "91", "92", "93",
];

impl NumberPlan {
    pub fn new(country_code: &str, foreign_mobile: &[String]) -> Result<Self, BadCountryCode> {
        let check = |cc: &str| {
            let ok = (1..=3).contains(&cc.len())
                && cc.bytes().all(|b| b.is_ascii_digit())
                && !cc.starts_with('0');
            ok.then(|| cc.to_string())
                .ok_or_else(|| BadCountryCode(cc.to_string()))
        };
        Ok(NumberPlan {
            country_code: check(country_code)?,
            foreign_mobile: foreign_mobile
                .iter()
                .map(|cc| check(cc))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The caller's number from the raw header values: `P-Asserted-Identity` (if any),
    /// `From`, and `Privacy` (if any).
    pub fn caller(
        &self,
        pai: Option<&str>,
        from: &str,
        privacy: Option<&str>,
    ) -> Result<E164, NoNumber> {
        if privacy.is_some_and(withholds) {
            return Err(NoNumber::Withheld);
        }
        // PAI may carry several identities (a sip: and a tel: URI); any number will do.
        let mut first_err = None;
        for value in pai.into_iter().flat_map(split_header) {
            match self.read_name_addr(value) {
                Ok(n) => return Ok(n),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match self.read_name_addr(from) {
            Ok(n) => Ok(n),
            // An anonymous From with a usable PAI was handled above; without one, the
            // PAI's reason is the better one to report.
            Err(e) => Err(first_err.unwrap_or(e)),
        }
    }

    /// One `name-addr` / `addr-spec` header value.
    fn read_name_addr(&self, value: &str) -> Result<E164, NoNumber> {
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
            return Err(NoNumber::Anonymous);
        }
        let (scheme, rest) = uri.split_once(':').ok_or(NoNumber::NotANumber)?;
        let user = match scheme.trim().to_ascii_lowercase().as_str() {
            "tel" => rest.split(';').next().unwrap_or(""),
            "sip" | "sips" => {
                let (user, host) = rest.split_once('@').ok_or(NoNumber::NotANumber)?;
                let host = host.split([';', ':', '>']).next().unwrap_or("");
                if host.eq_ignore_ascii_case("anonymous.invalid") {
                    return Err(NoNumber::Anonymous);
                }
                // User parameters (`+4520123456;npdi`) are not part of the number.
                user.split(';').next().unwrap_or("")
            }
            _ => return Err(NoNumber::NotANumber),
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
            return Err(NoNumber::Anonymous);
        }
        self.normalize(user)
    }

    /// A dialled or presented number (separators allowed) to E.164. Accepted forms:
    /// `+CC…`, `00CC…`, a national number with trunk prefix `0`, the eight-digit Danish
    /// national number (no trunk prefix in Denmark), and `CC…` with the `+` lost by a
    /// PBX. Shorter numbers are extensions, not something an SMS can reach.
    pub fn normalize(&self, raw: &str) -> Result<E164, NoNumber> {
        let plus = raw.trim_start().starts_with('+');
        let mut digits = String::with_capacity(raw.len());
        for c in raw.chars() {
            match c {
                '0'..='9' => digits.push(c),
                '+' | '-' | '.' | ' ' | '(' | ')' => {}
                _ => return Err(NoNumber::NotANumber),
            }
        }
        let international = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_string()
        } else if let Some(rest) = digits.strip_prefix('0') {
            format!("{}{rest}", self.country_code)
        } else if digits.len() == 8 && self.country_code == "45" {
            format!("45{digits}")
        } else if digits.starts_with(&self.country_code) && digits.len() >= 10 {
            digits
        } else {
            return Err(NoNumber::NotANumber);
        };
        E164::parse(&format!("+{international}")).ok_or(NoNumber::NotANumber)
    }

    /// Whether an SMS can reach the number: a Danish mobile block, or any number in a
    /// foreign country listed in the config (whose mobile ranges we do not know).
    pub fn is_mobile(&self, n: &E164) -> bool {
        let d = n.digits();
        if let Some(national) = d.strip_prefix("45") {
            return national.len() == 8
                && (national.starts_with('2') || DK_MOBILE.contains(&&national[..2]));
        }
        self.foreign_mobile
            .iter()
            .any(|cc| d.starts_with(cc.as_str()))
    }
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
fn split_header(value: &str) -> impl Iterator<Item = &str> {
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
    parts.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dk() -> NumberPlan {
        NumberPlan::new("45", &["46".to_string()]).unwrap()
    }

    fn n(s: &str) -> E164 {
        E164::parse(s).unwrap()
    }

    #[test]
    fn from_header_forms() {
        let p = dk();
        let want = Ok(n("+4520123456"));
        assert_eq!(
            p.caller(
                None,
                "\"Anna\" <sip:+4520123456@host;user=phone>;tag=1",
                None
            ),
            want
        );
        assert_eq!(p.caller(None, "<tel:+4520123456>", None), want);
        assert_eq!(p.caller(None, "sip:20123456@host", None), want);
        assert_eq!(p.caller(None, "sip:20123456@host;tag=abc", None), want);
        assert_eq!(
            p.caller(None, "<sip:004520123456@10.0.0.1:5060>", None),
            want
        );
        assert_eq!(
            p.caller(None, "<sip:+45-20-12-34-56;npdi@host>", None),
            want
        );
        assert_eq!(p.caller(None, "<sips:4520123456@host>", None), want);
    }

    #[test]
    fn pai_wins_over_from() {
        let p = dk();
        assert_eq!(
            p.caller(
                Some("<sip:+4530000001@carrier>"),
                "<sip:+4520123456@pbx>",
                None
            ),
            Ok(n("+4530000001"))
        );
        // Several identities in PAI: the first that is a number.
        assert_eq!(
            p.caller(
                Some("\"A, B\" <sip:anna@carrier>, <tel:+4540000002>"),
                "<sip:1234@pbx>",
                None
            ),
            Ok(n("+4540000002"))
        );
        // A trusted network asserts the number behind an anonymous From.
        assert_eq!(
            p.caller(
                Some("<tel:+4520123456>"),
                "\"Anonymous\" <sip:anonymous@anonymous.invalid>",
                None
            ),
            Ok(n("+4520123456"))
        );
        // A useless PAI falls back to From.
        assert_eq!(
            p.caller(Some("<sip:reception@pbx>"), "<sip:+4520123456@pbx>", None),
            Ok(n("+4520123456"))
        );
    }

    #[test]
    fn withheld_and_anonymous() {
        let p = dk();
        let from = "<sip:+4520123456@host>";
        assert_eq!(p.caller(None, from, Some("id")), Err(NoNumber::Withheld));
        assert_eq!(
            p.caller(None, from, Some("header; ID")),
            Err(NoNumber::Withheld)
        );
        assert_eq!(p.caller(None, from, Some("none")), Ok(n("+4520123456")));
        assert_eq!(
            p.caller(None, "sip:anonymous@anonymous.invalid", None),
            Err(NoNumber::Anonymous)
        );
        assert_eq!(
            p.caller(None, "\"Anonymous\" <sip:+4520123456@host>", None),
            Err(NoNumber::Anonymous)
        );
        assert_eq!(
            p.caller(None, "<sip:Unknown@10.0.0.1>", None),
            Err(NoNumber::Anonymous)
        );
        assert_eq!(
            p.caller(None, "<sip:1234@pbx>", None),
            Err(NoNumber::NotANumber)
        );
        assert_eq!(p.caller(None, "garbage", None), Err(NoNumber::NotANumber));
        assert_eq!(
            p.caller(None, "<mailto:a@b>", None),
            Err(NoNumber::NotANumber)
        );
        assert_eq!(
            p.caller(None, "<sip:anna.s@host>", None),
            Err(NoNumber::NotANumber)
        );
    }

    #[test]
    fn normalization() {
        let p = dk();
        assert_eq!(p.normalize("20 12 34 56"), Ok(n("+4520123456")));
        assert_eq!(p.normalize("0045 20123456"), Ok(n("+4520123456")));
        assert_eq!(p.normalize("4520123456"), Ok(n("+4520123456")));
        assert_eq!(p.normalize("+46701234567"), Ok(n("+46701234567")));
        assert_eq!(p.normalize("0046701234567"), Ok(n("+46701234567")));
        assert_eq!(p.normalize("112"), Err(NoNumber::NotANumber));
        assert_eq!(p.normalize("+4520123456789012"), Err(NoNumber::NotANumber));
        // A country with a trunk prefix.
        let se = NumberPlan::new("46", &[]).unwrap();
        assert_eq!(se.normalize("070-123 45 67"), Ok(n("+46701234567")));
        assert!(NumberPlan::new("045", &[]).is_err());
        assert!(NumberPlan::new("45", &["x".into()]).is_err());
    }

    #[test]
    fn mobile_or_not() {
        let p = dk();
        for m in [
            "+4520123456",
            "+4529999999",
            "+4530123456",
            "+4542123456",
            "+4553123456",
            "+4561123456",
            "+4571123456",
            "+4581123456",
            "+4593123456",
        ] {
            assert!(p.is_mobile(&n(m)), "{m}");
        }
        // Landlines (Copenhagen 33, Aarhus 86), service numbers (70, 80) and foreign
        // countries not listed.
        for l in [
            "+4533123456",
            "+4586123456",
            "+4570123456",
            "+4580123456",
            "+4543123456",
            "+4912345678901",
        ] {
            assert!(!p.is_mobile(&n(l)), "{l}");
        }
        assert!(p.is_mobile(&n("+46701234567")));
    }

    #[test]
    fn redaction_hides_the_middle_everywhere() {
        let dk = n("+4520123456");
        assert_eq!(dk.redacted(), "+45 20 ** ** 56");
        assert_eq!(dk.to_string(), "+45 20 ** ** 56");
        assert_eq!(format!("{dk:?}"), "E164(+45 20 ** ** 56)");
        assert_eq!(n("+46701234567").redacted(), "+4670*****67");
        assert_eq!(dk.as_str(), "+4520123456");
    }
}
