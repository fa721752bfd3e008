//! Cutting strings to a byte budget without splitting a character.
//!
//! Strings from the network (Call-IDs, header values, transcripts) are UTF-8 of any
//! shape: `String::truncate` or `&s[..n]` at a byte count panics inside a multi-byte
//! character ("é" is two bytes). Every cut of such a string goes through here.

/// The longest prefix of `s` that is at most `max_bytes` long and ends on a character
/// boundary.
pub fn prefix(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Shortens `s` in place to at most `max_bytes`, on a character boundary.
pub fn truncate(s: &mut String, max_bytes: usize) {
    let keep = prefix(s, max_bytes).len();
    s.truncate(keep);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_inside_a_multibyte_character_backs_off_to_its_start() {
        let s = format!("a{}", "é".repeat(100));
        // Byte 128 is the second byte of an "é" (1 + 2k is always a start).
        assert!(!s.is_char_boundary(128));
        assert_eq!(prefix(&s, 128), format!("a{}", "é".repeat(63)));
        let mut owned = s.clone();
        truncate(&mut owned, 128);
        assert_eq!(owned.len(), 127);
        assert!(owned.ends_with('é'));
    }

    #[test]
    fn short_strings_and_exact_boundaries_are_left_alone() {
        assert_eq!(prefix("abc", 10), "abc");
        assert_eq!(prefix("abc", 3), "abc");
        assert_eq!(prefix("abc", 0), "");
        assert_eq!(prefix("øre", 2), "ø");
        assert_eq!(prefix("😀x", 3), "");
        assert_eq!(prefix("😀x", 4), "😀");
    }
}
