//! SMS text to the bytes of one or more `submit_sm`s.
//!
//! GSM-7 (the GSM 03.38 default alphabet, which has æøåÆØÅ, plus its extension table)
//! gives 160 characters per message; anything outside it (an emoji, a Polish ł) forces
//! UCS-2 for the whole message and 70 characters. Longer texts are split into parts,
//! each carrying a 6-byte user data header (IEI 0x00: 8-bit reference, total, sequence)
//! that the phone reassembles by, leaving 153 septets or 67 UTF-16 units per part.
//!
//! GSM-7 is handed to the SMSC unpacked, one septet per byte with data_coding 0x00, as
//! SMPP SMSCs expect; the SMSC packs it for the air. UCS-2 is UTF-16 big-endian
//! (data_coding 0x08): emoji are surrogate pairs, which every phone shows, and a pair is
//! never split across parts, nor an extension character from its escape.

/// The GSM 03.38 default alphabet by code; 0x1B is the escape to the extension table
/// and never matches a character.
const GSM7: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

const ESC: u8 = 0x1b;

/// The extension table: character and its code after ESC.
const GSM7_EXT: [(char, u8); 10] = [
    ('\u{c}', 0x0a),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2f),
    ('[', 0x3c),
    ('~', 0x3d),
    (']', 0x3e),
    ('|', 0x40),
    ('€', 0x65),
];

/// The most parts the 8-bit sequence number can count.
const MAX_PARTS: usize = 255;
const UDH_LEN: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gsm7,
    Ucs2,
}

impl Coding {
    /// SMPP `data_coding`: SMSC default alphabet (GSM-7), or UCS-2.
    pub fn data_coding(self) -> u8 {
        match self {
            Coding::Gsm7 => 0x00,
            Coding::Ucs2 => 0x08,
        }
    }

    /// Units (septets or UTF-16 units) in a message of one part, and per part of many.
    fn limits(self) -> (usize, usize) {
        match self {
            Coding::Gsm7 => (160, 153),
            Coding::Ucs2 => (70, 67),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodingError {
    #[error("text needs {parts} SMS parts; at most {MAX_PARTS} can be joined")]
    TooLong { parts: usize },
    #[error("text is empty")]
    Empty,
}

/// A text ready for `submit_sm`: one `short_message` per part, UDH included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub coding: Coding,
    pub parts: Vec<Vec<u8>>,
}

impl Encoded {
    /// SMPP `esm_class`: the UDHI bit (0x40) when the parts carry a header.
    pub fn esm_class(&self) -> u8 {
        if self.parts.len() > 1 {
            0x40
        } else {
            0x00
        }
    }
}

/// Encodes `text`; `reference` ties the parts of one message together on the phone
/// (the outbox passes the same one on every attempt, so resent parts match).
pub fn encode(text: &str, reference: u8) -> Result<Encoded, EncodingError> {
    if text.is_empty() {
        return Err(EncodingError::Empty);
    }
    // Each character becomes an indivisible unit: 1–2 septets, or 1–2 UTF-16 units.
    let (coding, chars): (Coding, Vec<Vec<u8>>) = match gsm7_units(text) {
        Some(units) => (Coding::Gsm7, units),
        None => (
            Coding::Ucs2,
            text.chars()
                .map(|c| {
                    let mut buf = [0u16; 2];
                    c.encode_utf16(&mut buf)
                        .iter()
                        .flat_map(|u| u.to_be_bytes())
                        .collect()
                })
                .collect(),
        ),
    };
    // Units are septets (one byte each) or UTF-16 units (two bytes each).
    let unit_bytes = if coding == Coding::Gsm7 { 1 } else { 2 };
    let total: usize = chars.iter().map(Vec::len).sum::<usize>() / unit_bytes;
    let (single, per_part) = coding.limits();
    if total <= single {
        return Ok(Encoded {
            coding,
            parts: vec![chars.concat()],
        });
    }
    let mut bodies: Vec<Vec<u8>> = vec![Vec::new()];
    for c in chars {
        let last = bodies.last_mut().expect("never empty");
        if (last.len() + c.len()) / unit_bytes > per_part {
            bodies.push(c);
        } else {
            last.extend_from_slice(&c);
        }
    }
    let n = bodies.len();
    if n > MAX_PARTS {
        return Err(EncodingError::TooLong { parts: n });
    }
    let parts = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut part = Vec::with_capacity(UDH_LEN + body.len());
            part.extend_from_slice(&[0x05, 0x00, 0x03, reference, n as u8, (i + 1) as u8]);
            part.extend_from_slice(&body);
            part
        })
        .collect();
    Ok(Encoded { coding, parts })
}

/// Each character's septets, or `None` if one is outside GSM-7.
fn gsm7_units(text: &str) -> Option<Vec<Vec<u8>>> {
    text.chars()
        .map(|c| {
            if c == '\u{1b}' {
                return None;
            }
            if let Some(code) = GSM7.iter().position(|&g| g == c) {
                return Some(vec![code as u8]);
            }
            GSM7_EXT
                .iter()
                .find(|(e, _)| *e == c)
                .map(|&(_, code)| vec![ESC, code])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udh(part: &[u8]) -> (u8, u8, u8) {
        assert_eq!(&part[..3], &[0x05, 0x00, 0x03]);
        (part[3], part[4], part[5])
    }

    #[test]
    fn danish_letters_stay_gsm7_in_one_part() {
        let e = encode("Æbler, øl og Åen: æøå ÆØÅ", 1).unwrap();
        assert_eq!(e.coding, Coding::Gsm7);
        assert_eq!(e.parts.len(), 1);
        assert_eq!(e.esm_class(), 0);
        assert_eq!(e.coding.data_coding(), 0);
        assert_eq!(&e.parts[0][..3], &[0x1c, 0x62, 0x6c]); // Æ b l
        assert!(e.parts[0].contains(&0x0c) && e.parts[0].contains(&0x0e)); // ø Å
    }

    #[test]
    fn exactly_160_septets_is_one_part_161_is_two() {
        assert_eq!(encode(&"a".repeat(160), 0).unwrap().parts.len(), 1);
        let e = encode(&"a".repeat(161), 9).unwrap();
        assert_eq!(e.parts.len(), 2);
        assert_eq!(e.esm_class(), 0x40);
        assert_eq!(e.parts[0].len(), 6 + 153);
        assert_eq!(udh(&e.parts[1]), (9, 2, 2));
    }

    #[test]
    fn extension_characters_count_two_and_stay_whole() {
        // 80 euro signs = 160 septets: one part.
        let e = encode(&"€".repeat(80), 0).unwrap();
        assert_eq!((e.coding, e.parts.len()), (Coding::Gsm7, 1));
        assert_eq!(&e.parts[0][..2], &[ESC, 0x65]);
        // 152 letters then a euro sign: the sign (2 septets) cannot fit in 153.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let e = encode(&text, 0).unwrap();
        assert_eq!(e.parts[0].len(), 6 + 152);
        assert_eq!(&e.parts[1][6..8], &[ESC, 0x65]);
    }

    #[test]
    fn gsm7_message_of_400_characters_is_three_parts() {
        let text: String = "Tømningskalender for din adresse: "
            .repeat(12)
            .chars()
            .take(400)
            .collect();
        let e = encode(&text, 42).unwrap();
        assert_eq!((e.coding, e.parts.len()), (Coding::Gsm7, 3));
        for (i, p) in e.parts.iter().enumerate() {
            assert_eq!(udh(p), (42, 3, i as u8 + 1));
        }
        let septets: usize = e.parts.iter().map(|p| p.len() - 6).sum();
        assert_eq!(septets, 400);
    }

    #[test]
    fn emoji_forces_ucs2() {
        let e = encode("Hej 👋", 0).unwrap();
        assert_eq!(e.coding, Coding::Ucs2);
        assert_eq!(e.coding.data_coding(), 8);
        assert_eq!(
            e.parts[0],
            vec![0, b'H', 0, b'e', 0, b'j', 0, b' ', 0xd8, 0x3d, 0xdc, 0x4b]
        );
        assert_eq!(encode(&"ł".repeat(70), 0).unwrap().parts.len(), 1);
        assert_eq!(encode(&"ł".repeat(71), 0).unwrap().parts.len(), 2);
    }

    #[test]
    fn ucs2_400_characters_with_emoji_is_seven_parts_and_pairs_stay_whole() {
        // 66 letters then an emoji: the pair would straddle the 67-unit boundary.
        let text = format!("{}😀{}😀😀", "a".repeat(66), "b".repeat(331));
        assert_eq!(text.chars().count(), 400);
        let e = encode(&text, 7).unwrap();
        assert_eq!((e.coding, e.parts.len()), (Coding::Ucs2, 7));
        assert_eq!(e.parts[0].len(), 6 + 66 * 2);
        assert_eq!(&e.parts[1][6..10], &[0xd8, 0x3d, 0xde, 0x00]);
        for p in &e.parts {
            assert!(p.len() <= 140);
            let last = u16::from_be_bytes([p[p.len() - 2], p[p.len() - 1]]);
            assert!(
                !(0xd800..0xdc00).contains(&last),
                "high surrogate ends a part"
            );
        }
        let units: usize = e.parts.iter().map(|p| (p.len() - 6) / 2).sum();
        assert_eq!(units, 403);
    }

    #[test]
    fn limits() {
        assert_eq!(encode("", 0), Err(EncodingError::Empty));
        assert_eq!(
            encode(&"a".repeat(153 * 256), 0),
            Err(EncodingError::TooLong { parts: 256 })
        );
        // A literal escape character is not text we can send as GSM-7.
        assert_eq!(encode("a\u{1b}b", 0).unwrap().coding, Coding::Ucs2);
    }
}
