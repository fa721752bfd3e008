//! What sends a caller to a person whatever they asked: anger, and sensitive data.
//!
//! A caller who swears at the bot or says they are fed up will not be helped by another
//! recorded answer; a caller who says their CPR number is about to discuss their own
//! case, which the bot cannot see. Both are transferred at once (`matcher`).

use crate::privacy;

/// Words and phrases of anger or frustration, in canonical spelling (see `normalize`:
/// æ = ae, ø = oe, å = aa, no apostrophes). Checked in every language: Danish callers
/// swear in English too.
const FRUSTRATION: &[&str] = &[
    // Danish
    "for helvede",
    "helvedes",
    "fandme",
    "fanme",
    "for fanden",
    "fanden",
    "satans",
    "kraftedeme",
    "hold kaeft",
    "pis",
    "lort",
    "idiot",
    "idioter",
    "idiotisk",
    "latterligt",
    "latterlig",
    "elendig",
    "elendigt",
    "taabelig",
    "taabeligt",
    "vred",
    "rasende",
    "gal i skralden",
    "traet af",
    "dybt frustreret",
    "frustreret",
    "frustrerende",
    "uacceptabelt",
    "skandale",
    "skandaloest",
    "tredje gang jeg ringer",
    "ringet flere gange",
    // English
    "damn",
    "dammit",
    "goddamn",
    "bloody",
    "shit",
    "crap",
    "fuck",
    "fucking",
    "stupid",
    "useless",
    "ridiculous",
    "idiots",
    "angry",
    "furious",
    "fed up",
    "sick of",
    "sick and tired",
    "pissed off",
    "waste of time",
    "nonsense",
    "pathetic",
    "hopeless",
    "unacceptable",
    "frustrated",
    "frustrating",
    "third time i have called",
    "third time ive called",
];

/// Prefixes that make any word an expression of anger ("lortesystem", "pissedårligt",
/// "møgkommune", "fucking").
const FRUSTRATION_PREFIXES: &[&str] = &["lorte", "pisse", "moeg", "fuck", "shit", "idiot"];

/// Whether the canonical words of a turn express anger or frustration.
pub fn frustrated(words: &[String]) -> bool {
    if words
        .iter()
        .any(|w| FRUSTRATION_PREFIXES.iter().any(|p| w.starts_with(p)))
    {
        return true;
    }
    FRUSTRATION.iter().any(|phrase| {
        let phrase: Vec<&str> = phrase.split(' ').collect();
        words
            .windows(phrase.len())
            .any(|win| win.iter().zip(&phrase).all(|(w, p)| w == p))
    })
}

/// Whether a turn carries a CPR number (said or already redacted).
pub fn sensitive(text: &str) -> bool {
    privacy::mentions_cpr(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::normalize::words;

    #[test]
    fn anger_is_heard_in_both_languages() {
        for said in [
            "det er fandme for dårligt",
            "jeg er så træt af jer",
            "det her lortesystem virker ikke",
            "I'm fed up with this",
            "this is bloody useless",
            "hold kæft en møgkommune",
        ] {
            assert!(frustrated(&words(said)), "{said}");
        }
    }

    #[test]
    fn ordinary_turns_are_not_angry() {
        for said in [
            "hvornår bliver mit affald hentet",
            "jeg er bekymret for min mor",
            "my pension is late",
            "I'm sick and need sickness benefit",
            "jeg har pisket fløde",
            "hvad koster et pas",
        ] {
            assert!(!frustrated(&words(said)), "{said}");
        }
    }

    #[test]
    fn cpr_numbers_are_sensitive() {
        assert!(sensitive("mit cpr er 120345-1234"));
        assert!(sensitive("mit cpr er [CPR]"));
        assert!(!sensitive("hvad er et cpr-nummer"));
    }
}
