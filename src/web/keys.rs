//! What the page sends on the data channel: its buttons (the keys a phone would
//! press: 0 for a person, 1 for yes) and hang-up. Anything else is refused with a
//! reason the log can show.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromPage {
    Key(char),
    HangUp,
}

/// Longest message we read; the page's are a few dozen bytes.
const MAX_MESSAGE: usize = 256;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Message {
    Key { digit: String },
    Hangup,
}

pub fn parse(data: &[u8]) -> Result<FromPage, String> {
    if data.len() > MAX_MESSAGE {
        return Err(format!("message of {} bytes", data.len()));
    }
    match serde_json::from_slice::<Message>(data).map_err(|e| e.to_string())? {
        Message::Hangup => Ok(FromPage::HangUp),
        Message::Key { digit } => {
            let mut chars = digit.chars();
            match (chars.next(), chars.next()) {
                (Some(d @ ('0'..='9' | '*' | '#')), None) => Ok(FromPage::Key(d)),
                _ => Err(format!("not a key: {digit:?}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_and_hang_up_parse_and_anything_else_is_refused() {
        assert_eq!(
            parse(br#"{"type":"key","digit":"0"}"#),
            Ok(FromPage::Key('0'))
        );
        assert_eq!(
            parse(br##"{"type":"key","digit":"#"}"##),
            Ok(FromPage::Key('#'))
        );
        assert_eq!(parse(br#"{"type":"hangup"}"#), Ok(FromPage::HangUp));
        for bad in [
            &br#"{"type":"key","digit":"12"}"#[..],
            br#"{"type":"key","digit":"a"}"#,
            br#"{"type":"key"}"#,
            br#"{"type":"dial","to":"+4512345678"}"#,
            b"not json",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse(&[b' '; 300]).unwrap_err().contains("300 bytes"));
    }
}
