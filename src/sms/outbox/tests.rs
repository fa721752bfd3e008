//! The outbox on both engines (`storage::scenarios`).
use super::*;
use crate::storage::scenarios::{file_from_before_migrations, on_sqlite_and_postgres};
use crate::storage::Backend;
use std::time::UNIX_EPOCH;

/// Opens the scenario's outbox (again) as the gateway named.
type Open<'a> = &'a dyn Fn(&str) -> Outbox;

fn open(backend: &Backend, node: &str) -> Outbox {
    Outbox::open(backend, node).unwrap()
}

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn anna() -> E164 {
    E164::parse("+4520123456").unwrap()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_secs(10),
        max: Duration::from_secs(100),
        max_attempts: 3,
    }
}

fn receipt(id: &str, stat: &str) -> Receipt {
    Receipt::parse(&format!("id:{id} stat:{stat}")).unwrap()
}

fn enqueue_is_idempotent_per_key(open: Open) {
    let mut o = open("a");
    let Enqueued::New(id) = o.enqueue("c1/affald", &anna(), "hej", 5, t(0)).unwrap() else {
        panic!()
    };
    assert_eq!(
        o.enqueue("c1/affald", &anna(), "hej igen", 5, t(1))
            .unwrap(),
        Enqueued::Duplicate(id)
    );
    let m = o.get(id).unwrap().unwrap();
    assert_eq!(
        (m.text.as_str(), m.status, m.attempts),
        ("hej", Status::Queued, 0)
    );
    assert_eq!(m.to, anna());
    assert_eq!(m.created_at, t(0));
    assert_eq!(m.sender, None, "the configured [sms] from");
    let Enqueued::New(id) = o
        .enqueue_from("c2/affald", &anna(), "hej", Some("Nordby"), 5, t(2))
        .unwrap()
    else {
        panic!()
    };
    let m = o.get(id).unwrap().unwrap();
    assert_eq!(m.sender.as_deref(), Some("Nordby"), "a tenant's own sender");
}

fn per_number_limit_over_24_hours(open: Open) {
    let mut o = open("a");
    for i in 0..3 {
        assert!(matches!(
            o.enqueue(&format!("c{i}"), &anna(), "x", 3, t(i)).unwrap(),
            Enqueued::New(_)
        ));
    }
    assert_eq!(o.recent_count(&anna(), t(10)).unwrap(), 3);
    assert_eq!(
        o.enqueue("c9", &anna(), "x", 3, t(10)).unwrap(),
        Enqueued::Limited { recent: 3 }
    );
    // Another number is not affected, and a day later the first one is free again.
    let other = E164::parse("+4530123456").unwrap();
    assert!(matches!(
        o.enqueue("d1", &other, "x", 3, t(10)).unwrap(),
        Enqueued::New(_)
    ));
    assert_eq!(o.recent_count(&anna(), t(24 * 3600)).unwrap(), 2);
    assert!(matches!(
        o.enqueue("c9", &anna(), "x", 3, t(24 * 3600)).unwrap(),
        Enqueued::New(_)
    ));
}

fn claim_retry_and_give_up_with_a_fake_clock(open: Open) {
    let mut o = open("a");
    o.enqueue("k", &anna(), "x", 5, t(0)).unwrap();
    assert_eq!(o.next_due().unwrap(), Some(t(0)));
    let m = o.claim_due(t(0)).unwrap().unwrap();
    assert_eq!((m.status, m.attempts), (Status::Sending, 1));
    assert_eq!(o.claim_due(t(0)).unwrap(), None, "claimed once");
    assert_eq!(
        o.mark_retry(m.id, "link down", &policy(), t(1)).unwrap(),
        AfterFailure::RetryAt(t(11))
    );
    assert_eq!(o.next_due().unwrap(), Some(t(11)));
    assert_eq!(o.claim_due(t(10)).unwrap(), None, "not due yet");
    o.claim_due(t(11)).unwrap().unwrap();
    assert_eq!(
        o.mark_retry(m.id, "link down", &policy(), t(12)).unwrap(),
        AfterFailure::RetryAt(t(32))
    );
    o.claim_due(t(32)).unwrap().unwrap();
    assert_eq!(
        o.mark_retry(m.id, "still down", &policy(), t(33)).unwrap(),
        AfterFailure::Failed
    );
    let m = o.get(m.id).unwrap().unwrap();
    assert_eq!((m.status, m.attempts), (Status::Failed, 3));
    assert_eq!(m.last_error.as_deref(), Some("still down"));
    assert_eq!(o.next_due().unwrap(), None);
}

fn recover_requeues_messages_caught_sending(open: Open) {
    let id = {
        let mut o = open("a");
        o.enqueue("k", &anna(), "x", 5, t(0)).unwrap();
        o.claim_due(t(1)).unwrap().unwrap().id
        // The gateway dies here, mid-submission.
    };
    let mut o = open("a");
    assert_eq!(o.get(id).unwrap().unwrap().status, Status::Sending);
    assert_eq!(
        o.recover(Recover::AtStart, 3, t(50)).unwrap(),
        Recovered {
            requeued: 1,
            failed: 0
        }
    );
    let m = o.claim_due(t(50)).unwrap().unwrap();
    assert_eq!((m.id, m.attempts), (id, 2));
}

fn a_message_that_keeps_crashing_the_gateway_fails_after_max_attempts(open: Open) {
    let mut o = open("a");
    let Enqueued::New(id) = o.enqueue("k", &anna(), "x", 5, t(0)).unwrap() else {
        panic!("not queued")
    };
    // Each start recovers it and claims it; each claim crashes the gateway.
    for start in 1..=3 {
        o.recover(Recover::AtStart, 3, t(start * 10)).unwrap();
        let m = o.claim_due(t(start * 10)).unwrap().expect("due again");
        assert_eq!(m.attempts, start as u32);
    }
    let r = o.recover(Recover::AtStart, 3, t(40)).unwrap();
    assert_eq!(
        r,
        Recovered {
            requeued: 0,
            failed: 1
        }
    );
    let m = o.get(id).unwrap().unwrap();
    assert_eq!((m.status, m.attempts), (Status::Failed, 3));
    assert!(m.last_error.unwrap().contains("interrupted"));
    assert_eq!(o.claim_due(t(40)).unwrap(), None);
}

fn purge_deletes_finished_messages_older_than_the_limit_only(open: Open) {
    let mut o = open("a");
    for k in ["old-sent", "old-failed", "old-queued", "new-sent"] {
        o.enqueue(k, &anna(), k, 10, t(0)).unwrap();
    }
    let id = |o: &mut Outbox, k: &str| -> i64 {
        o.db.query_one("SELECT id FROM sms WHERE idempotency_key = ?1", &[k.into()])
            .unwrap()
            .int(0)
            .unwrap()
    };
    let (sent, failed, queued, new) = (
        id(&mut o, "old-sent"),
        id(&mut o, "old-failed"),
        id(&mut o, "old-queued"),
        id(&mut o, "new-sent"),
    );
    o.mark_sent(sent, &["p1".into()], t(10)).unwrap();
    o.mark_failed(failed, "rejected", t(10)).unwrap();
    o.mark_sent(new, &["p2".into()], t(100)).unwrap();
    assert_eq!(o.purge(t(50)).unwrap(), 2);
    assert_eq!(o.get(sent).unwrap(), None);
    assert_eq!(o.get(failed).unwrap(), None);
    assert!(o.get(queued).unwrap().is_some());
    assert!(o.get(new).unwrap().is_some());
    let parts =
        o.db.query_one("SELECT COUNT(*) FROM sms_part", &[])
            .unwrap()
            .int(0)
            .unwrap();
    assert_eq!(parts, 1);
}

fn receipts_decide_per_part(open: Open) {
    let mut o = open("a");
    o.enqueue("a", &anna(), "x", 5, t(0)).unwrap();
    o.enqueue("b", &anna(), "y", 5, t(0)).unwrap();
    let a = o.claim_due(t(0)).unwrap().unwrap().id;
    let b = o.claim_due(t(0)).unwrap().unwrap().id;
    o.mark_sent(a, &["a1".into(), "a2".into()], t(1)).unwrap();
    o.mark_sent(b, &["b1".into()], t(1)).unwrap();
    assert_eq!(
        o.get(a).unwrap().unwrap().smsc_message_id.as_deref(),
        Some("a1 a2")
    );
    assert_eq!(
        o.apply_receipt(&receipt("a1", "DELIVRD"), t(2)).unwrap(),
        None
    );
    assert_eq!(
        o.apply_receipt(&receipt("a2", "ENROUTE"), t(2)).unwrap(),
        None
    );
    assert_eq!(
        o.apply_receipt(&receipt("a2", "DELIVRD"), t(3)).unwrap(),
        Some((a, Status::Delivered))
    );
    assert_eq!(
        o.apply_receipt(&receipt("b1", "UNDELIV"), t(3)).unwrap(),
        Some((b, Status::Failed))
    );
    assert_eq!(
        o.get(b).unwrap().unwrap().last_error.as_deref(),
        Some("receipt: UNDELIV")
    );
    // Unknown ids and repeated receipts change nothing.
    assert_eq!(
        o.apply_receipt(&receipt("zz", "DELIVRD"), t(4)).unwrap(),
        None
    );
    assert_eq!(
        o.apply_receipt(&receipt("a1", "DELIVRD"), t(4)).unwrap(),
        None
    );
    assert_eq!(o.get(a).unwrap().unwrap().status, Status::Delivered);
}

fn two_gateways_never_claim_the_same_message(open: Open) {
    let mut o = open("a");
    for i in 0..60 {
        let to = E164::parse(&format!("+45201234{i:02}")).unwrap();
        o.enqueue(&format!("c{i}"), &to, "x", 5, t(0)).unwrap();
    }
    let claims: Vec<Vec<i64>> = std::thread::scope(|s| {
        let racers: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|node| {
                let mut o = open(node);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(m) = o.claim_due(t(1)).unwrap() {
                        mine.push(m.id);
                    }
                    mine
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = claims.concat();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 60, "every message claimed");
    assert_eq!(claims[0].len() + claims[1].len(), 60, "none claimed twice");
}

fn a_restart_takes_back_only_its_own_messages_and_orphans(open: Open) {
    let (mut a, mut b) = (open("a"), open("b"));
    a.enqueue("k1", &anna(), "x", 5, t(0)).unwrap();
    a.enqueue("k2", &anna(), "x", 5, t(0)).unwrap();
    let mine = a.claim_due(t(1)).unwrap().unwrap().id;
    let theirs = b.claim_due(t(1)).unwrap().unwrap().id;
    // Gateway a restarts while b is still sending its message.
    let mut a = open("a");
    assert_eq!(a.recover(Recover::AtStart, 5, t(2)).unwrap().requeued, 1);
    assert_eq!(a.get(mine).unwrap().unwrap().status, Status::Queued);
    assert_eq!(a.get(theirs).unwrap().unwrap().status, Status::Sending);
    assert_eq!(
        a.recover(Recover::Orphans, 5, t(3)).unwrap().requeued,
        0,
        "b is alive"
    );
    // b died mid-submission and never came back: its message is an orphan.
    let later = t(2) + ORPHANED_AFTER;
    assert_eq!(a.recover(Recover::Orphans, 5, later).unwrap().requeued, 1);
    assert_eq!(a.claim_due(later).unwrap().unwrap().id, mine);
    assert_eq!(a.claim_due(later).unwrap().unwrap().id, theirs);
}

on_sqlite_and_postgres!(
    open;
    enqueue_is_idempotent_per_key,
    per_number_limit_over_24_hours,
    claim_retry_and_give_up_with_a_fake_clock,
    recover_requeues_messages_caught_sending,
    a_message_that_keeps_crashing_the_gateway_fails_after_max_attempts,
    purge_deletes_finished_messages_older_than_the_limit_only,
    receipts_decide_per_part,
    two_gateways_never_claim_the_same_message,
    a_restart_takes_back_only_its_own_messages_and_orphans,
);

#[test]
fn a_file_from_before_migrations_is_upgraded_in_place() {
    let (_dir, file) = file_from_before_migrations(
        include_str!("../../storage/before_migrations/sms.sql"),
        "INSERT INTO sms (idempotency_key, to_number, text, status, attempts, next_attempt_at, \
         created_at, updated_at) VALUES ('k', '+4520123456', 'x', 'sending', 1, 0, 0, 0)",
    );
    let mut o = open(&file, "a");
    let r = o.recover(Recover::AtStart, 5, t(0)).unwrap();
    assert_eq!(r.requeued, 1, "caught mid-submission before the upgrade");
    assert_eq!(o.claim_due(t(0)).unwrap().unwrap().attempts, 2);
}
