//! Receive-side jitter buffer: a sans-IO state machine.
//!
//! Packets arrive out of order, twice, late or never. The buffer holds a small fixed
//! delay, hands out frames in sequence order on each playout tick, drops duplicates and
//! packets whose turn has passed, and conceals a missing packet rather than stalling.
//! It also keeps the RFC 3550 interarrival jitter estimate for the metrics.

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
    /// Nothing to play: still filling, or the sender paused.
    Empty,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub duplicates: u64,
    pub late: u64,
    pub lost: u64,
}

pub struct JitterBuffer {
    /// How many packets to hold before playout starts.
    depth: usize,
    /// Extended (wrap-free) sequence number of the next packet to play.
    next: Option<u64>,
    highest: Option<u64>,
    slots: BTreeMap<u64, Vec<u8>>,
    playing: bool,
    stats: Stats,
    clock_rate: u32,
    jitter: f64,
    last_transit: Option<f64>,
    epoch: Option<Instant>,
}

/// Packets further ahead than this are treated as garbage, not as a future to wait for.
const MAX_AHEAD: u64 = 500;

impl JitterBuffer {
    pub fn new(depth: usize, clock_rate: u32) -> Self {
        JitterBuffer {
            depth: depth.max(1),
            next: None,
            highest: None,
            slots: BTreeMap::new(),
            playing: false,
            stats: Stats::default(),
            clock_rate,
            jitter: 0.0,
            last_transit: None,
            epoch: None,
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
        self.slots.insert(ext, payload);
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
    pub fn pop(&mut self) -> Playout {
        let Some(next) = self.next else {
            return Playout::Empty;
        };
        if !self.playing {
            if self.slots.len() < self.depth {
                return Playout::Empty;
            }
            self.playing = true;
        }
        if let Some(payload) = self.slots.remove(&next) {
            self.next = Some(next + 1);
            return Playout::Frame {
                seq: next as u16,
                payload,
            };
        }
        if self.slots.is_empty() {
            // Underrun: the sender paused or stopped. Refill before playing again.
            self.playing = false;
            self.next = None;
            return Playout::Empty;
        }
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
            let p = jb.pop();
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
    fn waits_for_depth_then_plays_in_order() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(3, 8000);
        jb.push(t, 10, 0, payload(10));
        jb.push(t, 11, 160, payload(11));
        assert_eq!(jb.pop(), Playout::Empty);
        jb.push(t, 12, 320, payload(12));
        assert_eq!(
            seqs(&drain(&mut jb)),
            vec![(10, true), (11, true), (12, true)]
        );
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
        assert_eq!(seqs(&[jb.pop()]), vec![(5, true)]);
        assert_eq!(jb.push(t, 5, 0, payload(5)), Push::Late);
        assert_eq!(jb.push(t, 4, 0, payload(4)), Push::Late);
        let s = jb.stats();
        assert_eq!((s.received, s.duplicates, s.late), (2, 1, 2));
    }

    #[test]
    fn conceals_a_gap_and_counts_it_lost() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(2, 8000);
        for s in [0u16, 1, 3, 4] {
            jb.push(t, s, s as u32 * 160, payload(s));
        }
        assert_eq!(
            seqs(&drain(&mut jb)),
            vec![(0, true), (1, true), (2, false), (3, true), (4, true)]
        );
        assert_eq!(jb.stats().lost, 1);
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
    fn underrun_refills_before_playing_again() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(2, 8000);
        jb.push(t, 0, 0, payload(0));
        jb.push(t, 1, 160, payload(1));
        assert_eq!(drain(&mut jb).len(), 2);
        jb.push(t, 7, 1120, payload(7));
        assert_eq!(jb.pop(), Playout::Empty, "one packet is below the depth");
        jb.push(t, 8, 1280, payload(8));
        assert_eq!(seqs(&drain(&mut jb)), vec![(7, true), (8, true)]);
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
