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
    let k = Kernel::new(from_hz, to_hz);
    let out_len = (input.len() as f64 * k.ratio).floor() as usize;
    (0..out_len)
        .map(|n| k.sample_at(input, n as f64 / k.ratio))
        .collect()
}

/// The windowed-sinc kernel for one pair of rates, tabulated once: evaluating sin/cos
/// for every tap of every output sample made a 5 s prompt cost ~0.2 s.
struct Kernel {
    ratio: f64,
    /// Half the kernel's width, in input samples.
    half_width: f64,
    table: Vec<f64>,
}

impl Kernel {
    fn new(from_hz: u32, to_hz: u32) -> Self {
        let ratio = to_hz as f64 / from_hz as f64;
        let scale = ratio.min(1.0) * CUTOFF; // cutoff in cycles per input sample ×2
        let half_width = HALF_TAPS / scale;
        let table = (0..=(2.0 * half_width * TABLE_STEPS).ceil() as usize + 1)
            .map(|i| {
                let d = i as f64 / TABLE_STEPS - half_width;
                if d.abs() > half_width {
                    0.0
                } else {
                    kernel(d * scale, d / half_width) * scale
                }
            })
            .collect();
        Kernel {
            ratio,
            half_width,
            table,
        }
    }

    fn tap(&self, d: f64) -> f64 {
        let pos = (d + self.half_width) * TABLE_STEPS;
        let i = pos.floor() as usize;
        let frac = pos - i as f64;
        match (self.table.get(i), self.table.get(i + 1)) {
            (Some(a), Some(b)) => a + (b - a) * frac,
            _ => 0.0,
        }
    }

    /// The output sample at input position `t` (samples outside `input` count as 0).
    fn sample_at(&self, input: &[f32], t: f64) -> f32 {
        let first = (t - self.half_width).ceil().max(0.0) as usize;
        let last = ((t + self.half_width).floor().max(0.0) as usize).min(input.len() - 1);
        let mut acc = 0.0;
        for (k, &x) in input.iter().enumerate().take(last + 1).skip(first) {
            acc += x as f64 * self.tap(k as f64 - t);
        }
        acc as f32
    }
}

/// A resampler for audio that arrives in pieces (a call's 20 ms frames): it keeps
/// the input the kernel still reaches, so frame edges do not click as they would if
/// each frame were resampled alone. Output lags input by half the kernel's width
/// (about 2 ms between 48 and 8 kHz).
pub struct Streaming {
    kernel: Kernel,
    /// Input not yet behind the kernel's reach.
    pending: Vec<f32>,
    /// Where the next output sample falls in `pending`.
    t: f64,
}

impl Streaming {
    pub fn new(from_hz: u32, to_hz: u32) -> Self {
        let kernel = Kernel::new(from_hz, to_hz);
        // Starting half a kernel in front lines the first output up with the first input.
        Streaming {
            pending: vec![0.0; kernel.half_width.ceil() as usize],
            t: kernel.half_width.ceil(),
            kernel,
        }
    }

    pub fn push(&mut self, input: &[f32]) -> Vec<f32> {
        self.pending.extend_from_slice(input);
        let k = &self.kernel;
        let mut out = Vec::with_capacity((input.len() as f64 * k.ratio).ceil() as usize + 1);
        while self.t + k.half_width < self.pending.len() as f64 {
            out.push(k.sample_at(&self.pending, self.t));
            self.t += 1.0 / k.ratio;
        }
        let consumed = (self.t - k.half_width).floor().max(0.0) as usize;
        self.pending.drain(..consumed.min(self.pending.len()));
        self.t -= consumed as f64;
        out
    }
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

    #[test]
    fn streaming_in_frames_matches_resampling_the_whole() {
        for (from, to) in [(48_000, 8_000), (8_000, 48_000), (48_000, 16_000)] {
            let x = tone(440.0, from, 0.5);
            let whole = resample(&x, from, to);
            let mut s = Streaming::new(from, to);
            let frame = from as usize / 50;
            let pieces: Vec<f32> = x.chunks(frame).flat_map(|c| s.push(c)).collect();
            let lag = whole.len() - pieces.len();
            assert!(lag * 1000 < to as usize * 5, "{from}->{to}: lag {lag}");
            let worst = whole
                .iter()
                .zip(&pieces)
                .skip(50)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-3, "{from}->{to}: differs by {worst}");
        }
    }
}
