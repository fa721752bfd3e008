//! Which language a call's first turn is spoken in. Whisper's language tokens decide
//! when they are clear. Below that lies a grey zone where English in a synthetic or
//! accented voice on a Danish line falls (and a little Danish): there the turn is also
//! transcribed in the other language, and whisper's confidence in each transcript
//! decides.

/// Log-odds of the other language over the line's above which a turn is taken as
/// spoken in it. Whisper base leans to English on anything unclear: espeak-ng Danish
/// reached 8.95 on the fixtures, English in the Piper voice on a Danish line fell below
/// 9.5 for 2 of 103 questions, in espeak-ng voices for 36 of 103.
pub const SWITCH_LOG_ODDS: f32 = 9.5;

/// From here up to `SWITCH_LOG_ODDS` the check is in doubt (7 of 394 Danish turns, 34 of
/// the 36 espeak-ng English ones above).
pub const DOUBT_LOG_ODDS: f32 = 7.0;

/// In doubt, the other language wins when whisper is surer of its transcript by this
/// much (mean token probability). On the tune halves, Danish turns in doubt were at most
/// 0.05 surer in English (with three words or more); English ones mostly 0.16–0.54.
pub const SURER_BY: f32 = 0.1;

/// ... and that transcript has this many words: whisper can be sure of short nonsense in
/// either language ("Type,", "Piedem bien." for Danish words).
pub const MIN_WORDS: usize = 3;

/// What the language tokens say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The line's language.
    Line,
    /// The other language: transcribe the turn in it.
    Other,
    /// Unclear: transcribe it in the other language too, and compare (`other_wins`).
    Doubt,
}

/// The check for `odds` = ln(P(other language) / P(line's language)).
pub fn by_odds(odds: f32) -> Check {
    if odds > SWITCH_LOG_ODDS {
        Check::Other
    } else if odds > DOUBT_LOG_ODDS {
        Check::Doubt
    } else {
        Check::Line
    }
}

/// In doubt: whether the transcript in the other language (`other`, with whisper's
/// mean token probability) is what the caller said, rather than the line language's
/// (`line_confidence`).
pub fn other_wins(line_confidence: f32, other: &str, other_confidence: f32) -> bool {
    other.split_whitespace().count() >= MIN_WORDS && other_confidence - line_confidence >= SURER_BY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_odds_decide_alone_and_the_grey_zone_is_in_doubt() {
        assert_eq!(by_odds(10.8), Check::Other);
        assert_eq!(by_odds(9.5), Check::Doubt);
        assert_eq!(by_odds(8.74), Check::Doubt);
        assert_eq!(by_odds(7.0), Check::Line);
        assert_eq!(by_odds(-2.0), Check::Line);
    }

    #[test]
    fn in_doubt_the_surer_sentence_wins() {
        // espeak-ng English on a Danish line (odds 9.12): garbled Danish at 0.31, the
        // English "I can't remember the password for my MitID app" at 0.93.
        assert!(other_wins(
            0.31,
            "I can't remember the password for my MitID app.",
            0.93
        ));
        // Danish in doubt (odds 7.40): garbled either way, English barely surer.
        assert!(!other_wins(
            0.34,
            "Can men I move before I move more more used to",
            0.39
        ));
        // Whisper sure of two English-sounding words for a Danish answer (odds 8.91).
        assert!(!other_wins(0.21, "Piedem bien.", 0.81));
    }
}
