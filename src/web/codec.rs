//! A web call's audio codec, seen from the call: the caller's audio in at the line's
//! rate (16 kHz wideband from Opus, 8 kHz from PCMU), and 20 ms frames of the call's
//! 8 kHz voice out. Opus runs at 48 kHz (libopus), with streaming resamplers in
//! between so frame edges do not click; PCMU is the G.711 every line already speaks.

use crate::audio::g711::Law;
use crate::audio::resample::{f32_to_i16, i16_to_f32, Streaming};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Opus,
    Pcmu,
}

impl Codec {
    /// The rate of the caller's audio as the call hears it.
    pub fn rate(self) -> u32 {
        match self {
            Codec::Opus => WIDEBAND_HZ,
            Codec::Pcmu => CALL_HZ,
        }
    }
}

/// The rate of what the call says, of a wideband caller, and the rate Opus runs at.
const CALL_HZ: u32 = 8_000;
const WIDEBAND_HZ: u32 = 16_000;
const OPUS_HZ: u32 = 48_000;
/// The longest Opus frame (120 ms at 48 kHz), the size of the decode buffer.
const MAX_FRAME: usize = 5_760;

pub enum Decoder {
    Opus {
        opus: opus::Decoder,
        down: Box<Streaming>,
        buf: Vec<i16>,
    },
    Pcmu,
}

impl Decoder {
    pub fn new(codec: Codec) -> Result<Self, opus::Error> {
        Ok(match codec {
            Codec::Opus => Decoder::Opus {
                opus: opus::Decoder::new(OPUS_HZ, opus::Channels::Mono)?,
                down: Box::new(Streaming::new(OPUS_HZ, WIDEBAND_HZ)),
                buf: vec![0; MAX_FRAME],
            },
            Codec::Pcmu => Decoder::Pcmu,
        })
    }

    /// One packet's payload as PCM at `Codec::rate`; a packet that does not decode
    /// is dropped (the browser's next one will).
    pub fn decode(&mut self, payload: &[u8]) -> Vec<i16> {
        match self {
            Decoder::Opus { opus, down, buf } => match opus.decode(payload, buf, false) {
                Ok(n) => f32_to_i16(&down.push(&i16_to_f32(&buf[..n]))),
                Err(e) => {
                    tracing::debug!(error = %e, "Opus packet dropped");
                    Vec::new()
                }
            },
            Decoder::Pcmu => {
                let mut pcm = Vec::with_capacity(payload.len());
                Law::Ulaw.decode_into(payload, &mut pcm);
                pcm
            }
        }
    }
}

pub enum Encoder {
    Opus {
        opus: opus::Encoder,
        up: Box<Streaming>,
    },
    Pcmu,
}

impl Encoder {
    pub fn new(codec: Codec) -> Result<Self, opus::Error> {
        Ok(match codec {
            Codec::Opus => {
                let mut opus =
                    opus::Encoder::new(OPUS_HZ, opus::Channels::Mono, opus::Application::Voip)?;
                // Speech from an 8 kHz voice needs little; the default would spend more.
                opus.set_bitrate(opus::Bitrate::Bits(24_000))?;
                Encoder::Opus {
                    opus,
                    up: Box::new(Streaming::new(CALL_HZ, OPUS_HZ)),
                }
            }
            Codec::Pcmu => Encoder::Pcmu,
        })
    }

    /// One 20 ms frame of 8 kHz PCM (160 samples) as one packet's payload.
    pub fn encode(&mut self, frame: &[i16]) -> Vec<u8> {
        match self {
            Encoder::Opus { opus, up } => {
                let mut wide = f32_to_i16(&up.push(&i16_to_f32(frame)));
                // The resampler's lag makes the first frame short: pad it, Opus
                // takes only whole frames.
                wide.resize(frame.len() * (OPUS_HZ / CALL_HZ) as usize, 0);
                opus.encode_vec(&wide, 1_500).unwrap_or_else(|e| {
                    tracing::debug!(error = %e, "Opus frame not encoded");
                    Vec::new()
                })
            }
            Encoder::Pcmu => {
                let mut out = Vec::with_capacity(frame.len());
                Law::Ulaw.encode_into(frame, &mut out);
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 440 Hz tone said at 8 kHz, through Opus, comes back wideband (16 kHz) with
    /// its level and pitch.
    #[test]
    fn opus_carries_a_tone_both_ways() {
        let mut enc = Encoder::new(Codec::Opus).unwrap();
        let mut dec = Decoder::new(Codec::Opus).unwrap();
        let tone: Vec<i16> = (0..8_000)
            .map(|i| {
                (8_000.0 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 8_000.0).sin()) as i16
            })
            .collect();
        let mut back = Vec::new();
        for frame in tone.chunks(160) {
            let packet = enc.encode(frame);
            assert!(
                !packet.is_empty() && packet.len() < 200,
                "{} bytes",
                packet.len()
            );
            back.extend(dec.decode(&packet));
        }
        assert_eq!(Codec::Opus.rate(), 16_000);
        assert!(
            (15_800..=16_000).contains(&back.len()),
            "{} samples",
            back.len()
        );
        let tail = &back[4_000..14_000];
        let rms =
            (tail.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
        assert!((4_500.0..6_500.0).contains(&rms), "rms {rms}");
        let crossings = tail.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
        // 10,000 samples at 16 kHz of 440 Hz: 275 periods.
        assert!((270..=280).contains(&crossings), "{crossings}");
    }

    #[test]
    fn pcmu_is_g711() {
        let mut enc = Encoder::new(Codec::Pcmu).unwrap();
        let mut dec = Decoder::new(Codec::Pcmu).unwrap();
        let frame: Vec<i16> = (0..160).map(|i| (i * 100) as i16).collect();
        let packet = enc.encode(&frame);
        assert_eq!(packet.len(), 160);
        let back = dec.decode(&packet);
        assert!(frame.iter().zip(&back).all(|(a, b)| (a - b).abs() <= 512));
    }
}
