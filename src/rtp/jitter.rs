//! Receive-side jitter buffer: a sans-IO state machine.
//!
//! Packets arrive out of order, twice, late or never. The buffer hands out frames in
//! sequence order on each playout tick, drops duplicates and packets whose turn has
//! passed, and conceals a missing packet rather than stalling. It also keeps the RFC
//! 3550 interarrival jitter estimate for the metrics.
//!
//! It plays a packet at the first tick after it arrives, and waits only across a gap:
//! a missing packet with later ones here is waited for up to `depth - 1` ticks before
//! it is concealed. A recogniser needs order, not a cushion: a fixed hold of `depth`
//! packets (60 ms) came on top of every turn's end and every barge-in.
//!
//! What a late packet or a burst holds up stays held, so the buffer grows to what the
//! line's jitter needs. A network stall ends in a burst (everything held up arrives at
//! once); played one packet per tick, it would delay all the caller says for the rest
//! of the call (every turn's end heard that much later, the echo path moved). So the
//! buffer watches the fewest packets it held over each second: a packet held behind
//! the one due for a whole second was never needed against jitter, and that standing
//! backlog is shed in quiet frames only (the caller's `quiet` test): never a word of
//! the caller's, and callers pause often (between sentences, and whenever the bot
//! speaks).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Accepted,
    Duplicate,
    /// Its playout time has passed (or it is absurdly far ahead): dropped.
    Late,
}

/// What one playout step yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The next packet's payload, in order.
    Frame { seq: u16, payload: Vec<u8> },
    /// The next packet is missing but later ones are here: play a concealment frame.
    Concealed { seq: u16 },
    /// Nothing to play: the sender paused, or a missing packet is waited for.
    Empty,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub duplicates: u64,
    pub late: u64,
    pub lost: u64,
    /// Frames dropped to shed a standing backlog.
    pub shed: u64,
}

pub struct JitterBuffer {
    /// The most packets a missing one is waited for behind (its wait is `depth - 1`
    /// ticks): the jitter tolerated before a packet counts as lost.
    depth: usize,
    /// Ticks the missing head packet has been waited for.
    waited: usize,
    /// Extended (wrap-free) sequence number of the next packet to play.
    next: Option<u64>,
    highest: Option<u64>,
    /// Payloads by extended sequence number, with when each arrived.
    slots: BTreeMap<u64, (Vec<u8>, Instant)>,
    /// When the packet played last arrived.
    played_arrival: Option<Instant>,
    playing: bool,
    stats: Stats,
    clock_rate: u32,
    jitter: f64,
    last_transit: Option<f64>,
    epoch: Option<Instant>,
    backlog: Backlog,
}

/// Packets further ahead than this are treated as garbage, not as a future to wait for.
const MAX_AHEAD: u64 = 500;
/// Playout steps over which the fewest packets held is taken (1 s at 20 ms).
const LEVEL_WINDOW: u32 = 50;
/// The level watch and what it found owing.
#[derive(Debug, Default)]
struct Backlog {
    steps: u32,
    fewest: Option<u64>,
    owed: u64,
}

impl Backlog {
    /// One playout step holding `held` packets (the one due counts); at the end of a
    /// window, whether it held more than that one throughout, and so how many to shed.
    fn observe(&mut self, held: u64) {
        self.fewest = Some(self.fewest.map_or(held, |f| f.min(held)));
        self.steps += 1;
        if self.steps < LEVEL_WINDOW {
            return;
        }
        let fewest = self.fewest.take().unwrap_or(0);
        self.steps = 0;
        if self.owed == 0 && fewest > 1 {
            self.owed = fewest - 1;
        }
    }

    /// A new talk spurt starts with nothing held: nothing is owed.
    fn reset(&mut self) {
        *self = Backlog::default();
    }
}

impl JitterBuffer {
    pub fn new(depth: usize, clock_rate: u32) -> Self {
        JitterBuffer {
            depth: depth.max(1),
            waited: 0,
            next: None,
            highest: None,
            slots: BTreeMap::new(),
            played_arrival: None,
            playing: false,
            stats: Stats::default(),
            clock_rate,
            jitter: 0.0,
            last_transit: None,
            epoch: None,
            backlog: Backlog::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// RFC 3550 §6.4.1 interarrival jitter.
    pub fn jitter(&self) -> Duration {
        Duration::from_secs_f64(self.jitter / self.clock_rate as f64)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// When the packet played last (since the previous ask) arrived: the buffer
    /// held it from then to its tick.
    pub fn take_played_arrival(&mut self) -> Option<Instant> {
        self.played_arrival.take()
    }

    /// Frames of a standing backlog still to be shed.
    pub fn shedding(&self) -> u64 {
        self.backlog.owed
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn extend(&self, seq: u16) -> u64 {
        match self.highest {
            None => seq as u64 + (1 << 16),
            Some(h) => {
                // Pick the candidate in the cycle nearest to the highest seen so far.
                let base = h & !0xFFFF;
                [base.wrapping_sub(1 << 16), base, base + (1 << 16)]
                    .into_iter()
                    .map(|b| b + seq as u64)
                    .min_by_key(|c| c.abs_diff(h))
                    .unwrap_or(base + seq as u64)
            }
        }
    }

    pub fn push(&mut self, now: Instant, seq: u16, timestamp: u32, payload: Vec<u8>) -> Push {
        self.update_jitter(now, timestamp);
        let ext = self.extend(seq);
        if let Some(next) = self.next {
            let late = self.playing && ext < next;
            if late || ext.abs_diff(next) > MAX_AHEAD {
                self.stats.late += 1;
                return Push::Late;
            }
        }
        if self.slots.contains_key(&ext) {
            self.stats.duplicates += 1;
            return Push::Duplicate;
        }
        self.stats.received += 1;
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.slots.insert(ext, (payload, now));
        if !self.playing {
            // Before playout starts an earlier packet may still arrive and become the head.
            self.next = Some(self.next.map_or(ext, |n| n.min(ext)));
        }
        Push::Accepted
    }

    fn update_jitter(&mut self, now: Instant, timestamp: u32) {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = now.duration_since(epoch).as_secs_f64() * self.clock_rate as f64;
        let transit = arrival - timestamp as f64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            // Timestamp wrap or a new talk spurt source gives a huge d: ignore it.
            if d < self.clock_rate as f64 {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
    }

    /// One playout step: called once per packet interval by the driver's clock.
    /// `quiet` tells a frame that may be dropped unheard (silence, line noise).
    pub fn pop(&mut self, quiet: impl Fn(&[u8]) -> bool) -> Playout {
        let Some(mut next) = self.next else {
            return Playout::Empty;
        };
        if !self.playing {
            if self.slots.is_empty() {
                return Playout::Empty;
            }
            self.playing = true;
            self.backlog.reset();
        }
        let held = self.highest.map_or(0, |h| (h + 1).saturating_sub(next));
        self.backlog.observe(held);
        let shed = self.backlog.owed > 0 && held > 1;
        if shed && self.slots.get(&next).is_some_and(|(head, _)| quiet(head)) {
            self.slots.remove(&next);
            self.stats.shed += 1;
            self.backlog.owed -= 1;
            next += 1;
            self.next = Some(next);
        }
        if let Some((payload, arrived)) = self.slots.remove(&next) {
            self.next = Some(next + 1);
            self.waited = 0;
            self.played_arrival = Some(arrived);
            return Playout::Frame {
                seq: next as u16,
                payload,
            };
        }
        if self.slots.is_empty() {
            // Underrun: the sender paused or stopped, or this packet is late. Playout
            // restarts with whichever packet comes next.
            self.playing = false;
            self.next = None;
            self.waited = 0;
            return Playout::Empty;
        }
        if self.waited + 1 < self.depth {
            self.waited += 1;
            return Playout::Empty;
        }
        self.waited = 0;
        self.stats.lost += 1;
        self.next = Some(next + 1);
        Playout::Concealed { seq: next as u16 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(seq: u16) -> Vec<u8> {
        seq.to_be_bytes().to_vec()
    }

    fn drain(jb: &mut JitterBuffer) -> Vec<Playout> {
        let mut out = Vec::new();
        loop {
            let p = jb.pop(|_| false);
            if p == Playout::Empty {
                return out;
            }
            out.push(p);
        }
    }

    fn seqs(out: &[Playout]) -> Vec<(u16, bool)> {
        out.iter()
            .map(|p| match p {
                Playout::Frame { seq, payload } => {
                    assert_eq!(payload, &super::tests::payload(*seq));
                    (*seq, true)
                }
                Playout::Concealed { seq } => (*seq, false),
                Playout::Empty => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn plays_a_packet_at_the_first_tick_after_it_arrives() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(3, 8000);
        assert_eq!(jb.pop(|_| false), Playout::Empty);
        for s in 10u16..13 {
            jb.push(t, s, s as u32 * 160, payload(s));
            assert_eq!(seqs(&[jb.pop(|_| false)]), vec![(s, true)]);
        }
    }

    #[test]
    fn reorders() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(4, 8000);
        for s in [3u16, 1, 2, 0] {
            jb.push(t, s, s as u32 * 160, payload(s));
        }
        assert_eq!(
            seqs(&drain(&mut jb)),
            vec![(0, true), (1, true), (2, true), (3, true)]
        );
    }

    #[test]
    fn drops_duplicates_and_late_packets() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(2, 8000);
        assert_eq!(jb.push(t, 5, 0, payload(5)), Push::Accepted);
        assert_eq!(jb.push(t, 5, 0, payload(5)), Push::Duplicate);
        assert_eq!(jb.push(t, 6, 160, payload(6)), Push::Accepted);
        assert_eq!(seqs(&[jb.pop(|_| false)]), vec![(5, true)]);
        assert_eq!(jb.push(t, 5, 0, payload(5)), Push::Late);
        assert_eq!(jb.push(t, 4, 0, payload(4)), Push::Late);
        let s = jb.stats();
        assert_eq!((s.received, s.duplicates, s.late), (2, 1, 2));
    }

    /// One pop per tick, `ticks` times; Empty ticks are left out.
    fn ticks(jb: &mut JitterBuffer, ticks: usize) -> Vec<Playout> {
        (0..ticks)
            .map(|_| jb.pop(|_| false))
            .filter(|p| *p != Playout::Empty)
            .collect()
    }

    #[test]
    fn a_missing_packet_is_waited_for_depth_less_one_ticks_then_concealed() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(3, 8000);
        for s in [0u16, 1, 3, 4] {
            jb.push(t, s, s as u32 * 160, payload(s));
        }
        assert_eq!(seqs(&ticks(&mut jb, 2)), vec![(0, true), (1, true)]);
        assert_eq!(jb.pop(|_| false), Playout::Empty, "2 is waited for");
        assert_eq!(jb.pop(|_| false), Playout::Empty, "and again");
        assert_eq!(
            seqs(&ticks(&mut jb, 3)),
            vec![(2, false), (3, true), (4, true)]
        );
        assert_eq!(jb.stats().lost, 1);
        assert_eq!(jb.push(t, 2, 320, payload(2)), Push::Late);
    }

    #[test]
    fn a_late_packet_within_the_wait_is_played_in_its_place() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(3, 8000);
        for s in [0u16, 2] {
            jb.push(t, s, s as u32 * 160, payload(s));
        }
        assert_eq!(seqs(&ticks(&mut jb, 2)), vec![(0, true)]);
        jb.push(t, 1, 160, payload(1));
        assert_eq!(seqs(&ticks(&mut jb, 2)), vec![(1, true), (2, true)]);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn a_depth_of_one_conceals_a_gap_at_once() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(1, 8000);
        for s in [0u16, 2] {
            jb.push(t, s, s as u32 * 160, payload(s));
        }
        assert_eq!(
            seqs(&ticks(&mut jb, 3)),
            vec![(0, true), (1, false), (2, true)]
        );
    }

    #[test]
    fn survives_sequence_wrap() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(3, 8000);
        for s in [65534u16, 0, 65535, 1] {
            jb.push(t, s, 0, payload(s));
        }
        assert_eq!(
            seqs(&drain(&mut jb)),
            vec![(65534, true), (65535, true), (0, true), (1, true)]
        );
    }

    #[test]
    fn garbage_far_ahead_is_not_waited_for() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(1, 8000);
        jb.push(t, 100, 0, payload(100));
        assert_eq!(jb.push(t, 30000, 0, payload(30000)), Push::Late);
        assert_eq!(seqs(&drain(&mut jb)), vec![(100, true)]);
    }

    #[test]
    fn after_an_underrun_playout_restarts_with_the_next_packet() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(2, 8000);
        jb.push(t, 0, 0, payload(0));
        jb.push(t, 1, 160, payload(1));
        assert_eq!(drain(&mut jb).len(), 2);
        assert_eq!(jb.pop(|_| false), Playout::Empty, "the sender paused");
        jb.push(t, 7, 1120, payload(7));
        assert_eq!(seqs(&[jb.pop(|_| false)]), vec![(7, true)]);
        assert_eq!(jb.stats().lost, 0, "a pause is not a loss");
    }

    /// A line: packet `seq` is sent at tick `seq`; those sent during the stall (ticks
    /// `stall`) arrive together at its end; `loud(seq)` says whether it carries speech.
    /// Returns the packets held after each tick's playout from `from` on, and the
    /// sequence numbers played.
    fn line(
        jb: &mut JitterBuffer,
        ticks: u16,
        stall: std::ops::Range<u16>,
        loud: impl Fn(u16) -> bool,
    ) -> (Vec<usize>, Vec<u16>) {
        let t = Instant::now();
        let (mut held, mut played) = (Vec::new(), Vec::new());
        for tick in 0..ticks {
            let arriving = if stall.contains(&tick) {
                0..0
            } else if tick == stall.end {
                stall.start..tick + 1
            } else {
                tick..tick + 1
            };
            for seq in arriving {
                let at = t + Duration::from_millis(20 * tick as u64);
                jb.push(at, seq, seq as u32 * 160, vec![loud(seq) as u8]);
            }
            if let Playout::Frame { seq, .. } = jb.pop(|p| p == [0]) {
                played.push(seq);
            }
            held.push(jb.len());
        }
        (held, played)
    }

    #[test]
    fn a_backlog_after_a_network_stall_is_shed_in_quiet_frames() {
        let mut jb = JitterBuffer::new(3, 8000);
        // 300 ms stall at 2 s; speech in 200 ms runs with 200 ms pauses.
        let speech = |seq: u16| (seq / 10).is_multiple_of(2);
        let (held, played) = line(&mut jb, 400, 100..115, speech);
        assert!(
            held[90..100].iter().all(|&h| h <= 3),
            "{:?}",
            &held[90..100]
        );
        assert!(held[116] >= 14, "the burst is held: {}", held[116]);
        // A window to see the backlog stand, then a few pauses to shed it in.
        assert!(
            held[250..].iter().all(|&h| h == 0),
            "backlog kept: {:?}",
            &held[250..260]
        );
        let skipped: Vec<u16> = (0..*played.last().unwrap())
            .filter(|s| !played.contains(s))
            .collect();
        assert_eq!(skipped.len() as u64, jb.stats().shed);
        assert_eq!(skipped.len(), 15, "the whole stall: {skipped:?}");
        assert!(
            skipped.iter().all(|&s| !speech(s)),
            "speech shed: {skipped:?}"
        );
        assert!(played.windows(2).all(|w| w[0] < w[1]), "in order");
    }

    #[test]
    fn speech_is_never_shed_the_backlog_goes_at_the_next_pause() {
        let mut jb = JitterBuffer::new(3, 8000);
        // The caller talks without a break from before the stall to 6 s, then pauses.
        let speech = |seq: u16| seq < 300;
        let (held, played) = line(&mut jb, 400, 100..115, speech);
        assert!(held[116] >= 14);
        assert!(held[290] >= 14, "speech shed: {}", held[290]);
        assert!(held[330..].iter().all(|&h| h == 0), "{:?}", &held[330..340]);
        assert_eq!(jb.stats().shed, 15);
        let words: Vec<u16> = played.iter().copied().filter(|&s| speech(s)).collect();
        assert_eq!(
            words,
            (0..300).collect::<Vec<u16>>(),
            "every word, in order"
        );
    }

    #[test]
    fn a_frame_held_up_by_one_late_packet_is_shed_after_a_second() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(3, 8000);
        let mut held = Vec::new();
        for tick in 0..200u16 {
            // Packet 10 comes a tick late, with 11: from then on one frame waits.
            let arriving: &[u16] = match tick {
                10 => &[],
                11 => &[10, 11],
                _ => &[tick],
            };
            for &seq in arriving {
                jb.push(t, seq, seq as u32 * 160, vec![0]);
            }
            jb.pop(|_| true);
            held.push(jb.len());
        }
        assert!(held[11..50].iter().all(|&h| h == 1), "{:?}", &held[11..50]);
        assert!(held[110..].iter().all(|&h| h == 0), "{:?}", &held[100..120]);
        assert_eq!(jb.stats().shed, 1);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn jitter_within_the_depth_is_never_shed() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(3, 8000);
        // Each packet 0–60 ms late (a fixed pseudo-random sequence), so they also reorder.
        let mut rng = 12345u32;
        let mut arrivals: Vec<(u32, u16)> = (0..3000u16)
            .map(|seq| {
                rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seq as u32 + (rng >> 16) % 4, seq)
            })
            .collect();
        arrivals.sort();
        let mut arriving = arrivals.into_iter().peekable();
        for tick in 0..3010u32 {
            while let Some((_, seq)) = arriving.next_if(|&(at, _)| at <= tick) {
                let at = t + Duration::from_millis(20 * tick as u64);
                jb.push(at, seq, seq as u32 * 160, vec![0]);
            }
            jb.pop(|_| true);
        }
        assert_eq!(jb.stats().shed, 0);
        assert!(jb.stats().received > 2900);
    }

    #[test]
    fn jitter_estimate_follows_arrival_variation() {
        let t0 = Instant::now();
        let mut steady = JitterBuffer::new(1, 8000);
        let mut jumpy = JitterBuffer::new(1, 8000);
        for i in 0..200u32 {
            let ideal = t0 + Duration::from_millis(20 * i as u64);
            steady.push(ideal, i as u16, i * 160, vec![]);
            let wobble = Duration::from_millis(if i % 2 == 0 { 0 } else { 15 });
            jumpy.push(ideal + wobble, i as u16, i * 160, vec![]);
        }
        assert!(
            steady.jitter() < Duration::from_micros(200),
            "{:?}",
            steady.jitter()
        );
        let j = jumpy.jitter();
        assert!(
            j > Duration::from_millis(10) && j < Duration::from_millis(16),
            "{j:?}"
        );
    }
}
