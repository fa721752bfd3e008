//! Numbers said as words, read as digits: "tolv nul tre fem og fyrre" is 12 0 3 45.
//!
//! A caller who reads out a CPR or phone number may be transcribed in words, Danish
//! ("fem og fyrre", "femogfyrre": unit, "og", tens) or English ("forty five"). Redaction
//! needs the digits to see how long the number is; the text itself is left alone
//! unless the run turns out to be personal data ("to børn" stays "to børn").

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// A run of words and digit groups that reads as a number, with at least one word.
#[derive(Debug, PartialEq)]
pub struct SpokenRun {
    /// Byte range of the run in the text, from its first token to its last.
    pub span: Range<usize>,
    /// The run's numbers as digit groups, space-separated ("12 0 3 45 12 34").
    pub digits: String,
}

/// Words and digit groups; what lies between two tokens decides if a run goes on.
static TOKEN_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\p{L}\p{N}]+").expect("valid token pattern"));

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    /// 0–9.
    Unit(u8),
    /// 10–19, or a Danish "unit-og-tens" compound written as one word.
    Whole(u8),
    /// 20, 30, …, 90; English tens take the unit after them ("forty five"), Danish
    /// ones the unit before ("fem og fyrre").
    Tens(u8),
    EnglishTens(u8),
    /// "og" / "and": joins a unit and its tens ("fem og fyrre").
    And,
}

fn word(w: &str) -> Option<Token> {
    let w = w.to_lowercase();
    let units = [
        ("nul", 0),
        ("zero", 0),
        ("en", 1),
        ("et", 1),
        ("én", 1),
        ("ét", 1),
        ("one", 1),
        ("to", 2),
        ("two", 2),
        ("tre", 3),
        ("three", 3),
        ("fire", 4),
        ("four", 4),
        ("fem", 5),
        ("five", 5),
        ("seks", 6),
        ("six", 6),
        ("syv", 7),
        ("seven", 7),
        ("otte", 8),
        ("eight", 8),
        ("ni", 9),
        ("nine", 9),
    ];
    let teens = [
        ("ti", 10),
        ("ten", 10),
        ("elleve", 11),
        ("eleven", 11),
        ("tolv", 12),
        ("twelve", 12),
        ("tretten", 13),
        ("thirteen", 13),
        ("fjorten", 14),
        ("fourteen", 14),
        ("femten", 15),
        ("fifteen", 15),
        ("seksten", 16),
        ("sixteen", 16),
        ("sytten", 17),
        ("seventeen", 17),
        ("atten", 18),
        ("eighteen", 18),
        ("nitten", 19),
        ("nineteen", 19),
    ];
    let tens = [
        ("tyve", 20),
        ("twenty", 20),
        ("tredive", 30),
        ("tredve", 30),
        ("thirty", 30),
        ("fyrre", 40),
        ("fyrretyve", 40),
        ("forty", 40),
        ("halvtreds", 50),
        ("fifty", 50),
        ("tres", 60),
        ("sixty", 60),
        ("halvfjerds", 70),
        ("seventy", 70),
        ("firs", 80),
        ("eighty", 80),
        ("halvfems", 90),
        ("ninety", 90),
    ];
    let find = |table: &[(&str, u8)], w: &str| table.iter().find(|(k, _)| *k == w).map(|e| e.1);
    if let Some(u) = find(&units, &w) {
        return Some(Token::Unit(u));
    }
    if let Some(t) = find(&teens, &w) {
        return Some(Token::Whole(t));
    }
    if let Some(t) = find(&tens, &w) {
        // Every English tens word ends in -y, no Danish one does.
        let english = w.ends_with('y');
        return Some(if english {
            Token::EnglishTens(t)
        } else {
            Token::Tens(t)
        });
    }
    if w == "og" || w == "and" {
        return Some(Token::And);
    }
    // "femogfyrre": unit, "og", tens in one word.
    let (unit, tens_word) = w.split_once("og")?;
    match (find(&units, unit), find(&tens, tens_word)) {
        (Some(u), Some(t)) if u > 0 => Some(Token::Whole(t + u)),
        _ => None,
    }
}

/// Whether the text between two tokens lets a run of numbers go on.
fn joins(gap: &str) -> bool {
    gap.chars()
        .all(|c| c.is_whitespace() || matches!(c, ',' | '-' | '–' | '—' | '/' | '.'))
}

/// The runs of numbers in `text` that have at least one number word in them.
pub fn spoken_runs(text: &str) -> Vec<SpokenRun> {
    let mut runs = Vec::new();
    // Tokens of the current run: (span, digits or word).
    let mut current: Vec<(Range<usize>, Result<&str, Token>)> = Vec::new();
    let mut last_end = 0;
    for m in TOKEN_RE.find_iter(text) {
        let tok = m.as_str();
        let kind = if tok.bytes().all(|b| b.is_ascii_digit()) {
            Some(Ok(tok))
        } else {
            word(tok).map(Err)
        };
        if !current.is_empty() && (kind.is_none() || !joins(&text[last_end..m.start()])) {
            runs.extend(finish(&mut current));
        }
        if let Some(kind) = kind {
            current.push((m.range(), kind));
        }
        last_end = m.end();
    }
    runs.extend(finish(&mut current));
    runs
}

/// Reads a run's tokens as digit groups; a run made of digits only is not returned
/// (the digit patterns see it), nor one without any number in it.
fn finish(tokens: &mut Vec<(Range<usize>, Result<&str, Token>)>) -> Option<SpokenRun> {
    let tokens = std::mem::take(tokens);
    // A trailing or leading "og" is just a word.
    let first = tokens.iter().position(|(_, k)| *k != Err(Token::And))?;
    let last = tokens.iter().rposition(|(_, k)| *k != Err(Token::And))?;
    let tokens = &tokens[first..=last];
    if tokens.iter().all(|(_, k)| k.is_ok()) {
        return None;
    }
    let mut groups: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let next = |k: usize| tokens.get(i + k).map(|(_, t)| *t);
        match tokens[i].1 {
            Ok(d) => groups.push(d.to_string()),
            // "fem og fyrre" → 45
            Err(Token::Unit(u)) if u > 0 && next(1) == Some(Err(Token::And)) => {
                if let Some(Err(Token::Tens(t))) = next(2) {
                    groups.push((t + u).to_string());
                    i += 3;
                    continue;
                }
                groups.push(u.to_string());
            }
            // "forty five" → 45
            Err(Token::EnglishTens(t)) => match next(1) {
                Some(Err(Token::Unit(u))) if u > 0 => {
                    groups.push((t + u).to_string());
                    i += 1;
                }
                _ => groups.push(t.to_string()),
            },
            Err(Token::Unit(u) | Token::Whole(u) | Token::Tens(u)) => groups.push(u.to_string()),
            Err(Token::And) => {}
        }
        i += 1;
    }
    Some(SpokenRun {
        span: tokens[0].0.start..tokens[tokens.len() - 1].0.end,
        digits: groups.join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(text: &str) -> Vec<String> {
        spoken_runs(text).into_iter().map(|r| r.digits).collect()
    }

    #[test]
    fn danish_number_words_become_digit_groups() {
        assert_eq!(
            digits("tolv nul tre fem og fyrre tolv fire og tredive"),
            ["12 0 3 45 12 34"]
        );
        assert_eq!(
            digits("det er tolv nul tre femogfyrre, et to tre fire tak"),
            ["12 0 3 45 1 2 3 4"]
        );
        assert_eq!(digits("halvfems tres syv"), ["90 60 7"]);
    }

    #[test]
    fn english_number_words_become_digit_groups() {
        assert_eq!(
            digits("one two zero three four five, one two three four"),
            ["1 2 0 3 4 5 1 2 3 4"]
        );
        assert_eq!(digits("twelve oh three forty five"), ["12", "3 45"]);
    }

    #[test]
    fn the_run_spans_its_words_and_digits_only() {
        let text = "mit nummer er tolv 03 45 12 34, tak.";
        let runs = spoken_runs(text);
        assert_eq!(runs.len(), 1);
        assert_eq!(&text[runs[0].span.clone()], "tolv 03 45 12 34");
        assert_eq!(runs[0].digits, "12 03 45 12 34");
    }

    #[test]
    fn digits_alone_and_stray_og_are_not_runs() {
        assert!(spoken_runs("ring 12 34 56 78").is_empty());
        assert!(spoken_runs("og så videre og").is_empty());
        assert_eq!(digits("to og tre"), ["2 3"]);
    }
}
