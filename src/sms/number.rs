//! The caller's number, as an SMS can be sent to it: E.164, from the identity
//! `sip::identity` lets us believe (a trusted peer's P-Asserted-Identity, or From where
//! configured). A caller without one gets no SMS offer, and neither does a landline: a
//! link read out by an SMS voice service is of no use. The full number is needed to send, but it is personal
//! data: [`E164`]'s `Display` and `Debug` print only the [`E164::redacted`] form, so
//! logging a number by accident cannot leak it.

use std::fmt;

use crate::sip::identity::Identity;

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

/// The caller's identity is not a phone number (an extension, a name, garbage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("caller's identity is not a phone number")]
pub struct NotANumber;

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

    /// The caller's number: the first of its identities that is one.
    pub fn number(&self, identity: &Identity) -> Result<E164, NotANumber> {
        identity
            .users()
            .find_map(|u| self.normalize(u).ok())
            .ok_or(NotANumber)
    }

    /// A dialled or presented number (separators allowed) to E.164. Accepted forms:
    /// `+CC…`, `00CC…`, a national number with trunk prefix `0`, the eight-digit Danish
    /// national number (no trunk prefix in Denmark), and `CC…` with the `+` lost by a
    /// PBX. Shorter numbers are extensions, not something an SMS can reach.
    pub fn normalize(&self, raw: &str) -> Result<E164, NotANumber> {
        let plus = raw.trim_start().starts_with('+');
        let mut digits = String::with_capacity(raw.len());
        for c in raw.chars() {
            match c {
                '0'..='9' => digits.push(c),
                '+' | '-' | '.' | ' ' | '(' | ')' => {}
                _ => return Err(NotANumber),
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
            return Err(NotANumber);
        };
        E164::parse(&format!("+{international}")).ok_or(NotANumber)
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
    fn the_first_identity_that_is_a_number() {
        use crate::sip::identity::{from_headers, Trust};
        let trusted = Trust {
            peer: true,
            from: false,
        };
        let id = from_headers(
            &["\"A, B\" <sip:anna@carrier>, <tel:+4540000002>"],
            None,
            &[],
            trusted,
        )
        .unwrap();
        assert_eq!(dk().number(&id), Ok(n("+4540000002")));
        let id = from_headers(&["<sip:1234@pbx>"], None, &[], trusted).unwrap();
        assert_eq!(dk().number(&id), Err(NotANumber));
        let id = from_headers(&["<sip:004520123456@10.0.0.1:5060>"], None, &[], trusted).unwrap();
        assert_eq!(dk().number(&id), Ok(n("+4520123456")));
    }

    #[test]
    fn normalization() {
        let p = dk();
        assert_eq!(p.normalize("20 12 34 56"), Ok(n("+4520123456")));
        assert_eq!(p.normalize("0045 20123456"), Ok(n("+4520123456")));
        assert_eq!(p.normalize("4520123456"), Ok(n("+4520123456")));
        assert_eq!(p.normalize("+46701234567"), Ok(n("+46701234567")));
        assert_eq!(p.normalize("0046701234567"), Ok(n("+46701234567")));
        assert_eq!(p.normalize("112"), Err(NotANumber));
        assert_eq!(p.normalize("+4520123456789012"), Err(NotANumber));
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
