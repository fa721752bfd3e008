//! The called number as a tenant is looked up by. Carriers write the same Danish line
//! as `+4570000001`, `004570000001`, `4570000001` or `70 00 00 01`; the config may
//! use any of them too, so both sides are brought to one form before they meet.

/// `number` in one comparable form: a Danish number as its 8 national digits, another
/// country's as `+` and its digits, and a SIP user that is not a number (`bot`,
/// `kommune-a`) lowercased as it is.
pub fn normalise(number: &str) -> String {
    let squeezed: String = number
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '(' | ')'))
        .collect();
    let is_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let international = if let Some(rest) = squeezed.strip_prefix('+') {
        Some(rest)
    } else if let Some(rest) = squeezed.strip_prefix("00") {
        Some(rest)
    } else if squeezed.len() == 10 && squeezed.starts_with("45") {
        // Some trunks send the country code without + or 00.
        Some(squeezed.as_str())
    } else {
        None
    };
    match international {
        Some(digits) if is_digits(digits) => match digits.strip_prefix("45") {
            Some(national) if is_digits(national) => national.to_string(),
            _ => format!("+{digits}"),
        },
        _ if is_digits(&squeezed) => squeezed,
        _ => number.trim().to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn every_way_of_writing_a_danish_line_is_the_same() {
        for written in [
            "70000001",
            "+4570000001",
            "004570000001",
            "4570000001",
            "70 00 00 01",
            "+45 70 00 00 01",
            "0045-7000-0001",
        ] {
            assert_eq!(normalise(written), "70000001", "{written}");
        }
    }

    #[test]
    fn foreign_numbers_and_names_keep_their_identity() {
        assert_eq!(normalise("+46 8 123 456"), "+468123456");
        assert_eq!(normalise("00468123456"), "+468123456");
        assert_eq!(normalise("Bot"), "bot");
        assert_eq!(normalise(" kommune-a "), "kommune-a");
        // A short service number is not mistaken for a country code.
        assert_eq!(normalise("4510"), "4510");
    }
}
