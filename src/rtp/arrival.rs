//! Interarrival jitter (RFC 3550 §6.4.1): how unevenly a caller's packets arrive,
//! against their RTP timestamps. Sans-IO: fed each packet's arrival time.

use std::time::Instant;

#[derive(Debug, Default)]
pub struct ArrivalJitter {
    last: Option<(Instant, u32)>,
    /// In timestamp units (8 kHz samples), smoothed by 1/16 as the RFC says.
    jitter: f64,
}

impl ArrivalJitter {
    pub fn on_packet(&mut self, arrival: Instant, timestamp: u32) {
        if let Some((prev_arrival, prev_ts)) = self.last {
            let arrived = arrival
                .saturating_duration_since(prev_arrival)
                .as_secs_f64()
                * 8000.0;
            let sent = timestamp.wrapping_sub(prev_ts) as i32 as f64;
            let d = (arrived - sent).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last = Some((arrival, timestamp));
    }

    /// None until a packet has arrived.
    pub fn seconds(&self) -> Option<f64> {
        self.last.map(|_| self.jitter / 8000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn evenly_spaced_packets_have_no_jitter_and_uneven_ones_do() {
        let t0 = Instant::now();
        let mut even = ArrivalJitter::default();
        for i in 0..100u32 {
            even.on_packet(t0 + Duration::from_millis(20 * i as u64), i * 160);
        }
        assert_eq!(ArrivalJitter::default().seconds(), None);
        let even = even.seconds().unwrap();
        assert!(even < 1e-6, "{even}");
        // Every other packet 10 ms late: |D| alternates 10 ms; J converges to 10 ms.
        let mut uneven = ArrivalJitter::default();
        for i in 0..400u32 {
            let late = if i % 2 == 1 { 10 } else { 0 };
            uneven.on_packet(t0 + Duration::from_millis(20 * i as u64 + late), i * 160);
        }
        let uneven = uneven.seconds().unwrap();
        assert!((uneven - 0.010).abs() < 0.0005, "{uneven}");
    }
}
