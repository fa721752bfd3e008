//! Subtracts the bot's own voice from what the line sends back, so a caller who talks
//! over the bot more quietly than its echo is still heard (a gate alone mutes them).
//!
//! Once the gate (`super`) knows the echo's delay to the frame, the canceller finds it
//! to the sample (cross-correlation around it), then learns the echo's shape with a
//! normalised LMS filter of `TAPS` taps (16 ms: a hybrid's echo is a few ms long) and
//! subtracts its estimate. It adapts only while the bot talks and the caller does not
//! (adapting on the caller's voice would teach it to cancel them); how much echo it
//! removes (ERLE) is tracked, so the gate expects only the echo that is left.
//!
//! Sans-IO like the gate: one `sent` and one `hear` per frame, in the gate's order.

use std::collections::VecDeque;

/// Filter length in samples (16 ms at 8 kHz).
const TAPS: usize = 128;
/// Taps before the strongest echo sample: a band-limited echo rises a little early.
const PRE: usize = 16;
/// Heard frames kept for finding the delay to the sample.
const ALIGN_FRAMES: usize = 25;
/// A delay is taken when the echo and the sent audio correlate at least this well.
const ALIGN_R: f32 = 0.3;
/// Frames between two tries at finding the delay when one failed (each costs a few ms).
const ALIGN_RETRY: u32 = 10;
/// NLMS step: fast enough to converge within the bot's first sentence.
const MU: f32 = 0.4;
/// How much of the echo the canceller may be said to remove at most, in dB: G.711 on
/// the way out and back leaves noise about 38 dB below the signal.
const MAX_ERLE_DB: f32 = 30.0;
/// Smoothing of the powers behind the ERLE, per adapted frame.
const ERLE_SMOOTHING: f32 = 0.1;
/// dB the ERLE sinks per frame of double talk (see `doubt`).
const DOUBT_DB: f32 = 0.25;

pub struct Canceller {
    frame: usize,
    /// Longest delay searched, in samples.
    max_delay: usize,
    /// Sent samples, newest last.
    sent: VecDeque<f32>,
    /// Heard samples of the last `ALIGN_FRAMES` frames, newest last.
    heard: VecDeque<i16>,
    /// The frame delay the gate reported that `lag` was found for.
    delay: Option<usize>,
    /// Samples from a heard sample back to the sent sample of the first tap.
    lag: Option<usize>,
    taps: Vec<f32>,
    retry_in: u32,
    /// Smoothed powers of the echo and of what was left of it.
    echo_power: f32,
    left_power: f32,
}

impl Canceller {
    pub fn new(frame: usize, max_delay_frames: usize) -> Canceller {
        let max_delay = (max_delay_frames + 2) * frame;
        let sent_len = ALIGN_FRAMES * frame + max_delay + TAPS;
        Canceller {
            frame,
            max_delay,
            sent: VecDeque::from(vec![0.0; sent_len]),
            heard: VecDeque::from(vec![0; ALIGN_FRAMES * frame]),
            delay: None,
            lag: None,
            taps: vec![0.0; TAPS],
            retry_in: 0,
            echo_power: 0.0,
            left_power: 0.0,
        }
    }

    /// A frame went out (one per heard frame; an empty one is silence).
    pub fn sent(&mut self, frame: &[i16]) {
        let samples = frame
            .iter()
            .map(|&s| f32::from(s))
            .chain(std::iter::repeat(0.0));
        shift_in(&mut self.sent, samples.take(self.frame));
    }

    /// A heard frame, before anything is removed from it (for finding the delay).
    pub fn hear(&mut self, frame: &[i16]) {
        shift_in(&mut self.heard, frame.iter().copied());
    }

    /// Follows the gate's echo path: finds its delay to the sample when the path is
    /// new or has moved, forgets everything when there is none.
    pub fn follow(&mut self, delay_frames: Option<usize>) {
        let Some(delay) = delay_frames else {
            if self.delay.is_some() {
                self.reset();
            }
            return;
        };
        // The gate's delay may wander a frame either side of one between two frames.
        let moved = self.delay.is_none_or(|d| d.abs_diff(delay) > 1);
        if moved && self.retry_in == 0 {
            self.reset();
            self.delay = Some(delay);
            self.lag = self.align(delay * self.frame);
            if self.lag.is_none() {
                self.delay = None;
                self.retry_in = ALIGN_RETRY;
            }
        }
        self.retry_in = self.retry_in.saturating_sub(1);
    }

    /// `frame` less the estimated echo; `None` while the delay is not known.
    pub fn residual(&mut self, frame: &[i16]) -> Option<Vec<i16>> {
        let lag = self.lag?;
        let sent = self.sent.make_contiguous();
        let n = frame.len();
        Some(
            frame
                .iter()
                .enumerate()
                .map(|(i, &y)| {
                    let x = window(sent, n - 1 - i, lag);
                    let e = f32::from(y) - dot(&self.taps, x);
                    e.round().clamp(-32768.0, 32767.0) as i16
                })
                .collect(),
        )
    }

    /// Learns from a frame in which only the bot's echo was heard; `echo_db` and
    /// `left_db` are its level before and after cancelling.
    pub fn adapt(&mut self, frame: &[i16], echo_db: f32, left_db: f32) {
        let Some(lag) = self.lag else {
            return;
        };
        let sent = self.sent.make_contiguous();
        let n = frame.len();
        for (i, &y) in frame.iter().enumerate() {
            let x = window(sent, n - 1 - i, lag);
            let energy = dot(x, x);
            if energy < 1e3 {
                continue;
            }
            let step = MU * (f32::from(y) - dot(&self.taps, x)) / energy;
            for (w, &xi) in self.taps.iter_mut().zip(x) {
                *w += step * xi;
            }
        }
        let smooth = |p: &mut f32, db: f32| *p += ERLE_SMOOTHING * (10f32.powf(db / 10.0) - *p);
        smooth(&mut self.echo_power, echo_db);
        smooth(&mut self.left_power, left_db);
    }

    /// A frame judged to be the caller talking over the echo. Lets the ERLE sink (by
    /// `DOUBT_DB` a frame): a canceller that went wrong after the echo changed leaves
    /// echo the gate takes for the caller, and then no longer learns; so after a
    /// couple of seconds of that it is expected to remove less, and the gate mutes
    /// what is left and lets it learn again.
    pub fn doubt(&mut self) {
        self.left_power *= 10f32.powf(DOUBT_DB / 10.0);
    }

    /// How much quieter the echo is after cancelling, in dB (0 until it has learnt).
    pub fn erle_db(&self) -> f32 {
        if self.lag.is_none() || self.left_power <= 0.0 {
            return 0.0;
        }
        (10.0 * (self.echo_power / self.left_power).log10()).clamp(0.0, MAX_ERLE_DB)
    }

    /// Forgets the echo's shape, e.g. when the gate found it unreliable.
    pub fn reset(&mut self) {
        self.delay = None;
        self.lag = None;
        self.taps.fill(0.0);
        self.echo_power = 0.0;
        self.left_power = 0.0;
    }

    /// The first tap's lag for an echo `delay` samples late (±1 frame), by normalised
    /// cross-correlation of the kept heard audio with the sent audio.
    fn align(&mut self, delay: usize) -> Option<usize> {
        let heard: Vec<f32> = self.heard.iter().rev().map(|&s| f32::from(s)).collect();
        let sent = self.sent.make_contiguous();
        let heard_energy = dot(&heard, &heard);
        let lags = delay.saturating_sub(self.frame)..(delay + 2 * self.frame).min(self.max_delay);
        let mut best: Option<(f32, usize)> = None;
        for lag in lags {
            let x = rev_window(sent, lag, heard.len());
            let energy = x.clone().map(|s| s * s).sum::<f32>();
            if energy < 1.0 || heard_energy < 1.0 {
                continue;
            }
            // An echo can come back inverted: the size of the correlation counts.
            let r = x.zip(&heard).map(|(s, h)| s * h).sum::<f32>().abs()
                / (energy * heard_energy).sqrt();
            if best.is_none_or(|(b, _)| r > b) {
                best = Some((r, lag));
            }
        }
        let (r, lag) = best.filter(|(r, _)| *r >= ALIGN_R)?;
        tracing::debug!(r, lag, "echo delay to the sample");
        Some(lag.saturating_sub(PRE))
    }
}

fn shift_in<T>(history: &mut VecDeque<T>, samples: impl Iterator<Item = T>) {
    for s in samples {
        history.pop_front();
        history.push_back(s);
    }
}

/// The sent samples under the filter for the heard sample `back` samples before the
/// newest: from `lag` to `lag + TAPS - 1` samples earlier (oldest first).
fn window(sent: &[f32], back: usize, lag: usize) -> &[f32] {
    let end = sent.len() - back - lag;
    &sent[end - TAPS..end]
}

/// `len` sent samples, newest first, from `lag` samples before the newest.
fn rev_window(sent: &[f32], lag: usize, len: usize) -> impl Iterator<Item = f32> + Clone + '_ {
    let newest = sent.len() - 1 - lag;
    (0..len).map(move |i| sent[newest - i])
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
