//! Text from the network on its way into a header we send.
//!
//! A caller's Call-ID, an SDP's codec name, a header echoed in an error response: each
//! is the caller's writing, and a CR, LF or NUL in it would end our header early and
//! let the caller write headers (or a body) of its own into our message. So every such
//! value passes through [`sanitize`]: control characters are dropped and the length
//! is cut on a character boundary (never inside a UTF-8 sequence, which would panic).

/// `value` without control characters (CR, LF, NUL, ...), at most `max_bytes` long.
pub fn sanitize(value: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max_bytes));
    for c in value.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max_bytes {
            break;
        }
        out.push(c);
    }
    out
}

/// The longest prefix of `s` of at most `max_bytes` that ends on a character boundary.
pub fn cut(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_pass() {
        let evil = "abc\r\nX-Evil: 1\r\n\r\nbody\0\u{7f}\u{85}";
        let clean = sanitize(evil, 100);
        assert_eq!(clean, "abcX-Evil: 1body");
        assert!(!clean.contains(['\r', '\n', '\0']));
        assert_eq!(sanitize("a\rb", 100), "ab", "a bare CR too");
    }

    #[test]
    fn lengths_are_cut_on_character_boundaries() {
        assert_eq!(sanitize("æøå", 5), "æø");
        assert_eq!(sanitize("æøå", 1), "");
        assert_eq!(sanitize("abc", 3), "abc");
        assert_eq!(cut("æøå", 5), "æø");
        assert_eq!(cut("æøå", 6), "æøå");
        assert_eq!(cut("a", 0), "");
    }
}
