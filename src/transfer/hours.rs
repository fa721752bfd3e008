//! Opening hours of a switchboard queue, and the Danish public holidays that close
//! every queue.
//!
//! Pure functions of a local date and time: the driver converts the wall clock to the
//! configured zone (Europe/Copenhagen) once, and tests walk a whole year with a fake
//! clock.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use serde::{Deserialize, Deserializer};

/// One open interval in a day, `08:00-15:30`; `24:00` may end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Minutes after midnight.
    pub open: u32,
    pub close: u32,
}

impl std::str::FromStr for Interval {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?} is not HH:MM-HH:MM"))?;
        let minutes = |t: &str| -> Result<u32, String> {
            let (h, m) = t
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("{t:?} is not HH:MM"))?;
            let (h, m): (u32, u32) = (
                h.parse().map_err(|_| format!("bad hour in {t:?}"))?,
                m.parse().map_err(|_| format!("bad minute in {t:?}"))?,
            );
            if m > 59 || h > 24 || (h == 24 && m > 0) {
                return Err(format!("{t:?} is not a time of day"));
            }
            Ok(h * 60 + m)
        };
        let (open, close) = (minutes(a)?, minutes(b)?);
        if open >= close {
            return Err(format!("{s:?} closes before it opens"));
        }
        Ok(Interval { open, close })
    }
}

/// Open intervals per weekday; a day not listed is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeekHours {
    /// Monday first.
    days: [Vec<Interval>; 7],
}

const KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl WeekHours {
    pub fn day(&self, weekday: Weekday) -> &[Interval] {
        &self.days[weekday.num_days_from_monday() as usize]
    }

    /// From `{ mon = "08:00-15:00", fri = ["08:00-12:00", "13:00-14:00"] }`.
    pub fn parse(table: &toml::Table) -> Result<WeekHours, String> {
        let mut hours = WeekHours::default();
        for (key, value) in table {
            let i = KEYS
                .iter()
                .position(|k| k == key)
                .ok_or_else(|| format!("unknown day {key:?} (use mon..sun)"))?;
            let texts: Vec<&str> = match value {
                toml::Value::String(s) => vec![s.as_str()],
                toml::Value::Array(a) => a
                    .iter()
                    .map(|v| v.as_str().ok_or_else(|| format!("{key}: not a string")))
                    .collect::<Result<_, _>>()?,
                _ => return Err(format!("{key}: give \"HH:MM-HH:MM\" or a list of them")),
            };
            let mut intervals: Vec<Interval> = texts
                .iter()
                .map(|t| t.parse().map_err(|e| format!("{key}: {e}")))
                .collect::<Result<_, String>>()?;
            intervals.sort_by_key(|i| i.open);
            hours.days[i] = intervals;
        }
        Ok(hours)
    }

    pub fn is_open(&self, at: NaiveDateTime) -> bool {
        let minute = at
            .time()
            .signed_duration_since(NaiveTime::MIN)
            .num_minutes() as u32;
        self.day(at.weekday())
            .iter()
            .any(|i| (i.open..i.close).contains(&minute))
    }

    /// The hours read aloud, consecutive days with the same hours grouped:
    /// "mandag til onsdag fra 10 til 15, torsdag fra 10 til 17.30".
    pub fn describe(&self, language: &str) -> String {
        let (names, to, from, and) = if language == "en" {
            (
                [
                    "Monday",
                    "Tuesday",
                    "Wednesday",
                    "Thursday",
                    "Friday",
                    "Saturday",
                    "Sunday",
                ],
                "to",
                "from",
                "and",
            )
        } else {
            (
                [
                    "mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag",
                ],
                "til",
                "fra",
                "og",
            )
        };
        let clock = |m: u32| {
            if m.is_multiple_of(60) {
                format!("{}", m / 60)
            } else {
                format!("{}.{:02}", m / 60, m % 60)
            }
        };
        let mut parts = Vec::new();
        let mut d = 0;
        while d < 7 {
            let mut e = d;
            while e + 1 < 7 && self.days[e + 1] == self.days[d] {
                e += 1;
            }
            if !self.days[d].is_empty() {
                let days = if e == d {
                    names[d].to_string()
                } else {
                    format!("{} {to} {}", names[d], names[e])
                };
                let spans: Vec<String> = self.days[d]
                    .iter()
                    .map(|i| format!("{from} {} {to} {}", clock(i.open), clock(i.close)))
                    .collect();
                parts.push(format!("{days} {}", spans.join(&format!(" {and} "))));
            }
            d = e + 1;
        }
        parts.join(", ")
    }
}

impl<'de> Deserialize<'de> for WeekHours {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(d)?;
        WeekHours::parse(&table).map_err(serde::de::Error::custom)
    }
}

/// Easter Sunday (Gregorian), by the anonymous Gregorian algorithm (Meeus/Jones/Butcher).
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("Easter is a date")
}

/// Why a date is closed, in Danish (the municipality's calendar).
pub fn danish_holiday(date: NaiveDate) -> Option<&'static str> {
    let fixed = match (date.month(), date.day()) {
        (1, 1) => Some("nytårsdag"),
        // Not public holidays by law, but municipal offices close (as do most employers).
        (6, 5) => Some("grundlovsdag"),
        (12, 24) => Some("juleaftensdag"),
        (12, 25) => Some("1. juledag"),
        (12, 26) => Some("2. juledag"),
        (12, 31) => Some("nytårsaftensdag"),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    let offset = (date - easter(date.year())).num_days();
    // Store bededag (Easter + 26) was abolished from 2024.
    match offset {
        -3 => Some("skærtorsdag"),
        -2 => Some("langfredag"),
        0 => Some("påskedag"),
        1 => Some("2. påskedag"),
        39 => Some("Kristi himmelfartsdag"),
        49 => Some("pinsedag"),
        50 => Some("2. pinsedag"),
        _ => None,
    }
}

/// The calendar every queue shares: holidays plus extra closed dates from config.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    pub extra_closed: Vec<NaiveDate>,
}

impl Calendar {
    pub fn is_closed_day(&self, date: NaiveDate) -> bool {
        danish_holiday(date).is_some() || self.extra_closed.contains(&date)
    }

    /// The next moment at or after `from` that `hours` is open, within two weeks.
    pub fn next_open(
        &self,
        hours: &WeekHours,
        open_on_holidays: bool,
        from: NaiveDateTime,
    ) -> Option<NaiveDateTime> {
        (0..15).find_map(|d| {
            let date = from.date() + Duration::days(d);
            if !open_on_holidays && self.is_closed_day(date) {
                return None;
            }
            hours
                .day(date.weekday())
                .iter()
                .map(|i| date.and_time(NaiveTime::MIN) + Duration::minutes(i.open as i64))
                .map(|open| open.max(from))
                .find(|t| hours.is_open(*t) && t.date() == date)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn at(date: NaiveDate, h: u32, m: u32) -> NaiveDateTime {
        date.and_hms_opt(h, m, 0).unwrap()
    }

    fn office() -> WeekHours {
        let table: toml::Table = toml::from_str(
            r#"mon = "08:00-15:00"
               tue = "08:00-15:00"
               wed = "08:00-15:00"
               thu = ["08:00-12:00", "13:00-17:30"]
               fri = "08:00-13:00""#,
        )
        .unwrap();
        WeekHours::parse(&table).unwrap()
    }

    #[test]
    fn easter_dates_match_the_almanac() {
        assert_eq!(easter(2024), d(2024, 3, 31));
        assert_eq!(easter(2025), d(2025, 4, 20));
        assert_eq!(easter(2026), d(2026, 4, 5));
        assert_eq!(easter(2027), d(2027, 3, 28));
        assert_eq!(easter(2038), d(2038, 4, 25));
    }

    #[test]
    fn the_2027_holidays_are_closed_and_the_days_around_them_are_not() {
        let holidays = [
            (d(2027, 1, 1), "nytårsdag"),
            (d(2027, 3, 25), "skærtorsdag"),
            (d(2027, 3, 26), "langfredag"),
            (d(2027, 3, 28), "påskedag"),
            (d(2027, 3, 29), "2. påskedag"),
            (d(2027, 5, 6), "Kristi himmelfartsdag"),
            (d(2027, 5, 16), "pinsedag"),
            (d(2027, 5, 17), "2. pinsedag"),
            (d(2027, 6, 5), "grundlovsdag"),
            (d(2027, 12, 24), "juleaftensdag"),
            (d(2027, 12, 25), "1. juledag"),
            (d(2027, 12, 26), "2. juledag"),
            (d(2027, 12, 31), "nytårsaftensdag"),
        ];
        let mut closed = Vec::new();
        let mut day = d(2027, 1, 1);
        while day.year() == 2027 {
            if let Some(name) = danish_holiday(day) {
                closed.push((day, name));
            }
            day += Duration::days(1);
        }
        assert_eq!(closed, holidays);
        // Store bededag (4th Friday after Easter) is a working day since 2024.
        assert_eq!(danish_holiday(d(2027, 4, 23)), None);
    }

    #[test]
    fn a_queue_is_open_only_in_its_hours_over_a_whole_week() {
        let h = office();
        let monday = d(2027, 3, 1);
        assert!(!h.is_open(at(monday, 7, 59)));
        assert!(h.is_open(at(monday, 8, 0)));
        assert!(h.is_open(at(monday, 14, 59)));
        assert!(!h.is_open(at(monday, 15, 0)));
        let thursday = d(2027, 3, 4);
        assert!(!h.is_open(at(thursday, 12, 30)), "lunch break");
        assert!(h.is_open(at(thursday, 17, 29)));
        assert!(!h.is_open(at(d(2027, 3, 5), 13, 0)), "Friday closes at 13");
        assert!(!h.is_open(at(d(2027, 3, 6), 10, 0)), "Saturday");
        assert!(!h.is_open(at(d(2027, 3, 7), 10, 0)), "Sunday");
    }

    #[test]
    fn next_open_skips_weekends_and_easter() {
        let cal = Calendar::default();
        let h = office();
        // Wednesday before Easter 2027 after closing: Thursday to Monday are closed.
        let wed = at(d(2027, 3, 24), 16, 0);
        assert_eq!(
            cal.next_open(&h, false, wed),
            Some(at(d(2027, 3, 30), 8, 0))
        );
        // During opening hours it is now.
        let tue = at(d(2027, 3, 30), 9, 15);
        assert_eq!(cal.next_open(&h, false, tue), Some(tue));
        // Thursday lunch: the afternoon.
        assert_eq!(
            cal.next_open(&h, false, at(d(2027, 4, 1), 12, 10)),
            Some(at(d(2027, 4, 1), 13, 0))
        );
        let extra = Calendar {
            extra_closed: vec![d(2027, 3, 30)],
        };
        assert_eq!(
            extra.next_open(&h, false, wed),
            Some(at(d(2027, 3, 31), 8, 0))
        );
    }

    #[test]
    fn hours_are_read_aloud_grouped() {
        assert_eq!(
            office().describe("da"),
            "mandag til onsdag fra 8 til 15, torsdag fra 8 til 12 og fra 13 til 17.30, fredag fra 8 til 13"
        );
        assert_eq!(
            office().describe("en"),
            "Monday to Wednesday from 8 to 15, Thursday from 8 to 12 and from 13 to 17.30, Friday from 8 to 13"
        );
    }

    #[test]
    fn bad_hours_are_errors_naming_the_day() {
        let bad = |s: &str| WeekHours::parse(&toml::from_str(s).unwrap()).unwrap_err();
        assert!(bad(r#"mon = "15:00-08:00""#).contains("mon"));
        assert!(bad(r#"monday = "08:00-15:00""#).contains("monday"));
        assert!(bad(r#"fri = "8-13""#).contains("fri"));
        assert!(bad(r#"sat = "08:00-25:00""#).contains("sat"));
        assert!(WeekHours::parse(&toml::from_str(r#"sun = "00:00-24:00""#).unwrap()).is_ok());
    }
}
