use super::*;
use crate::ops::records::TurnRecord;

fn now() -> DateTime<Tz> {
    // Wednesday 2 December 2026, 10:20 in Copenhagen (09:20 UTC).
    chrono_tz::Europe::Copenhagen
        .with_ymd_and_hms(2026, 12, 2, 10, 20, 0)
        .unwrap()
}

fn call(ended: DateTime<Tz>, outcome: &str, topic: &str, replies: &[f32]) -> CallRecord {
    CallRecord {
        call_id: format!("{outcome}-{}", ended.timestamp()),
        tenant: "default".into(),
        started: ended.timestamp() - 60,
        ended: ended.timestamp(),
        language: "da".into(),
        topic: Some(topic.into()),
        outcome: outcome.into(),
        sms_sent: false,
        turns: replies
            .iter()
            .map(|r| TurnRecord {
                text: Some("x".into()),
                intent: None,
                confidence: None,
                answered: true,
                reply_secs: Some(*r),
                answered_by: "bot".into(),
            })
            .collect(),
    }
}

#[test]
fn bins_end_with_the_current_hour_or_local_day() {
    let day = Bins::new(Range::Day, now());
    assert_eq!(day.labels.len(), 24);
    assert_eq!(
        (day.labels[0].as_str(), day.labels[23].as_str()),
        ("11", "10")
    );
    assert_eq!(day.of(now().timestamp()), Some(23));
    assert_eq!(day.of(now().timestamp() - 86_400), None, "before the range");
    let week = Bins::new(Range::Week, now());
    assert_eq!(week.labels.last().unwrap(), "02/12");
    let midnight = chrono_tz::Europe::Copenhagen
        .with_ymd_and_hms(2026, 12, 2, 0, 0, 0)
        .unwrap();
    assert_eq!(week.of(midnight.timestamp()), Some(6));
    assert_eq!(
        week.of(midnight.timestamp() - 1),
        Some(5),
        "local days, not UTC days"
    );
    assert_eq!(Bins::new(Range::Month, now()).labels.len(), 30);
    assert!("year".parse::<Range>().is_err());
}

#[test]
fn each_chart_draws_the_calls_of_the_range() {
    let hour = Duration::hours(1);
    let calls = [
        call(now(), "resolved", "affald", &[0.8, 1.2]),
        call(now(), "unresolved", "affald", &[6.0]),
        call(now() - hour, "transferred", "pas_koerekort", &[0.3]),
        call(now() - hour * 2, "out_of_hours", "pas_koerekort", &[]),
        call(now() - hour * 30, "resolved", "mitid", &[0.1]),
    ];
    let chart = |name, range| render(name, range, now(), &calls, None).unwrap();

    let day = chart("calls", Range::Day);
    assert!(
        day.contains("data-series=\"resolved\" data-bin=\"10\" data-value=\"1\""),
        "{day}"
    );
    assert!(day.contains("data-series=\"unresolved\" data-bin=\"10\" data-value=\"1\""));
    assert!(day.contains("data-series=\"transferred\" data-bin=\"09\" data-value=\"1\""));
    assert!(!day.contains("mitid"), "30 hours ago is not in the day");
    let week = chart("calls", Range::Week);
    assert!(
        week.contains("data-series=\"resolved\" data-bin=\"01/12\" data-value=\"1\""),
        "{week}"
    );

    let rate = chart("resolution", Range::Day);
    assert!(
        rate.contains("data-bin=\"10\" data-value=\"0.500\""),
        "{rate}"
    );
    assert!(rate.contains("data-bin=\"09\" data-value=\"0.000\""));
    let topics = chart("topics", Range::Day);
    assert!(
        topics.contains("data-bin=\"affald\" data-value=\"0.500\""),
        "{topics}"
    );
    let latency = chart("latency", Range::Day);
    assert!(
        latency.contains("data-bin=\"0.5\" data-value=\"1\""),
        "{latency}"
    );
    assert!(latency.contains("data-bin=\"≥5\" data-value=\"1\""));
    assert!(latency.contains("p50 0.8 s"), "{latency}");
    let out = chart("out_of_hours", Range::Day);
    assert!(out.contains("Uden for åbningstid: 25 %"), "{out}");
    assert!(chart("sms", Range::Day).contains("ingen afsender"));
    let sms = [
        (now().timestamp(), "delivered"),
        (now().timestamp(), "sent"),
    ];
    let drawn = render("sms", Range::Day, now(), &calls, Some(&sms)).unwrap();
    assert!(
        drawn.contains("data-series=\"delivered\" data-bin=\"10\" data-value=\"1\""),
        "{drawn}"
    );
    assert!(render("pie", Range::Day, now(), &calls, None).is_none());
}
