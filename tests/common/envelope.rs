//! Finding a known piece of audio (a prompt as espeak-ng says it, a recording) in what
//! a caller heard, by its 20 ms loudness envelope.
//!
//! espeak-ng does not say a text the same way twice: rendered 15 times in a row, one
//! English answer came out between 73960 and 74480 samples long, the difference in the
//! pauses at its commas (up to 50 ms each). A single alignment of the whole reference
//! then matches a correct recording as badly as 0.76. So the reference is matched
//! phrase by phrase (phrases end at its pauses), each where the one before it was
//! found, give or take a little: the whole of it must be there, in order.

/// 20 ms RMS envelope of 8 kHz audio.
pub fn envelope(pcm: &[i16]) -> Vec<f32> {
    pcm.chunks(FRAME)
        .map(|c| {
            (c.iter().map(|&s| (s as f32 / 32768.0).powi(2)).sum::<f32>() / c.len() as f32).sqrt()
        })
        .collect()
}

/// Best normalised correlation of `needle`'s envelope inside `hay`'s, phrase by phrase
/// (the worst phrase's): close to 1 when the recording contains the reference audio.
pub fn envelope_match(hay: &[i16], needle: &[i16]) -> f32 {
    envelope_find(hay, needle).0
}

/// Like `envelope_match`, with where the match starts in `hay` (seconds).
pub fn envelope_find(hay: &[i16], needle: &[i16]) -> (f32, f64) {
    let (whole, anchor) = find_whole(hay, needle);
    let phrases = phrases(needle);
    if phrases.len() < 2 {
        return (whole, anchor as f64 / RATE);
    }
    // Each phrase is looked for where the one before it was found, plus the distance
    // between the two in the reference, within SLACK either way.
    let mut worst = f32::MAX;
    let mut start = None;
    let mut found_prev = anchor as isize;
    let mut prev_start = 0usize;
    for (from, to) in phrases {
        let expected = found_prev + (from - prev_start) as isize;
        let lo = (expected - SLACK as isize).max(0) as usize;
        let hi = ((expected + SLACK as isize).max(0) as usize + (to - from)).min(hay.len());
        let (score, at) = if lo < hi {
            find_whole(&hay[lo..hi], &needle[from..to])
        } else {
            (0.0, 0)
        };
        worst = worst.min(score);
        found_prev = (lo + at) as isize;
        prev_start = from;
        start.get_or_insert(lo + at);
    }
    (worst, start.unwrap_or(anchor) as f64 / RATE)
}

const RATE: f64 = 8000.0;
const FRAME: usize = 160;
/// How far a phrase may sit from where the reference puts it after the one before.
const SLACK: usize = 8 * FRAME;
/// A pause that ends a phrase: this many frames quieter than `QUIET`.
const PAUSE_FRAMES: usize = 3;
const QUIET: f32 = 0.01;
/// Shorter phrases are joined to the next: their correlation would be noise.
const MIN_PHRASE_FRAMES: usize = 40;

/// The needle's phrases as sample ranges, cut in the middle of its pauses; together
/// they cover it.
fn phrases(needle: &[i16]) -> Vec<(usize, usize)> {
    let env = envelope(needle);
    let mut cuts = vec![0usize];
    let mut quiet_run = 0;
    for (i, e) in env.iter().enumerate() {
        if *e < QUIET {
            quiet_run += 1;
            continue;
        }
        if quiet_run >= PAUSE_FRAMES && i > quiet_run {
            let cut = i - quiet_run / 2;
            if cut - cuts[cuts.len() - 1] >= MIN_PHRASE_FRAMES {
                cuts.push(cut);
            }
        }
        quiet_run = 0;
    }
    // The last phrase too must be long enough: else it joins the one before.
    if cuts.len() > 1 && env.len() - cuts[cuts.len() - 1] < MIN_PHRASE_FRAMES {
        cuts.pop();
    }
    cuts.push(env.len());
    cuts.windows(2)
        .map(|w| (w[0] * FRAME, (w[1] * FRAME).min(needle.len())))
        .collect()
}

/// Best normalised correlation of the whole of `needle`'s envelope inside `hay`'s, over
/// all lags (20 ms frames, tried at 2.5 ms sub-frame offsets so the frame grids line
/// up), and where it starts (samples).
fn find_whole(hay: &[i16], needle: &[i16]) -> (f32, usize) {
    let n = envelope(needle);
    let nn = normalised(&n);
    let mut best = (0.0f32, 0usize);
    for offset in (0..FRAME).step_by(20).filter(|o| *o < hay.len()) {
        let h = envelope(&hay[offset..]);
        if h.len() < n.len() || n.is_empty() {
            continue;
        }
        for lag in 0..=h.len() - n.len() {
            let score: f32 = normalised(&h[lag..lag + n.len()])
                .iter()
                .zip(&nn)
                .map(|(a, b)| a * b)
                .sum();
            if score > best.0 {
                best = (score, offset + lag * FRAME);
            }
        }
    }
    best
}

/// Zero mean, unit length.
fn normalised(v: &[f32]) -> Vec<f32> {
    let m = v.iter().sum::<f32>() / v.len() as f32;
    let c: Vec<f32> = v.iter().map(|x| x - m).collect();
    let e = c.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    c.into_iter().map(|x| x / e).collect()
}
