//! Redaction of callers' personal data from transcripts.
//!
//! A caller may say their CPR number, phone number or e-mail address to the bot. Those
//! must not leave the gateway (the intent service may be a third party's) nor be stored
//! in call records, so both paths pass transcripts through [`redact`] first. It is
//! deliberately greedy: a number that merely looks like a CPR or phone number is
//! replaced too, because a false positive costs a little understanding and a false
//! negative leaks personal data.
//!
//! Speech recognition writes numbers in many ways: "120345-1234", "120345 1234",
//! "12 03 45 12 34", "12.03.45-1234", "120345/1234", one digit at a time ("1 2 0 3 4 5
//! 1 2 3 4"), or in words ("tolv nul tre fem og fyrre …", read by [`numbers`]). So
//! digits are read as runs of digit groups joined by spaces, hyphens or dashes,
//! slashes or ", " (and dots between groups of one or two digits, as in "20.12.34.56",
//! not in "12.500.000"), and a run is classified by how many digits it has, not by how
//! it was written. A date ("12-03-2026") is not personal data.

mod numbers;

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Replaces a CPR number (Danish personal identity number).
pub const CPR: &str = "[CPR]";
/// Replaces a phone number.
pub const PHONE: &str = "[TELEFON]";
/// Replaces an e-mail address.
pub const EMAIL: &str = "[EMAIL]";

/// A written address ("a.b@example.org") or one as speech recognition writes a spoken
/// address ("peter snabel a example punktum dk", "peter at example dot com").
static EMAIL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)
        [\p{L}\p{N}._%+\-]+ @ [\p{L}\p{N}\-]+ (?: \.[\p{L}\p{N}\-]+ )+
        |
        [\p{L}\p{N}._\-]+ \s+ (?: snabel[\s\-]?a | at ) \s+ [\p{L}\p{N}\-]+
        (?: \s* (?: \. | \bpunktum\b | \bdot\b ) \s* [\p{L}\p{N}\-]+ )+
        ",
    )
    .expect("valid e-mail pattern")
});

/// A run of digit groups, optionally after "+". Separators: whitespace, a hyphen, en or
/// em dash or slash with optional spaces, or a comma and a space (ASR's way of writing
/// spoken pairs). A group is digits, or one- and two-digit groups joined by dots.
static DIGITS_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?:\+\s*)? GROUP (?: (?: \s*[-–—/]\s* | \s+ | ,\s+ ) GROUP )*"
            .replace("GROUP", r"(?:\d{1,2}(?:\.\d{1,2})+\b|\d+)")
            .as_str(),
    )
    .expect("valid digit-run pattern")
});

/// Returns `text` with CPR numbers, phone numbers and e-mail addresses replaced by
/// [`CPR`], [`PHONE`] and [`EMAIL`]. Idempotent: the placeholders contain no digits.
pub fn redact(text: &str) -> String {
    let mut text = EMAIL_RE.replace_all(text, EMAIL).into_owned();
    // Numbers in words first, from the end so earlier spans stay valid.
    for run in numbers::spoken_runs(&text).into_iter().rev() {
        if let Some(placeholder) = classify(&run.digits) {
            text.replace_range(run.span, placeholder);
        }
    }
    DIGITS_RE
        .replace_all(&text, |c: &Captures| {
            let run = &c[0];
            classify(run).map_or_else(|| run.to_string(), str::to_string)
        })
        .into_owned()
}

/// What a run of digits is, if it is personal data.
fn classify(run: &str) -> Option<&'static str> {
    let plus = run.starts_with('+');
    let digits: String = run.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len();
    if is_date(run) {
        return None;
    }
    if (plus && digits.starts_with("45") && n == 10) || (digits.starts_with("0045") && n == 12) {
        return Some(PHONE);
    }
    match n {
        0..=7 => None,
        8 | 9 => Some(PHONE),
        // No CPR number starts with day 45, but "45" + eight digits is a phone number
        // said with the country code.
        10 if digits.starts_with("45") => Some(PHONE),
        _ => Some(CPR),
    }
}

/// "12-03-2026", "1/3/2026": day, month and a year of this or the last century.
fn is_date(run: &str) -> bool {
    let groups: Vec<&str> = run
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    let num = |g: &str| g.parse::<u32>().unwrap_or(0);
    matches!(groups[..], [d, m, y]
        if d.len() <= 2 && m.len() <= 2 && (1..=31).contains(&num(d)) && (1..=12).contains(&num(m))
            && y.len() == 4 && (y.starts_with("19") || y.starts_with("20")))
}

/// Whether `text` (redacted or not) carries a CPR number.
pub fn mentions_cpr(text: &str) -> bool {
    redact(text).contains(CPR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpr_numbers_in_every_written_form() {
        for said in [
            "mit cpr-nummer er 120345-1234",
            "mit cpr-nummer er 1203451234",
            "mit cpr-nummer er 120345 1234",
            "mit cpr-nummer er 12 03 45 12 34",
            "mit cpr-nummer er 12 03 45 - 12 34",
            "mit cpr-nummer er 1 2 0 3 4 5 1 2 3 4",
            "mit cpr-nummer er 1 2 0 3 4 5 - 1 2 3 4",
            "mit cpr-nummer er 12, 03, 45, 12, 34",
            "mit cpr-nummer er 12.03.45-1234",
            "mit cpr-nummer er 120345/1234",
            "mit cpr-nummer er 120345–1234",
            "mit cpr-nummer er 120345 — 1234",
            "mit cpr-nummer er tolv nul tre fem og fyrre tolv fire og tredive",
            "mit cpr-nummer er tolv nul tre femogfyrre et to tre fire",
            "mit cpr-nummer er 12 03 45 tolv fireogtredive",
            "mit cpr-nummer er en to nul tre fire fem en to tre fire",
        ] {
            assert_eq!(redact(said), "mit cpr-nummer er [CPR]", "{said}");
        }
    }

    #[test]
    fn cpr_inside_a_sentence_keeps_the_rest() {
        assert_eq!(
            redact("Ja det er 010203-4455, og jeg ringer om min boligstøtte."),
            "Ja det er [CPR], og jeg ringer om min boligstøtte."
        );
    }

    #[test]
    fn phone_numbers() {
        for said in [
            "ring til 12345678",
            "ring til 12 34 56 78",
            "ring til 1 2 3 4 5 6 7 8",
            "ring til +45 12 34 56 78",
            "ring til +4512345678",
            "ring til 0045 12345678",
            "ring til 45 12 34 56 78",
            "ring til 12-34-56-78",
            "ring til 20.12.34.56",
            "ring til tyve tolv fireogtredive seksoghalvtreds",
            "ring til twenty twelve thirty four fifty six",
        ] {
            assert_eq!(redact(said), "ring til [TELEFON]", "{said}");
        }
    }

    #[test]
    fn emails_written_and_spoken() {
        assert_eq!(
            redact("skriv til anna.b@example.org tak"),
            "skriv til [EMAIL] tak"
        );
        assert_eq!(
            redact("det er Anna snabel-a example punktum dk"),
            "det er [EMAIL]"
        );
        assert_eq!(
            redact("det er anna snabel a mail punktum example punktum dk ok"),
            "det er [EMAIL] ok"
        );
        assert_eq!(redact("it's john at example dot com"), "it's [EMAIL]");
    }

    #[test]
    fn ordinary_numbers_are_kept() {
        for said in [
            "jeg bor på Birkevej 12",
            "hvad koster et pas i 2026",
            "åbner I klokken 8 eller 9",
            "jeg har 2 børn på 3 og 5 år",
            "den 12.03.2026",
            "I'm at home",
            "bus 150S kl. 14",
            "den 12-03-2026 eller 1/3/2026",
            "det koster 12.500.000 kr",
            "jeg har to børn på tre og fem år",
            "en to tre fire",
            "klokken 14.30",
        ] {
            assert_eq!(redact(said), said);
        }
    }

    #[test]
    fn redaction_is_idempotent_and_detects_cpr() {
        let once = redact("cpr 120345-1234, tlf 12 34 56 78, mail a@b.dk");
        assert_eq!(once, "cpr [CPR], tlf [TELEFON], mail [EMAIL]");
        assert_eq!(redact(&once), once);
        assert!(mentions_cpr("120345-1234"));
        assert!(mentions_cpr(&once));
        assert!(!mentions_cpr("tlf 12 34 56 78"));
    }

    #[test]
    fn spoken_cpr_in_english_words() {
        assert_eq!(
            redact("my CPR number is one two zero three four five, one two three four."),
            "my CPR number is [CPR]."
        );
    }
}
