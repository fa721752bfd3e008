//! G.711 µ-law and A-law (ITU-T G.711), the only codecs a PSTN trunk is sure to speak.
//!
//! Decoding goes through 256-entry tables; encoding is the reference bit algorithm, so
//! `encode(decode(code)) == code` holds for every code except µ-law's negative zero.

use std::sync::LazyLock;

/// The two G.711 laws, named as in SDP (`PCMU` = µ-law, payload 0; `PCMA` = A-law, payload 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    Ulaw,
    Alaw,
}

impl Law {
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    pub fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Ulaw),
            8 => Some(Law::Alaw),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        }
    }

    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw_encode(sample),
            Law::Alaw => alaw_encode(sample),
        }
    }

    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::Ulaw => ULAW_TABLE[code as usize],
            Law::Alaw => ALAW_TABLE[code as usize],
        }
    }

    pub fn encode_into(self, pcm: &[i16], out: &mut Vec<u8>) {
        out.extend(pcm.iter().map(|&s| self.encode(s)));
    }

    pub fn decode_into(self, codes: &[u8], out: &mut Vec<i16>) {
        out.extend(codes.iter().map(|&c| self.decode(c)));
    }

    /// The code for silence, used to fill concealed or idle frames.
    pub fn silence(self) -> u8 {
        self.encode(0)
    }
}

static ULAW_TABLE: LazyLock<[i16; 256]> =
    LazyLock::new(|| std::array::from_fn(|c| ulaw_decode(c as u8)));
static ALAW_TABLE: LazyLock<[i16; 256]> =
    LazyLock::new(|| std::array::from_fn(|c| alaw_decode(c as u8)));

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

fn ulaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(ULAW_CLIP) + ULAW_BIAS;
    let exponent = (7 - ((s << 17).leading_zeros() as i32).min(7)) as u8;
    let mantissa = ((s >> (exponent + 3)) & 0x0F) as u8;
    !(sign | (exponent << 4) | mantissa)
}

fn ulaw_decode(code: u8) -> i16 {
    let c = !code;
    let sign = c & 0x80;
    let exponent = (c >> 4) & 0x07;
    let mantissa = c & 0x0F;
    let magnitude = ((((mantissa as i32) << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

fn alaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s >= 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s - 1;
    }
    let s = s.min(0x7FFF) >> 3; // 13-bit magnitude
    let code = if s < 32 {
        (s >> 1) as u8
    } else {
        let segment = (31 - (s as u32).leading_zeros()) as i32 - 4; // 1..=7
        let mantissa = ((s >> segment) & 0x0F) as u8;
        ((segment as u8) << 4) | mantissa
    };
    (sign | code) ^ 0x55
}

fn alaw_decode(code: u8) -> i16 {
    let c = code ^ 0x55;
    let sign = c & 0x80;
    let exponent = ((c >> 4) & 0x07) as i32;
    let mantissa = (c & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values_from_the_standard() {
        assert_eq!(Law::Ulaw.decode(0x00), -32124);
        assert_eq!(Law::Ulaw.decode(0x80), 32124);
        assert_eq!(Law::Ulaw.decode(0x7F), 0);
        assert_eq!(Law::Ulaw.decode(0xFF), 0);
        assert_eq!(Law::Ulaw.decode(0x7E), -8);
        assert_eq!(Law::Ulaw.decode(0xFE), 8);
        assert_eq!(Law::Ulaw.decode(0x70), -120);
        assert_eq!(Law::Ulaw.encode(0), 0xFF);
        assert_eq!(Law::Ulaw.encode(i16::MAX), 0x80);
        assert_eq!(Law::Ulaw.encode(i16::MIN), 0x00);
    }

    #[test]
    fn alaw_known_values_from_the_standard() {
        assert_eq!(Law::Alaw.decode(0xD5), 8);
        assert_eq!(Law::Alaw.decode(0x55), -8);
        assert_eq!(Law::Alaw.decode(0xAA), 32256);
        assert_eq!(Law::Alaw.decode(0x2A), -32256);
        assert_eq!(Law::Alaw.decode(0x80), 5504);
        assert_eq!(Law::Alaw.encode(0), 0xD5);
        assert_eq!(Law::Alaw.encode(i16::MAX), 0xAA);
        assert_eq!(Law::Alaw.encode(i16::MIN), 0x2A);
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            assert_eq!(
                Law::Alaw.encode(Law::Alaw.decode(code)),
                code,
                "alaw {code:#x}"
            );
            if code != 0x7F {
                // 0x7F is µ-law "negative zero": it decodes to 0, which encodes as 0xFF.
                assert_eq!(
                    Law::Ulaw.encode(Law::Ulaw.decode(code)),
                    code,
                    "ulaw {code:#x}"
                );
            }
        }
    }

    #[test]
    fn encoding_is_monotonic_and_error_is_bounded() {
        for law in [Law::Ulaw, Law::Alaw] {
            let mut prev = i16::MIN;
            for s in (i16::MIN as i32..=i16::MAX as i32).step_by(7) {
                let d = law.decode(law.encode(s as i16));
                assert!(d >= prev, "{law:?} not monotonic at {s}");
                prev = d;
                // Logarithmic quantisation: error within ~1/16 of magnitude (plus the small-signal step).
                let err = (d as i32 - s).abs();
                assert!(
                    err <= (s.abs() / 16).max(16) + 8,
                    "{law:?} error {err} at {s}"
                );
            }
        }
    }
}
