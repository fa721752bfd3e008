//! RFC 4733 telephone-events: DTMF digits carried in RTP.
//!
//! One key press is many packets sharing an RTP timestamp (updates, then three end
//! packets). The detector reports each press once, on its first packet, so a caller
//! pressing 0 is heard without waiting for the key to be released.

/// The digit for an RFC 4733 event code (0–9, *, #, A–D).
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

pub fn digit_to_event(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

impl EventPayload {
    pub fn parse(payload: &[u8]) -> Option<EventPayload> {
        if payload.len() < 4 {
            return None;
        }
        Some(EventPayload {
            event: payload[0],
            end: payload[1] & 0x80 != 0,
            volume: payload[1] & 0x3F,
            duration: u16::from_be_bytes([payload[2], payload[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// Turns a stream of telephone-event packets into digits, once per key press.
#[derive(Debug, Default)]
pub struct DtmfDetector {
    last_timestamp: Option<u32>,
}

impl DtmfDetector {
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = EventPayload::parse(payload)?;
        if self.last_timestamp == Some(timestamp) {
            return None;
        }
        self.last_timestamp = Some(timestamp);
        event_to_digit(ev.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_all_sixteen_events() {
        let digits: String = (0..16).filter_map(event_to_digit).collect();
        assert_eq!(digits, "0123456789*#ABCD");
        for (i, d) in digits.chars().enumerate() {
            assert_eq!(digit_to_event(d), Some(i as u8));
        }
        assert_eq!(event_to_digit(16), None);
        assert_eq!(digit_to_event('x'), None);
    }

    #[test]
    fn parses_the_wire_format() {
        // Event 5, end bit, volume 10, duration 800 (100 ms at 8 kHz).
        let ev = EventPayload::parse(&[5, 0x8A, 0x03, 0x20]).unwrap();
        assert_eq!(
            ev,
            EventPayload {
                event: 5,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(ev.to_bytes(), [5, 0x8A, 0x03, 0x20]);
        assert_eq!(EventPayload::parse(&[1, 2, 3]), None);
    }

    #[test]
    fn one_digit_per_key_press_despite_updates_and_repeated_ends() {
        let mut det = DtmfDetector::default();
        let press = |ev: u8, end: bool, dur: u16| {
            EventPayload {
                event: ev,
                end,
                volume: 10,
                duration: dur,
            }
            .to_bytes()
        };
        let mut got = String::new();
        for (ts, p) in [
            (1000, press(1, false, 160)),
            (1000, press(1, false, 320)),
            (1000, press(1, true, 480)),
            (1000, press(1, true, 480)),
            (1000, press(1, true, 480)),
            (2000, press(11, false, 160)),
            (2000, press(11, true, 320)),
            (3000, press(1, true, 320)), // same digit again, new press
        ] {
            got.extend(det.on_packet(ts, &p));
        }
        assert_eq!(got, "1#1");
    }
}
