//! Band-limited sample-rate conversion: a Blackman-windowed sinc whose cutoff sits just
//! below the lower of the two Nyquist rates. Sample repetition would alias and smear
//! the consonants whisper needs. (dasp 0.11's `Sinc` interpolator was tried first: it
//! does not low-pass when downsampling and failed the tone tests below.) dasp still
//! does the sample-format conversions.

use dasp::Sample;

/// Zero crossings of the kernel on each side, at the lower rate.
const HALF_TAPS: f64 = 16.0;
/// Cutoff as a fraction of the lower Nyquist rate: leaves room for the transition band.
const CUTOFF: f64 = 0.92;

/// Kernel samples per input sample in the lookup table (linear interpolation between).
const TABLE_STEPS: f64 = 256.0;

pub fn resample(input: &[f32], from_hz: u32, to_hz: u32) -> Vec<f32> {
    if from_hz == to_hz || input.is_empty() {
        return input.to_vec();
    }
    let ratio = to_hz as f64 / from_hz as f64;
    let scale = ratio.min(1.0) * CUTOFF; // cutoff in cycles per input sample ×2
    let half_width = HALF_TAPS / scale; // in input samples
                                        // The kernel is tabulated once per call: evaluating sin/cos for every tap of every
                                        // output sample made a 5 s prompt cost ~0.2 s.
    let table: Vec<f64> = (0..=(2.0 * half_width * TABLE_STEPS).ceil() as usize + 1)
        .map(|i| {
            let d = i as f64 / TABLE_STEPS - half_width;
            if d.abs() > half_width {
                0.0
            } else {
                kernel(d * scale, d / half_width) * scale
            }
        })
        .collect();
    let tap = |d: f64| {
        let pos = (d + half_width) * TABLE_STEPS;
        let i = pos.floor() as usize;
        let frac = pos - i as f64;
        match (table.get(i), table.get(i + 1)) {
            (Some(a), Some(b)) => a + (b - a) * frac,
            _ => 0.0,
        }
    };
    let out_len = (input.len() as f64 * ratio).floor() as usize;
    (0..out_len)
        .map(|n| {
            let t = n as f64 / ratio;
            let first = (t - half_width).ceil().max(0.0) as usize;
            let last = ((t + half_width).floor() as usize).min(input.len() - 1);
            let mut acc = 0.0;
            for (k, &x) in input.iter().enumerate().take(last + 1).skip(first) {
                acc += x as f64 * tap(k as f64 - t);
            }
            acc as f32
        })
        .collect()
}

fn kernel(x: f64, window_pos: f64) -> f64 {
    let sinc = if x.abs() < 1e-9 {
        1.0
    } else {
        (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
    };
    // Blackman window over [-1, 1].
    let w = 0.42
        + 0.5 * (std::f64::consts::PI * window_pos).cos()
        + 0.08 * (2.0 * std::f64::consts::PI * window_pos).cos();
    sinc * w
}

pub fn i16_to_f32(pcm: &[i16]) -> Vec<f32> {
    pcm.iter().map(|&s| s.to_sample::<f32>()).collect()
}

pub fn f32_to_i16(pcm: &[f32]) -> Vec<i16> {
    pcm.iter()
        .map(|&s| s.clamp(-1.0, 1.0).to_sample::<i16>())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, rate: u32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|s| s * s).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn upsampling_keeps_length_and_a_tone() {
        let x = tone(1000.0, 8000, 1.0);
        let y = resample(&x, 8000, 16000);
        assert_eq!(y.len(), 16000);
        let r = rms(&y[1000..15000]);
        assert!((r - rms(&x)).abs() < 0.02, "rms {r}");
        // The 1 kHz period at 16 kHz is 16 samples: check zero crossings count.
        let crossings = y[1000..15000]
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count();
        assert!((870..=880).contains(&crossings), "{crossings}");
    }

    #[test]
    fn downsampling_removes_what_cannot_be_represented() {
        // 6 kHz cannot exist at 8 kHz: a band-limited resampler must suppress it, not alias it to 2 kHz.
        let x = tone(6000.0, 22050, 1.0);
        let y = resample(&x, 22050, 8000);
        assert_eq!(y.len(), 8000);
        assert!(
            rms(&y[500..7500]) < 0.05,
            "aliased energy {}",
            rms(&y[500..7500])
        );
    }
}
