//! Is what comes back from the caller's line the bot's own voice (echo)?
//!
//! A phone's hybrid or a speakerphone sends part of what the bot says back to us, some
//! 50–800 ms later and some dB quieter. Heard as speech, that echo barges in on the
//! bot's own answer. The gate learns the echo path from the two streams' loudness
//! envelopes: the delay at which the heard envelope follows the sent one (Pearson
//! correlation of the changes of 20 ms frame levels in dB) and how much quieter it
//! comes back. While it knows the path, the canceller (`canceller`) finds the delay to the sample and
//! subtracts its estimate of the echo; a heard frame no louder than the echo left after
//! that (plus a margin) is echo and is muted. A caller talking over the bot is louder
//! than that and passes, even one quieter than the echo itself (the double-talk rule
//! of echo suppressors, with the path's loss learnt instead of assumed). Learning takes
//! about the bot's first third of a second of talk, on a noisy line too (levels under
//! the line's noise floor, and the sent levels whose echo would be, count as equal; a
//! path a whole number of frames and a half long is looked for too); a path that moves
//! meanwhile, or ticks with nothing heard, do not start it over. Nothing is muted
//! before (assuming the worst echo until then cut the first words of callers who talk
//! over the greeting).
//! A line that sends nothing back never locks, and nothing is muted or subtracted.
//!
//! Sans-IO: one `sent` per frame that went out, `heard` with what came in; the frame
//! clock is the only clock.

use std::collections::VecDeque;

use canceller::Canceller;

mod canceller;

/// The longest echo delay the gate finds, in frames (800 ms at 20 ms).
const MAX_DELAY: usize = 40;
/// The same in milliseconds: how long the bot's voice may still come back after it stops.
pub const MAX_DELAY_MS: u64 = MAX_DELAY as u64 * 20;
/// Frames over which the envelopes are correlated: a second of the bot talking holds
/// enough syllables that two independent voices do not correlate by chance.
const WINDOW: usize = 50;
const HISTORY: usize = MAX_DELAY + WINDOW;
/// Correlation from which the heard envelope is taken to be an echo of the sent one.
const LOCK_R: f32 = 0.85;
/// An echo path is forgotten when, with the bot talking, what comes back is this much
/// quieter than its echo would be: the echo is gone. (A caller talking over the bot
/// makes the envelopes disagree too, but louder: the path stays.)
const GONE_DB: f32 = 10.0;
/// Level in dB (re 1 LSB²) above which a sent frame counts as the bot talking (about
/// -50 dBFS).
const ACTIVE_DB: f32 = 40.0;
/// Levels below this (about -60 dBFS: a line's hiss, digital silence) count as equal.
const FLOOR_DB: f32 = 30.0;
/// Frames over which the line's noise floor is taken (5 s), the share of them quieter
/// than it, and how far above it a heard level must be to count as more than the noise.
const NOISE_FRAMES: usize = 250;
const NOISE_PERCENTILE: f32 = 0.1;
const ABOVE_NOISE_DB: f32 = 3.0;
/// A heard frame must be this much louder than the predicted echo to be the caller.
const MARGIN_DB: f32 = 6.0;
/// Frames of the window in which the bot must talk before the path is judged, and
/// frames after a first finding at which it is confirmed: together a little under the
/// 600 ms of speech that barges in, so the greeting's own echo is muted before it can.
const MIN_ACTIVE: usize = 12;
const CONFIRM_AFTER: usize = 10;
/// A correlation that two independent voices do not reach: found twice this high,
/// `SURE_AFTER` frames apart, the path is taken (the greeting's echo is then muted
/// after ~0.3 s of the bot talking, not ~0.45 s).
const SURE_R: f32 = 0.97;
const SURE_AFTER: usize = 3;
/// Frames of the bot talking in the long window on which a path at `SURE_R` is found.
const EARLY_MIN_ACTIVE: usize = 8;
/// Frames, and frames of the bot talking, of the window that finds a path at `SURE_R`.
const SHORT_WINDOW: usize = 25;
const SHORT_MIN_ACTIVE: usize = 10;
/// How far, in frames, the short window follows a path that moved.
const MAX_MOVE: usize = 4;
/// Candidates kept at once, and for how many frames.
const MAX_CANDIDATES: usize = 4;
const CANDIDATE_LIFE: usize = 2 * WINDOW;
/// How far apart two findings of one echo path's gain may be, in dB.
const GAIN_SPREAD_DB: f32 = 3.0;
/// The canceller helps a frame when it leaves it at least this much quieter.
const HELPED_DB: f32 = 1.0;
/// ERLE from which a canceller that stops helping is taken to have lost the echo.
const TRUSTED_ERLE_DB: f32 = 10.0;
/// Frames of echo a trusted canceller may fail to reduce before it looks for it again.
const SLIP_FRAMES: u32 = 8;
/// Frames a caller's frame keeps the gate open: speech louder than the echo in one
/// syllable goes on through its quieter sounds.
const HANGOVER: u32 = 15;
/// Frames of the bot talking after which a line whose echo was not found is taken to
/// send none back, once `MAX_DELAY` more frames passed for the last of them to come
/// back: a path is found after `MIN_ACTIVE` and confirmed `CONFIRM_AFTER` frames later.
/// (At most 1.24 s of the bot's first talk.)
const JUDGE_ACTIVE: usize = MIN_ACTIVE + CONFIRM_AFTER;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoPath {
    /// Frames from a sent frame to its echo.
    pub delay: usize,
    /// Echo level minus sent level, in dB (negative: quieter).
    pub gain_db: f32,
}

/// A path found once, waiting to be found again.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    path: EchoPath,
    /// Frames since it was found.
    age: usize,
    /// Found at `SURE_R` by the long window, or by the short one next to a path or
    /// candidate: taken when found so again `SURE_AFTER` frames later.
    sure: bool,
}

pub struct EchoGate {
    frame: usize,
    /// Level of each sent frame, newest last.
    sent: VecDeque<f32>,
    /// The mean level of each two sent frames in a row (`half_frame_later`), newest
    /// last, and the newest sent frame's power: kept as frames go out, not
    /// recomputed over the whole history for every frame heard.
    halves: VecDeque<f32>,
    last_power: f32,
    /// Level of each heard frame (before muting), newest last.
    heard: VecDeque<f32>,
    /// The last `NOISE_FRAMES` known heard levels, for the line's noise floor.
    noise: VecDeque<f32>,
    /// That floor as of the newest heard frame (`heard_floor`).
    floor: f32,
    pending: Vec<i16>,
    path: Option<EchoPath>,
    /// Paths found once, and frames since: one is taken when found again at least
    /// `CONFIRM_AFTER` frames later at the same delay and gain (one high correlation
    /// can be chance; the best delay of a half-filled window can also wander).
    candidates: Vec<Candidate>,
    /// Frames the gate stays open after the caller was heard over the bot.
    open: u32,
    muted: u64,
    canceller: Canceller,
    /// Frames in a row the canceller did not help with echo due.
    slipped: u32,
    /// Sent frames in which the bot talked, up to `JUDGE_ACTIVE`, then all sent frames
    /// since: the gate's evidence on a line with no path (yet).
    talked: usize,
    waited: usize,
    /// A path was found, or `waited` reached `MAX_DELAY` (it stays judged).
    judged: bool,
}

impl EchoGate {
    /// A gate for frames of `frame` samples (the packet time at the line's rate);
    /// with `cancel`, the canceller subtracts the echo first.
    pub fn new(frame: usize, cancel: bool) -> EchoGate {
        EchoGate {
            frame: frame.max(1),
            // Before the call the line was silent both ways: judging can start with
            // the bot's first words, not a second into the call.
            sent: VecDeque::from(vec![0.0; HISTORY]),
            halves: VecDeque::from(vec![0.0; HISTORY - 1]),
            last_power: power(0.0),
            heard: VecDeque::from(vec![0.0; HISTORY]),
            noise: VecDeque::with_capacity(NOISE_FRAMES),
            floor: FLOOR_DB,
            pending: Vec::new(),
            path: None,
            candidates: Vec::new(),
            open: 0,
            muted: 0,
            canceller: if cancel {
                Canceller::new(frame.max(1), MAX_DELAY)
            } else {
                Canceller::off()
            },
            slipped: 0,
            talked: 0,
            waited: 0,
            judged: false,
        }
    }

    /// A frame went out to the caller (silence counts: it keeps the clock).
    pub fn sent(&mut self, frame: &[i16]) {
        let level = level_db(frame);
        push(&mut self.sent, level, HISTORY);
        let now = power(level);
        push(
            &mut self.halves,
            db((self.last_power + now) / 2.0),
            HISTORY - 1,
        );
        self.last_power = now;
        self.canceller.sent(frame);
        if self.talked < JUDGE_ACTIVE {
            self.talked += usize::from(level >= ACTIVE_DB);
        } else if !self.judged {
            self.waited += 1;
            self.judged = self.waited >= MAX_DELAY;
        }
    }

    /// Audio from the caller: returns it with the frames that are only echo muted.
    /// Whole frames are judged; a partial one waits for the rest.
    pub fn heard(&mut self, pcm: &[i16]) -> Vec<i16> {
        self.pending.extend_from_slice(pcm);
        let whole = self.pending.len() / self.frame * self.frame;
        let mut out: Vec<i16> = self.pending.drain(..whole).collect();
        for f in out.chunks_exact_mut(self.frame) {
            let level = level_db(f);
            push(&mut self.heard, level, HISTORY);
            push(&mut self.noise, level, NOISE_FRAMES);
            self.floor = self.heard_floor();
            self.canceller.hear(f);
            self.learn();
            self.canceller.follow(self.path.map(|p| p.delay));
            let mut residual = self.canceller.residual(f);
            let mut left_db = residual.as_deref().map_or(level, level_db);
            let echo_db = self.echo_db();
            if echo_db.is_some_and(|e| self.more_than_left(left_db, e)) {
                if let Some(r) = self.canceller.follow_shift(f, left_db) {
                    left_db = level_db(&r);
                    residual = Some(r);
                }
            }
            // With echo due now: whether the frame is the caller over it.
            let caller = echo_db.map(|e| self.is_caller(level, left_db, e));
            if let Some(caller) = caller {
                self.learn_echo(caller, level, left_db, f);
            }
            if let (Some(r), true) = (residual, left_db < level - HELPED_DB) {
                f.copy_from_slice(&r);
            }
            if caller.is_some_and(|caller| self.is_echo(caller)) {
                f.fill(0);
                self.muted += 1;
            }
        }
        out
    }

    /// A frame's time passed with nothing heard (the jitter buffer ran dry): the
    /// heard history stays in step with the sent one, or every correlation over the
    /// gap would pair frames a gap apart. The frame is unknown (NaN), left out of
    /// the correlations: silence there would be changes the sent envelope lacks.
    pub fn heard_nothing(&mut self) {
        push(&mut self.heard, f32::NAN, HISTORY);
        self.canceller.hear(&vec![0; self.frame]);
    }

    pub fn path(&self) -> Option<EchoPath> {
        self.path
    }

    /// Whether the gate knows if this line sends the bot's voice back: a path was found,
    /// or the bot talked long enough for one to be found and none was. Before, speech
    /// heard while the bot talks may be its echo.
    pub fn judged(&self) -> bool {
        self.judged
    }

    /// Frames muted so far.
    pub fn muted(&self) -> u64 {
        self.muted
    }

    /// The sent level `delay` frames before the newest heard frame.
    fn sent_at(&self, delay: usize) -> Option<f32> {
        // The newest sent frame went out with the newest heard one.
        self.sent
            .len()
            .checked_sub(1 + delay)
            .and_then(|i| self.sent.get(i).copied())
    }

    /// The level the echo of what was sent comes back at now, if a path is known and
    /// the bot was talking then.
    fn echo_db(&self) -> Option<f32> {
        let path = self.path?;
        // The echo smears over a frame either side of its delay.
        let loudest = (path.delay.saturating_sub(2)..=path.delay + 2)
            .filter_map(|d| self.sent_at(d))
            .fold(f32::MIN, f32::max);
        (loudest >= ACTIVE_DB).then_some(loudest + path.gain_db)
    }

    /// Whether a frame in which echo was due is the caller: louder than the echo on its
    /// own, or louder than what the canceller leaves of it (when it did cancel: a
    /// canceller that lost the echo leaves it whole, and that is not the caller).
    fn is_caller(&self, level: f32, left_db: f32, echo_db: f32) -> bool {
        let cancelled = left_db < level - HELPED_DB && self.more_than_left(left_db, echo_db);
        level > echo_db.max(self.floor) + MARGIN_DB || cancelled
    }

    /// Whether a frame is louder than what the canceller leaves of an echo at
    /// `echo_db` (never below the line's noise floor: what it leaves of a well
    /// cancelled echo is the line's noise, and that is not the caller), by the margin.
    fn more_than_left(&self, left_db: f32, echo_db: f32) -> bool {
        left_db > (echo_db - self.canceller.erle_db()).max(self.floor) + MARGIN_DB
    }

    /// Lets the canceller learn from a frame with echo due, or notices it lost it.
    fn learn_echo(&mut self, caller: bool, level: f32, left_db: f32, frame: &[i16]) {
        self.canceller.note(level, left_db);
        if caller {
            self.slipped = 0;
        } else if left_db < level - HELPED_DB || self.canceller.erle_db() < TRUSTED_ERLE_DB {
            self.canceller.adapt(frame);
            self.slipped = 0;
        } else {
            self.slipped += 1;
            if self.slipped >= SLIP_FRAMES {
                self.canceller.realign();
                self.slipped = 0;
            }
        }
    }

    /// Whether to mute a frame in which echo was due.
    fn is_echo(&mut self, caller: bool) -> bool {
        if caller {
            self.open = HANGOVER;
            return false;
        }
        if self.open > 0 {
            self.open -= 1;
            return false;
        }
        true
    }

    /// Finds the delay at which the heard envelope best follows the sent one; forgets
    /// the path when its echo is no longer there.
    fn learn(&mut self) {
        // Newest first; both histories are always full (they start as silence).
        let heard: Vec<f32> = self.heard.iter().rev().take(WINDOW).copied().collect();
        let sent: Vec<f32> = self.sent.iter().rev().copied().collect();
        let halves: Vec<f32> = self.halves.iter().rev().copied().collect();
        let sent = Sent {
            levels: &sent,
            halves: &halves,
        };
        let floor = self.floor;
        let long = follows_at(&heard, &sent, WINDOW, EARLY_MIN_ACTIVE, floor);
        for f in long.iter().filter(|f| f.active >= MIN_ACTIVE) {
            if self
                .path
                .is_some_and(|p| p.delay == f.path.delay && f.path.gain_db < p.gain_db - GONE_DB)
            {
                tracing::debug!(gain_db = f.path.gain_db, "echo path gone");
                self.path = None;
            }
        }
        // A correlation chance does not reach is trusted on fewer frames of the bot
        // talking: the greeting's echo is found sooner.
        let early = || best_path(&long, EARLY_MIN_ACTIVE, SURE_R).map(|(r, p)| (r, p, true));
        // A path whose delay moved (the far end's jitter buffer took on a backlog while
        // we stalled) correlates in the long window only once its old delay has left
        // it: the short window follows the move, at a correlation chance does not
        // reach; a finding there is trusted soon only a few frames from a path or
        // candidate of that gain.
        let short = || {
            best_path(
                &follows_at(&heard, &sent, SHORT_WINDOW, SHORT_MIN_ACTIVE, floor),
                SHORT_MIN_ACTIVE,
                SURE_R,
            )
            .map(|(r, p)| (r, p, self.moved_from_known(&p)))
        };
        let best = best_path(&long, MIN_ACTIVE, LOCK_R)
            .map(|(r, p)| (r, p, r >= SURE_R))
            .or_else(early)
            .or_else(short);
        for c in &mut self.candidates {
            c.age += 1;
        }
        self.candidates.retain(|c| c.age < CANDIDATE_LIFE);
        let Some((r, found, sure)) = best else {
            return;
        };
        let near = |p: &EchoPath| p.delay.abs_diff(found.delay) <= 1;
        if self.path.as_ref().is_some_and(near) {
            // The known path, tracked.
            self.path = Some(found);
            return;
        }
        match self.candidates.iter().position(|c| near(&c.path)) {
            Some(i) => {
                let c = self.candidates[i];
                let after = if c.sure && sure {
                    SURE_AFTER
                } else {
                    CONFIRM_AFTER
                };
                if c.age >= after && (c.path.gain_db - found.gain_db).abs() <= GAIN_SPREAD_DB {
                    tracing::debug!(r, ?found, "echo path");
                    self.path = Some(found);
                    self.judged = true;
                    self.candidates.clear();
                }
            }
            None if self.candidates.len() < MAX_CANDIDATES => self.candidates.push(Candidate {
                path: found,
                age: 0,
                sure,
            }),
            None => {}
        }
    }

    /// The level below which what is heard may be the line's noise alone: a little
    /// above the quietest tenth of the last 5 s (never below `FLOOR_DB`).
    fn heard_floor(&self) -> f32 {
        let mut levels: Vec<f32> = self.noise.iter().copied().collect();
        if levels.is_empty() {
            return FLOOR_DB;
        }
        let i = ((levels.len() - 1) as f32 * NOISE_PERCENTILE) as usize;
        let (_, quiet, _) = levels.select_nth_unstable_by(i, f32::total_cmp);
        (*quiet + ABOVE_NOISE_DB).max(FLOOR_DB)
    }

    /// Whether `p` is within `MAX_MOVE` frames of the known path or a candidate, at
    /// about its gain.
    fn moved_from_known(&self, p: &EchoPath) -> bool {
        self.path
            .iter()
            .chain(self.candidates.iter().map(|c| &c.path))
            .any(|k| {
                k.delay.abs_diff(p.delay) <= MAX_MOVE
                    && (k.gain_db - p.gain_db).abs() <= GAIN_SPREAD_DB
            })
    }
}

/// How well the heard envelope follows the sent one at one delay.
struct Follow {
    r: f32,
    path: EchoPath,
    /// Frames of the window in which the bot talked.
    active: usize,
}

/// The sent envelope, newest first: each frame's level, and the mean level of each
/// two frames in a row (`halves[i]` of `levels[i]` and `levels[i + 1]`): what a heard
/// frame holds of an echo delayed by a whole number of frames and a half. The rises
/// and falls of an echo whose delay is not a whole number of frames are split between
/// two heard frames, and follow neither sent frame as well as both (a hybrid's 31 ms
/// echo on a noisy line was learnt only after 1.4 s of the greeting without this).
struct Sent<'a> {
    levels: &'a [f32],
    halves: &'a [f32],
}

/// How the newest `window` heard levels follow the sent ones at each delay at which
/// the bot talked in at least `min_active` frames of the window. Heard levels are
/// taken no lower than the line's noise `floor`, and sent ones no lower than what
/// would come back at it: on a noisy line the echo's quiet sounds are lost in the
/// noise, and the sent envelope must lose them too, or its rises and falls out of
/// the pauses match nothing heard (line noise at 51 dB against a -10 dB echo of a
/// greeting at ~65 dB: never found).
fn follows_at(
    heard: &[f32],
    sent: &Sent,
    window: usize,
    min_active: usize,
    floor: f32,
) -> Vec<Follow> {
    let heard = &heard[..window];
    // Every delay's correlation reuses these: no allocation per delay (this runs for
    // every frame heard on every call).
    let mut heard_changes = [0.0; WINDOW];
    let heard_changes = changes(heard, floor, &mut heard_changes);
    let mut sent_changes = [0.0; WINDOW];
    (0..=MAX_DELAY)
        .filter_map(|delay| {
            let span = delay..delay + window;
            let active = sent.levels[span.clone()]
                .iter()
                .filter(|&&l| l >= ACTIVE_DB)
                .count();
            if active < min_active {
                return None;
            }
            // At the frame's delay, and half a frame later.
            [
                &sent.levels[span.clone()],
                sent.halves.get(span).unwrap_or_default(),
            ]
            .into_iter()
            .filter(|levels| levels.len() == window)
            .filter_map(|levels| {
                let gain_db = mean_gain(heard, levels);
                let floor = (floor - gain_db).max(FLOOR_DB);
                let sent_changes = changes(levels, floor, &mut sent_changes);
                Some((pearson(heard_changes, sent_changes)?, gain_db))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(r, gain_db)| Follow {
                r,
                path: EchoPath { delay, gain_db },
                active,
            })
        })
        .collect()
}

/// The best-correlated path with the bot talking in `min_active` frames, if it
/// correlates at `min_r`.
fn best_path(follows: &[Follow], min_active: usize, min_r: f32) -> Option<(f32, EchoPath)> {
    follows
        .iter()
        .filter(|f| f.active >= min_active && f.r >= min_r)
        .max_by(|a, b| a.r.total_cmp(&b.r))
        .map(|f| (f.r, f.path))
}

fn push(history: &mut VecDeque<f32>, level: f32, cap: usize) {
    if history.len() == cap {
        history.pop_front();
    }
    history.push_back(level);
}

/// Frame-to-frame changes of level above a floor, written to `out` (as long as
/// `levels`): the changes fill all but its last place. Correlating the changes, not
/// the levels, makes two voices' talk and pause patterns (which alone can line up by
/// chance over a second) count for less than each rise and fall landing on the same
/// frame, which only an echo does at many frames in a row.
fn changes<'a>(levels: &[f32], floor: f32, out: &'a mut [f32]) -> &'a [f32] {
    let n = levels.len().saturating_sub(1);
    for (o, w) in out.iter_mut().zip(levels.windows(2)) {
        // An unknown level (NaN) makes its changes unknown too (`max` would hide it).
        *o = match w[0].is_nan() || w[1].is_nan() {
            true => f32::NAN,
            false => w[0].max(floor) - w[1].max(floor),
        };
    }
    &out[..n]
}

/// Mean power of a frame in dB re 1 LSB² (0 for digital silence).
fn level_db(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return 0.0;
    }
    let power = frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / frame.len() as f64;
    (10.0 * (power + 1.0).log10()) as f32
}

/// A level in dB back to power, and power to dB.
fn power(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

fn db(power: f32) -> f32 {
    10.0 * power.log10()
}

/// Echo level minus sent level, over the frames where the bot talked.
fn mean_gain(heard: &[f32], sent: &[f32]) -> f32 {
    let (sum, n) = heard
        .iter()
        .zip(sent)
        .filter(|(h, &s)| s >= ACTIVE_DB && !h.is_nan())
        .fold((0.0, 0usize), |(sum, n), (h, s)| (sum + (h - s), n + 1));
    sum / n.max(1) as f32
}

/// Pearson correlation over the pairs whose `a` is known (not NaN); `None` when
/// either side is flat (a steady tone or silence tells nothing about delay) or most
/// of `a` is unknown.
fn pearson(a: &[f32], b: &[f32]) -> Option<f32> {
    // Called for every delay of every frame: the known pairs are filtered, not copied,
    // and gone over twice (the means, then the products).
    let pairs = || a.iter().zip(b).filter(|(x, _)| !x.is_nan());
    let (known, sa, sb) = pairs().fold((0usize, 0.0f32, 0.0f32), |(k, sa, sb), (x, y)| {
        (k + 1, sa + x, sb + y)
    });
    if known * 2 < a.len() {
        return None;
    }
    let n = known as f32;
    let (ma, mb) = (sa / n, sb / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in pairs() {
        ab += (x - ma) * (y - mb);
        aa += (x - ma) * (x - ma);
        bb += (y - mb) * (y - mb);
    }
    // Less than ~1 dB of spread is flat.
    (aa / n > 1.0 && bb / n > 1.0).then(|| ab / (aa * bb).sqrt())
}

#[cfg(test)]
mod tests;
