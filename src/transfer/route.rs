//! Which switchboard queue a call goes to, and whether it is open now.
//!
//! Built once from `[transfer]` (every mistake in it is an error at start, naming the
//! queue), then asked per transfer with the topic and the current local time.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::hours::{Calendar, WeekHours};
use crate::config::{QueueConfig, TransferConfig};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RouteError {
    #[error("[transfer] timezone {0:?} is not an IANA zone name")]
    Timezone(String),
    #[error("[transfer] closed_dates: {0:?} is not a YYYY-MM-DD date")]
    Date(String),
    #[error("[transfer] queue {queue:?}: {message}")]
    Queue { queue: String, message: String },
    #[error("[transfer] default_queue {0:?} is not one of the queues")]
    Default(String),
    #[error("[transfer] method {0:?}: use \"refer\" or \"bridge\"")]
    Method(String),
}

#[derive(Debug, Clone)]
pub struct Queue {
    pub name: String,
    pub uri: String,
    /// What a REFER names (`refer_uri`), when it is not `uri`.
    pub public_uri: Option<String>,
    topics: Vec<String>,
    pub hours: WeekHours,
    open_on_holidays: bool,
    spoken_da: String,
    spoken_en: String,
}

impl Queue {
    pub fn spoken(&self, language: &str) -> &str {
        if language == "en" {
            &self.spoken_en
        } else {
            &self.spoken_da
        }
    }
}

/// The router's answer for one transfer.
#[derive(Debug, Clone, PartialEq)]
pub enum Route<'a> {
    Open(&'a Queue),
    Closed {
        queue: &'a Queue,
        /// When it opens next (local time), if within two weeks.
        reopens: Option<NaiveDateTime>,
    },
}

impl PartialEq for Queue {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

#[derive(Debug, Clone)]
pub struct Router {
    queues: Vec<Queue>,
    default: usize,
    calendar: Calendar,
    tz: Tz,
}

impl Router {
    pub fn from_config(c: &TransferConfig) -> Result<Router, RouteError> {
        let tz: Tz = c
            .timezone
            .parse()
            .map_err(|_| RouteError::Timezone(c.timezone.clone()))?;
        if !matches!(c.method.as_str(), "refer" | "bridge") {
            return Err(RouteError::Method(c.method.clone()));
        }
        let extra_closed = c
            .closed_dates
            .iter()
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| RouteError::Date(d.clone()))
            })
            .collect::<Result<_, _>>()?;
        let queues: Vec<Queue> = c.queues.iter().map(queue).collect::<Result<_, _>>()?;
        let default = match &c.default_queue {
            Some(name) => queues
                .iter()
                .position(|q| &q.name == name)
                .ok_or_else(|| RouteError::Default(name.clone()))?,
            None => 0,
        };
        Ok(Router {
            queues,
            default,
            calendar: Calendar { extra_closed },
            tz,
        })
    }

    pub fn queues(&self) -> &[Queue] {
        &self.queues
    }

    pub fn queue(&self, name: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.name == name)
    }

    pub fn local_time(&self, now: DateTime<Utc>) -> NaiveDateTime {
        now.with_timezone(&self.tz).naive_local()
    }

    /// The queue for `topic` (the default queue for none or an unrouted one) and
    /// whether it is open at local time `at`. None when no queue is configured.
    pub fn route(&self, topic: Option<&str>, at: NaiveDateTime) -> Option<Route<'_>> {
        let queue = topic
            .and_then(|t| self.queues.iter().find(|q| q.topics.iter().any(|x| x == t)))
            .or_else(|| self.queues.get(self.default))?;
        let closed_day = !queue.open_on_holidays && self.calendar.is_closed_day(at.date());
        Some(if !closed_day && queue.hours.is_open(at) {
            Route::Open(queue)
        } else {
            Route::Closed {
                queue,
                reopens: self
                    .calendar
                    .next_open(&queue.hours, queue.open_on_holidays, at),
            }
        })
    }
}

fn queue(c: &QueueConfig) -> Result<Queue, RouteError> {
    let err = |message: String| RouteError::Queue {
        queue: c.name.clone(),
        message,
    };
    let uri_ok = |u: &str| {
        (u.starts_with("sip:") || u.starts_with("tel:"))
            && u.len() > 4
            && !u.contains(char::is_whitespace)
    };
    if !uri_ok(&c.uri) {
        return Err(err(format!("uri {:?} is not a sip: or tel: URI", c.uri)));
    }
    if let Some(alias) = c.refer_uri.as_deref().filter(|u| !uri_ok(u)) {
        return Err(err(format!(
            "refer_uri {alias:?} is not a sip: or tel: URI"
        )));
    }
    let hours = WeekHours::parse(&c.hours).map_err(|e| err(format!("hours: {e}")))?;
    Ok(Queue {
        name: c.name.clone(),
        uri: c.uri.clone(),
        public_uri: c.refer_uri.clone(),
        topics: c.topics.clone(),
        hours,
        open_on_holidays: c.open_on_holidays,
        spoken_da: c.spoken_da.clone().unwrap_or_else(|| c.name.clone()),
        spoken_en: c.spoken_en.clone().unwrap_or_else(|| c.name.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn router(extra: &str) -> Router {
        let c = Config::parse(&format!(
            r#"[transfer]
            default_queue = "borgerservice"
            {extra}
            [[transfer.queues]]
            name = "affald"
            uri = "sip:affald@192.0.2.10"
            topics = ["affald"]
            hours = {{ mon = "07:00-12:00", tue = "07:00-12:00" }}
            [[transfer.queues]]
            name = "borgerservice"
            uri = "tel:+4546311000"
            hours = {{ mon = "10:00-15:00", tue = "10:00-15:00", wed = "10:00-15:00", thu = "10:00-17:30", fri = "10:00-13:00" }}
            spoken_da = "Borgerservice"
            [[transfer.queues]]
            name = "socialvagt"
            uri = "sip:vagt@192.0.2.11"
            topics = ["socialt"]
            hours = {{ mon = "00:00-24:00", tue = "00:00-24:00", wed = "00:00-24:00", thu = "00:00-24:00", fri = "00:00-24:00", sat = "00:00-24:00", sun = "00:00-24:00" }}
            open_on_holidays = true
            "#
        ))
        .unwrap();
        Router::from_config(&c.transfer).unwrap()
    }

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    fn name(r: Option<Route<'_>>) -> (String, bool) {
        match r.unwrap() {
            Route::Open(q) => (q.name.clone(), true),
            Route::Closed { queue, .. } => (queue.name.clone(), false),
        }
    }

    #[test]
    fn topics_pick_their_queue_and_others_go_to_the_default() {
        let r = router("");
        let monday = at(2027, 3, 1, 11, 0);
        assert_eq!(
            name(r.route(Some("affald"), monday)),
            ("affald".into(), true)
        );
        assert_eq!(
            name(r.route(Some("pas_koerekort"), monday)),
            ("borgerservice".into(), true)
        );
        assert_eq!(name(r.route(None, monday)), ("borgerservice".into(), true));
        assert_eq!(
            name(r.route(Some("affald"), at(2027, 3, 1, 12, 30))),
            ("affald".into(), false)
        );
    }

    #[test]
    fn holidays_close_every_queue_but_a_24_7_line() {
        let r = router("");
        // Kristi himmelfartsdag 2027 is Thursday 6 May; 2. pinsedag Monday 17 May.
        for day in [at(2027, 5, 6, 11, 0), at(2027, 5, 17, 11, 0)] {
            assert_eq!(name(r.route(None, day)), ("borgerservice".into(), false));
            assert_eq!(name(r.route(Some("affald"), day)), ("affald".into(), false));
            assert_eq!(
                name(r.route(Some("socialt"), day)),
                ("socialvagt".into(), true)
            );
        }
        let Some(Route::Closed { reopens, .. }) = r.route(None, at(2027, 5, 6, 11, 0)) else {
            panic!()
        };
        assert_eq!(reopens, Some(at(2027, 5, 7, 10, 0)));
    }

    #[test]
    fn extra_closed_dates_close_too() {
        let r = router(r#"closed_dates = ["2027-03-02"]"#);
        assert_eq!(
            name(r.route(None, at(2027, 3, 2, 11, 0))),
            ("borgerservice".into(), false)
        );
        assert_eq!(
            name(r.route(None, at(2027, 3, 3, 11, 0))),
            ("borgerservice".into(), true)
        );
    }

    #[test]
    fn local_time_is_copenhagen_with_summer_time() {
        let r = router("");
        let winter: DateTime<Utc> = "2027-01-04T09:30:00Z".parse().unwrap();
        assert_eq!(r.local_time(winter), at(2027, 1, 4, 10, 30));
        let summer: DateTime<Utc> = "2027-06-07T09:30:00Z".parse().unwrap();
        assert_eq!(r.local_time(summer), at(2027, 6, 7, 11, 30));
    }

    #[test]
    fn config_mistakes_are_errors_naming_the_queue() {
        let bad = |toml: &str| {
            let c = Config::parse(toml).unwrap();
            Router::from_config(&c.transfer).unwrap_err().to_string()
        };
        let e = bad("[[transfer.queues]]\nname = \"x\"\nuri = \"http://a\"\nhours = {}\n");
        assert!(e.contains("\"x\"") && e.contains("uri"), "{e}");
        let e = bad("[[transfer.queues]]\nname = \"z\"\nuri = \"sip:a@b\"\nrefer_uri = \"a b\"\nhours = {}\n");
        assert!(e.contains("\"z\"") && e.contains("refer_uri"), "{e}");
        let e = bad(
            "[[transfer.queues]]\nname = \"y\"\nuri = \"sip:a@b\"\nhours = { mon = \"9-5\" }\n",
        );
        assert!(e.contains("\"y\"") && e.contains("mon"), "{e}");
        let e = bad("[transfer]\ndefault_queue = \"nope\"\n");
        assert!(e.contains("nope"), "{e}");
        let e = bad("[transfer]\ntimezone = \"Mars/Olympus\"\n");
        assert!(e.contains("Mars"), "{e}");
        let e = bad("[transfer]\nclosed_dates = [\"24-12-2027\"]\n");
        assert!(e.contains("24-12-2027"), "{e}");
    }

    #[test]
    fn the_embedded_default_routes_to_borgerservice() {
        let r = Router::from_config(&TransferConfig::default()).unwrap();
        assert_eq!(
            name(r.route(None, at(2027, 3, 1, 11, 0))),
            ("borgerservice".into(), true)
        );
    }
}
