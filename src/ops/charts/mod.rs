//! The dashboard's charts over a range (a day, a week, a month), drawn on the server
//! as SVG ([`svg`]) from the call records and the SMS outbox: calls per hour (or day)
//! with their outcomes stacked, the resolution rate over time and per topic, the
//! reply-latency distribution, the share out of opening hours, and SMS sent and
//! delivered. Served at `/api/charts/{name}?range=day|week|month`.

pub mod svg;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, DurationRound, TimeZone};
use chrono_tz::Tz;
use serde::Deserialize;

use super::http::OpsState;
use super::records::{CallRecord, Records};
use super::summary::{percentile, resolution_rate};
use svg::Series;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Day,
    Week,
    Month,
}

impl FromStr for Range {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(Range::Day),
            "week" => Ok(Range::Week),
            "month" => Ok(Range::Month),
            other => Err(format!("range must be day, week or month, not {other:?}")),
        }
    }
}

/// The charts there are, by name.
pub const NAMES: [&str; 6] = [
    "calls",
    "resolution",
    "topics",
    "latency",
    "out_of_hours",
    "sms",
];

/// Outcomes in stacking order, with their colours; others are grey.
const OUTCOMES: [(&str, &str); 7] = [
    ("resolved", "#2a7"),
    ("transferred", "#36c"),
    ("unresolved", "#e90"),
    ("error", "#c33"),
    ("out_of_hours", "#85c"),
    ("abandoned", "#999"),
    ("interrupted", "#555"),
];

/// The range cut into equal bins ending with the one that holds `now`: hours for a
/// day, days (local midnight to midnight) for a week or a month.
pub struct Bins {
    pub start: i64,
    pub width: i64,
    pub labels: Vec<String>,
}

impl Bins {
    pub fn new(range: Range, now: DateTime<Tz>) -> Bins {
        let (n, width) = match range {
            Range::Day => (24, Duration::hours(1)),
            Range::Week => (7, Duration::days(1)),
            Range::Month => (30, Duration::days(1)),
        };
        let first_of_last = match range {
            Range::Day => now.duration_trunc(width).unwrap_or(now),
            // Local midnight; a DST gap at midnight falls back to the hour truncation.
            _ => now
                .timezone()
                .from_local_datetime(&now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default())
                .earliest()
                .unwrap_or(now),
        };
        let start = first_of_last - width * (n - 1);
        let labels = (0..n)
            .map(|i| {
                let t = start + width * i;
                match range {
                    Range::Day => t.format("%H").to_string(),
                    _ => t.format("%d/%m").to_string(),
                }
            })
            .collect();
        Bins {
            start: start.timestamp(),
            width: width.num_seconds(),
            labels,
        }
    }

    pub fn of(&self, unix: i64) -> Option<usize> {
        let i = (unix - self.start).div_euclid(self.width);
        usize::try_from(i).ok().filter(|i| *i < self.labels.len())
    }

    fn per_bin<T>(&self, items: impl Iterator<Item = (i64, T)>) -> Vec<Vec<T>> {
        let mut out: Vec<Vec<T>> = (0..self.labels.len()).map(|_| Vec::new()).collect();
        for (t, item) in items {
            if let Some(i) = self.of(t) {
                out[i].push(item);
            }
        }
        out
    }
}

fn outcome_color(outcome: &str) -> &'static str {
    OUTCOMES
        .iter()
        .find(|(o, _)| *o == outcome)
        .map_or("#bbb", |(_, c)| c)
}

/// Stacked layers of how many items per bin fall in each group, groups in `order`
/// first, then the rest by name.
fn layers<'a>(
    per_bin: &[Vec<&'a str>],
    order: &[&str],
    color: impl Fn(&str) -> &'static str,
) -> Vec<Series> {
    let mut counts: BTreeMap<&'a str, Vec<f64>> = BTreeMap::new();
    for (i, bin) in per_bin.iter().enumerate() {
        for g in bin {
            counts.entry(g).or_insert_with(|| vec![0.0; per_bin.len()])[i] += 1.0;
        }
    }
    let rank = |g: &str| order.iter().position(|o| *o == g).unwrap_or(order.len());
    let mut groups: Vec<(&str, Vec<f64>)> = counts.into_iter().collect();
    groups.sort_by_key(|(g, _)| rank(g));
    groups
        .into_iter()
        .map(|(g, values)| Series {
            name: g.to_string(),
            color: color(g),
            values,
        })
        .collect()
}

fn unit(range: Range) -> &'static str {
    match range {
        Range::Day => "time",
        _ => "dag",
    }
}

/// Reply-latency bins: half seconds up to 5 s, then one for all slower.
const LATENCY_STEP: f32 = 0.5;
const LATENCY_BINS: usize = 11;

/// Chart `name` over `calls` (ended in the range) and `sms` (created then: unix time,
/// status); `None` for an unknown name.
pub fn render(
    name: &str,
    range: Range,
    now: DateTime<Tz>,
    calls: &[CallRecord],
    sms: Option<&[(i64, &'static str)]>,
) -> Option<String> {
    let bins = Bins::new(range, now);
    let by_bin = bins.per_bin(calls.iter().map(|c| (c.ended, c)));
    let order: Vec<&str> = OUTCOMES.iter().map(|(o, _)| *o).collect();
    Some(match name {
        "calls" => {
            let outcomes: Vec<Vec<&str>> = by_bin
                .iter()
                .map(|b| b.iter().map(|c| c.outcome.as_str()).collect())
                .collect();
            svg::stacked_bars(
                name,
                &format!("Opkald pr. {} efter udfald", unit(range)),
                &bins.labels,
                &layers(&outcomes, &order, outcome_color),
            )
        }
        "resolution" => {
            let rates: Vec<Option<f64>> = by_bin
                .iter()
                .map(|b| resolution_rate(b.iter().copied()))
                .collect();
            svg::rate_line(
                name,
                &format!("Afklaringsgrad pr. {}", unit(range)),
                &bins.labels,
                &rates,
            )
        }
        "topics" => {
            let mut topics: BTreeMap<&str, Vec<&CallRecord>> = BTreeMap::new();
            for c in by_bin.iter().flatten() {
                topics
                    .entry(c.topic.as_deref().unwrap_or("(intet emne)"))
                    .or_default()
                    .push(c);
            }
            let mut rows: Vec<(String, f64, String)> = topics
                .into_iter()
                .filter_map(|(t, cs)| {
                    let rate = resolution_rate(cs.iter().copied())?;
                    Some((t.to_string(), rate, format!("{} opkald", cs.len())))
                })
                .collect();
            rows.sort_by(|a, b| b.2.len().cmp(&a.2.len()).then(b.2.cmp(&a.2)));
            rows.truncate(8);
            svg::rate_bars(name, "Afklaringsgrad pr. emne", &rows)
        }
        "latency" => {
            let mut replies: Vec<f32> = by_bin
                .iter()
                .flatten()
                .flat_map(|c| &c.turns)
                .filter_map(|t| t.reply_secs)
                .collect();
            replies.sort_by(f32::total_cmp);
            let mut counts = vec![0.0; LATENCY_BINS];
            for r in &replies {
                counts[((r / LATENCY_STEP) as usize).min(LATENCY_BINS - 1)] += 1.0;
            }
            let labels: Vec<String> = (0..LATENCY_BINS)
                .map(|i| match i {
                    i if i == LATENCY_BINS - 1 => format!("≥{:.0}", i as f32 * LATENCY_STEP),
                    i => format!("{:.1}", i as f32 * LATENCY_STEP),
                })
                .collect();
            let p = |q| percentile(&replies, q).map_or("–".into(), |s| format!("{s:.1} s"));
            svg::stacked_bars(
                name,
                &format!("Svartid pr. tur (s): p50 {}, p95 {}", p(50), p(95)),
                &labels,
                &[Series {
                    name: "ture".into(),
                    color: "#36c",
                    values: counts,
                }],
            )
        }
        "out_of_hours" => {
            let when: Vec<Vec<&str>> = by_bin
                .iter()
                .map(|b| {
                    b.iter()
                        .map(|c| match c.outcome.as_str() {
                            "out_of_hours" => "uden for åbningstid",
                            _ => "i åbningstid",
                        })
                        .collect()
                })
                .collect();
            let total = by_bin.iter().map(Vec::len).sum::<usize>();
            let out = when
                .iter()
                .flatten()
                .filter(|w| w.starts_with("uden"))
                .count();
            let share = match total {
                0 => "–".to_string(),
                n => format!("{:.0} %", 100.0 * out as f64 / n as f64),
            };
            svg::stacked_bars(
                name,
                &format!("Uden for åbningstid: {share}"),
                &bins.labels,
                &layers(&when, &["i åbningstid", "uden for åbningstid"], |w| {
                    if w.starts_with("uden") {
                        "#85c"
                    } else {
                        "#ccc"
                    }
                }),
            )
        }
        "sms" => match sms {
            Some(sms) => {
                let statuses = bins.per_bin(sms.iter().copied());
                svg::stacked_bars(
                    name,
                    &format!("SMS pr. {}: sendt og leveret", unit(range)),
                    &bins.labels,
                    &layers(
                        &statuses,
                        &["delivered", "sent", "sending", "queued", "failed"],
                        |s| match s {
                            "delivered" => "#2a7",
                            "sent" => "#36c",
                            "failed" => "#c33",
                            _ => "#bbb",
                        },
                    ),
                )
            }
            None => svg::stacked_bars(
                name,
                "SMS: ingen afsender sat op ([sms] sender)",
                &bins.labels,
                &[],
            ),
        },
        _ => return None,
    })
}

#[derive(Deserialize)]
pub struct RangeQuery {
    range: Option<String>,
}

/// `GET /api/charts/{name}?range=day|week|month` (default day): image/svg+xml.
pub async fn chart(
    State(state): State<Arc<OpsState>>,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let range = match q.range.as_deref().unwrap_or("day").parse::<Range>() {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let now = chrono::Utc::now().with_timezone(&state.timezone);
    let since = Bins::new(range, now).start;
    let records = state.records.clone();
    let outbox = state.sms_outbox.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let calls = Records::open(&records)
            .map_err(|e| e.to_string())?
            .since(since);
        let sms = match outbox {
            Some(store) => Some(
                crate::sms::outbox::Outbox::open(&store.backend, &store.node)
                    .and_then(|mut o| o.created_since(since))
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        Ok::<_, String>((calls.map_err(|e| e.to_string())?, sms))
    })
    .await;
    match loaded {
        Ok(Ok((calls, sms))) => match render(&name, range, now, &calls, sms.as_deref()) {
            Some(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
            None => {
                let e = format!("no chart {name:?}; there are {}", NAMES.join(", "));
                (StatusCode::NOT_FOUND, e).into_response()
            }
        },
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests;
