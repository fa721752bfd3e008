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
/// Heard frames kept for finding the delay to the sample: short, so that after the
/// echo's delay moved most of them hold the new one.
const ALIGN_FRAMES: usize = 15;
/// A delay is taken when the echo and the sent audio correlate at least this well.
const ALIGN_R: f32 = 0.3;
/// Frames between two tries at finding the delay when one failed (each costs a few ms).
const ALIGN_RETRY: u32 = 10;
/// How much quieter the estimate a frame away must leave a frame to follow it there.
const SHIFT_DB: f32 = 6.0;
/// NLMS step: fast enough to converge within the bot's first sentence.
const MU: f32 = 0.2;
/// How much of the echo the canceller may be said to remove at most, in dB: G.711 on
/// the way out and back leaves noise about 38 dB below the signal.
const MAX_ERLE_DB: f32 = 30.0;
/// Frames with echo due over which the ERLE is taken: the reduction that four in
/// five of them reach. How much a frame of speech is reduced varies with its sound,
/// and the caller must be louder than what even the worse-cancelled frames leave; a
/// caller talking over the bot for less than a fifth of them (until barge-in stops
/// the bot, 600 ms) does not move it.
const ERLE_FRAMES: usize = 250;
/// Only frames this loud (dB re 1 LSB², about -40 dBFS) show how much is removed:
/// a quieter one is soon at the line's floor.
const ERLE_LEVEL_DB: f32 = 50.0;
/// Frames needed before the ERLE counts.
const ERLE_MIN_FRAMES: usize = 25;

pub struct Canceller {
    /// Off: never finds a delay, so it subtracts nothing and the gate works alone.
    on: bool,
    frame: usize,
    /// Longest delay searched, in samples.
    max_delay: usize,
    /// Sent samples, newest last.
    sent: Recent,
    /// Heard samples of the last `ALIGN_FRAMES` frames, newest last.
    heard: VecDeque<i16>,
    /// The frame delay the gate reported that `lag` was found for.
    delay: Option<usize>,
    /// Samples from a heard sample back to the sent sample of the first tap.
    lag: Option<usize>,
    taps: Vec<f32>,
    retry_in: u32,
    /// How much quieter each of the last frames with echo due came out, in dB.
    reductions: VecDeque<f32>,
}

impl Canceller {
    pub fn new(frame: usize, max_delay_frames: usize) -> Canceller {
        let max_delay = (max_delay_frames + 2) * frame;
        let sent_len = ALIGN_FRAMES * frame + max_delay + TAPS;
        Canceller {
            on: true,
            frame,
            max_delay,
            sent: Recent::new(sent_len),
            heard: VecDeque::from(vec![0; ALIGN_FRAMES * frame]),
            delay: None,
            lag: None,
            taps: vec![0.0; TAPS],
            retry_in: 0,
            reductions: VecDeque::with_capacity(ERLE_FRAMES),
        }
    }

    /// A canceller that does nothing (and keeps no audio).
    pub fn off() -> Canceller {
        Canceller {
            on: false,
            frame: 1,
            max_delay: 0,
            sent: Recent::new(0),
            heard: VecDeque::new(),
            delay: None,
            lag: None,
            taps: Vec::new(),
            retry_in: 0,
            reductions: VecDeque::new(),
        }
    }

    /// A frame went out (one per heard frame; an empty one is silence).
    pub fn sent(&mut self, frame: &[i16]) {
        if !self.on {
            return;
        }
        let samples = frame
            .iter()
            .map(|&s| f32::from(s))
            .chain(std::iter::repeat(0.0));
        self.sent.push(samples.take(self.frame));
    }

    /// A heard frame, before anything is removed from it (for finding the delay).
    pub fn hear(&mut self, frame: &[i16]) {
        if !self.on {
            return;
        }
        shift_in(&mut self.heard, frame.iter().copied());
    }

    /// Follows the gate's echo path: finds its delay to the sample when the path is
    /// new or has moved, forgets everything when there is none.
    pub fn follow(&mut self, delay_frames: Option<usize>) {
        let Some(delay) = delay_frames.filter(|_| self.on) else {
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
            let at = delay * self.frame;
            self.lag = self.align(at.saturating_sub(self.frame)..at + 2 * self.frame);
            if self.lag.is_none() {
                self.delay = None;
                self.retry_in = ALIGN_RETRY;
            }
        }
        self.retry_in = self.retry_in.saturating_sub(1);
    }

    /// The estimate stopped matching the echo. A jitter buffer that ran dry or caught
    /// up moves the echo by whole frames: look for it a frame either side and keep the
    /// shape learnt; if it has not moved, the shape is what went wrong: learn it anew.
    pub fn realign(&mut self) {
        let Some(lag) = self.lag else {
            return;
        };
        let peak = lag + PRE;
        let around = peak.saturating_sub(self.frame)..peak + self.frame + 1;
        match self.align(around) {
            Some(moved) if moved != lag => {
                tracing::debug!(from = lag, to = moved, "echo delay moved");
                self.lag = Some(moved);
            }
            _ => {
                self.taps.fill(0.0);
                self.reductions.clear();
            }
        }
    }

    /// `frame` less the estimated echo; `None` while the delay is not known.
    pub fn residual(&mut self, frame: &[i16]) -> Option<Vec<i16>> {
        let lag = self.lag?;
        Some(self.residual_at(frame, lag))
    }

    /// A jitter buffer that ran dry or caught up moves the echo by a whole frame at
    /// once. When the estimate a frame either side leaves `frame` at least `SHIFT_DB`
    /// quieter than the `left_db` it is left at now, the echo moved there: the lag
    /// follows it (the echo's shape is the same) and that residual is returned.
    pub fn follow_shift(&mut self, frame: &[i16], left_db: f32) -> Option<Vec<i16>> {
        let lag = self.lag?;
        let shifts = [lag.checked_sub(self.frame), Some(lag + self.frame)];
        let max_delay = self.max_delay;
        let (moved, residual, db) = shifts
            .into_iter()
            .flatten()
            .filter(|&l| l < max_delay)
            .map(|l| {
                let r = self.residual_at(frame, l);
                let db = super::level_db(&r);
                (l, r, db)
            })
            .min_by(|a, b| a.2.total_cmp(&b.2))?;
        if db > left_db - SHIFT_DB {
            return None;
        }
        tracing::debug!(from = lag, to = moved, "echo moved by a frame");
        self.lag = Some(moved);
        Some(residual)
    }

    fn residual_at(&mut self, frame: &[i16], lag: usize) -> Vec<i16> {
        let sent = self.sent.as_slice();
        let n = frame.len();
        frame
            .iter()
            .enumerate()
            .map(|(i, &y)| {
                let x = window(sent, n - 1 - i, lag);
                let e = f32::from(y) - dot(&self.taps, x);
                e.round().clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    /// Learns from a frame in which only the bot's echo was heard.
    pub fn adapt(&mut self, frame: &[i16]) {
        let Some(lag) = self.lag else {
            return;
        };
        let sent = self.sent.as_slice();
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
    }

    /// A frame with echo due came in at `level` and was left at `left_db`. Every such
    /// frame counts, not only those taken for echo alone: judged by the frames it
    /// cancelled well, a canceller that loses the echo now and then (a jitter buffer
    /// moving it back and forth) would seem better than it is, and its leftovers
    /// would pass for the caller.
    pub fn note(&mut self, level: f32, left_db: f32) {
        if self.lag.is_none() || level < ERLE_LEVEL_DB {
            return;
        }
        if self.reductions.len() == ERLE_FRAMES {
            self.reductions.pop_front();
        }
        self.reductions
            .push_back((level - left_db).clamp(0.0, MAX_ERLE_DB));
    }

    /// How much quieter the echo is after cancelling, in dB (0 until it has learnt).
    pub fn erle_db(&self) -> f32 {
        if self.lag.is_none() || self.reductions.len() < ERLE_MIN_FRAMES {
            return 0.0;
        }
        let mut sorted: Vec<f32> = self.reductions.iter().copied().collect();
        sorted.sort_by(f32::total_cmp);
        sorted[sorted.len() / 5]
    }

    /// Forgets the echo's shape, e.g. when the gate found it unreliable.
    pub fn reset(&mut self) {
        self.delay = None;
        self.lag = None;
        self.taps.fill(0.0);
        self.reductions.clear();
    }

    /// The first tap's lag for an echo some of `lags` samples late, by normalised
    /// cross-correlation of the kept heard audio with the sent audio.
    fn align(&mut self, lags: std::ops::Range<usize>) -> Option<usize> {
        let heard: Vec<f32> = self.heard.iter().rev().map(|&s| f32::from(s)).collect();
        let sent = self.sent.as_slice();
        let heard_energy = dot(&heard, &heard);
        let lags = lags.start..lags.end.min(self.max_delay);
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

/// The last samples sent, contiguous for the filter's windows: kept in a buffer twice
/// as long that is shifted down when full, not rotated on every frame (a ring buffer
/// made contiguous moved its ~9,000 samples for each frame heard).
struct Recent {
    buf: Vec<f32>,
    len: usize,
}

impl Recent {
    /// `len` samples of silence.
    fn new(len: usize) -> Recent {
        let mut buf = Vec::with_capacity(2 * len);
        buf.resize(len, 0.0);
        Recent { buf, len }
    }

    fn push(&mut self, samples: impl Iterator<Item = f32>) {
        self.buf.extend(samples);
        if self.buf.len() >= 2 * self.len {
            self.buf.drain(..self.buf.len() - self.len);
        }
    }

    /// The last `len` samples, oldest first.
    fn as_slice(&self) -> &[f32] {
        &self.buf[self.buf.len() - self.len..]
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
