//! Byte-level mutations from a small seeded PRNG (reproducible, no dependency).

/// SplitMix64: fast, decent, and the same sequence for the same seed everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0..n (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Bytes and strings that parsers trip over: separators, limits, signs, multi-byte
/// characters (a cut inside one panics `String::truncate`), huge numbers.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\r",
    b"\n",
    b":",
    b";",
    b",",
    b"=",
    b" ",
    b"\0",
    b"-1",
    b"0",
    b"65536",
    b"4294967296",
    b"18446744073709551615",
    b"99999999999999999999999",
    "é".as_bytes(),
    "😀".as_bytes(),
    b"\xff\xfe",
    b"\xc3",
    b"[",
    b"]",
    b"\"",
    b"%",
];

const BYTES: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b' ', b'\t', b':', b'/'];

/// One to four stacked mutations of `input`; `other` is spliced in by some.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        step(rng, &mut out, other);
    }
    out.truncate(1 << 16);
    out
}

fn step(rng: &mut Rng, out: &mut Vec<u8>, other: &[u8]) {
    let len = out.len();
    let at = rng.below(len + 1);
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len);
            out[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            out[i] = BYTES[rng.below(BYTES.len())];
        }
        2 => {
            let t = TOKENS[rng.below(TOKENS.len())];
            out.splice(at..at, t.iter().copied());
        }
        3 if len > 0 => {
            // Replace a run of digits (a length, a port, a count) with a token.
            let i = rng.below(len);
            let end = (i..len).find(|&j| !out[j].is_ascii_digit()).unwrap_or(len);
            let t = TOKENS[10 + rng.below(6)];
            out.splice(i..end, t.iter().copied());
        }
        4 if len > 0 => {
            let end = (at + 1 + rng.below(16)).min(len);
            out.drain(at.min(end)..end);
        }
        5 => out.truncate(at),
        6 if len > 0 => {
            // Repeat a chunk: long headers, many lines, many attributes.
            let start = rng.below(len);
            let end = (start + 1 + rng.below(64)).min(len);
            let chunk = out[start..end].to_vec();
            let most = if rng.below(8) == 0 { 512 } else { 8 };
            let times = 1 + rng.below(most);
            let at = end;
            for _ in 0..times {
                out.splice(at..at, chunk.iter().copied());
            }
        }
        7 if !other.is_empty() => {
            // Splice: this input's head, another's tail.
            let from = rng.below(other.len());
            out.truncate(at);
            out.extend_from_slice(&other[from..]);
        }
        8 => {
            let n = 1 + rng.below(8);
            for _ in 0..n {
                let b = rng.next_u64() as u8;
                out.insert(at.min(out.len()), b);
            }
        }
        _ if len > 1 => {
            // Swap two bytes.
            let (i, j) = (rng.below(len), rng.below(len));
            out.swap(i, j);
        }
        _ => out.push(rng.next_u64() as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutants() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|_| mutate(&mut rng, b"INVITE sip:a SIP/2.0\r\n", b"v=0\r\n"))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
