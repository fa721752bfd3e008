//! The gateway's SMS side (`Sms` with `sender = "smpp"`) against a real SMPP 3.4 peer,
//! the test SMSC, over loopback TCP: what arrives on the wire, receipts, an SMSC that
//! goes away, a gateway restart, duplicates.

mod common;

use common::wait_sms_status;

use std::path::Path;
use std::time::{Duration, Instant};

use rusmpp::CommandStatus;

use tokio_util::sync::CancellationToken;
use voicebot_gateway::config::{SmsConfig, SmsSenderKind};
use voicebot_gateway::sms::number::E164;
use voicebot_gateway::sms::outbox::Status;
use voicebot_gateway::sms::smsc::{Fate, Submitted, TestSmsc};
use voicebot_gateway::sms::Sms;
use voicebot_gateway::storage::Store;

fn config(smsc: &TestSmsc, outbox: &Path) -> SmsConfig {
    let mut c = SmsConfig {
        sender: SmsSenderKind::Smpp,
        outbox: Some(outbox.join("sms.sqlite")),
        retry_initial_ms: 100,
        retry_max_ms: 400,
        max_attempts: 100,
        ..SmsConfig::default()
    };
    c.smpp.port = smsc.addr().port();
    c.smpp.system_id = "voicebot-test".into();
    c.smpp.password = "secret".into();
    c.smpp.response_timeout_ms = 1000;
    c
}

async fn start(c: &SmsConfig) -> Sms {
    Sms::start(c, Store::local(c.outbox_path()), CancellationToken::new())
        .await
        .unwrap()
        .expect("sender configured")
}

fn anna() -> E164 {
    E164::parse("+4520123456").unwrap()
}

/// GSM 03.38 codes of the characters used below, written out independently of the
/// encoder under test.
fn gsm7(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | ' ' | ':' | '/' | '.' | '-' => c as u8,
            '\n' => 0x0a,
            'ø' => 0x0c,
            'å' => 0x0f,
            'æ' => 0x1d,
            'Ø' => 0x0b,
            other => panic!("no test mapping for {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn danish_text_arrives_gsm7_in_one_part_and_is_delivered() {
    let smsc = TestSmsc::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sms = start(&config(&smsc, dir.path())).await;
    let text =
        "Tømningskalender for din adresse: Ærø og Ålborg\nhttps://kommune.example.org/affald";
    // Æ and Å are checked separately below: the helper maps lower case only.
    let id = sms
        .enqueue("call-1", "affald.toemning", &anna(), text)
        .await
        .unwrap();
    let m = wait_sms_status(&sms, id, Status::Delivered).await;
    let got = smsc.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let s = &got[0];
    assert_eq!(s.system_id, "voicebot-test");
    assert_eq!(
        (s.from.as_str(), s.to.as_str()),
        ("EksKommune", "4520123456")
    );
    assert_eq!(
        (s.data_coding, s.esm_class, s.registered_delivery),
        (0x00, 0x00, 0x01)
    );
    assert_eq!(s.short_message.len(), text.chars().count());
    let (head, tail) = text.split_once(" Ærø og Ålborg").unwrap();
    let mut want = gsm7(head);
    want.extend([0x20, 0x1c, 0x72, 0x0c, 0x20, 0x6f, 0x67, 0x20, 0x0e]); // " Ærø og Å"
    want.extend(gsm7("lborg"));
    want.extend(gsm7(tail));
    assert_eq!(s.short_message, want);
    assert_eq!(m.smsc_message_id.as_deref(), Some(s.message_id.as_str()));
    assert_eq!(m.attempts, 1);
    assert_eq!(sms.metrics().delivered.get(), 1);
    sms.shutdown().await;
}

#[tokio::test]
async fn emoji_goes_as_ucs2() {
    let smsc = TestSmsc::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sms = start(&config(&smsc, dir.path())).await;
    let text = "Husk din tid hos Borgerservice 🙂 https://kommune.example.org/tid";
    let id = sms
        .enqueue("call-2", "borgerservice.tid", &anna(), text)
        .await
        .unwrap();
    wait_sms_status(&sms, id, Status::Delivered).await;
    let got = smsc.received();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].data_coding, got[0].esm_class), (0x08, 0x00));
    let utf16be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert_eq!(got[0].short_message, utf16be);
    sms.shutdown().await;
}

#[tokio::test]
async fn long_message_goes_in_three_parts_with_one_reference() {
    let smsc = TestSmsc::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sms = start(&config(&smsc, dir.path())).await;
    let text: String = "abcdefghij klmnopqrstuvwxyz 0123456789 "
        .repeat(11)
        .chars()
        .take(400)
        .collect();
    let id = sms
        .enqueue("call-3", "pas.bestil", &anna(), &text)
        .await
        .unwrap();
    let m = wait_sms_status(&sms, id, Status::Delivered).await;
    let got: Vec<Submitted> = smsc.received();
    assert_eq!(got.len(), 3, "{got:?}");
    let reference = got[0].short_message[3];
    let mut body = Vec::new();
    for (i, s) in got.iter().enumerate() {
        assert_eq!((s.data_coding, s.esm_class), (0x00, 0x40));
        assert_eq!(
            &s.short_message[..6],
            &[0x05, 0x00, 0x03, reference, 3, i as u8 + 1]
        );
        assert!(s.short_message.len() <= 6 + 153);
        body.extend_from_slice(&s.short_message[6..]);
    }
    assert_eq!(body, gsm7(&text));
    // Delivered only once all three parts' receipts were in.
    let ids: Vec<&str> = got.iter().map(|s| s.message_id.as_str()).collect();
    assert_eq!(m.smsc_message_id.unwrap(), ids.join(" "));
    sms.shutdown().await;
}

#[tokio::test]
async fn undeliverable_receipt_fails_the_message() {
    let smsc = TestSmsc::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    smsc.set_fate("4530000000", Fate::Undeliverable);
    let dir = tempfile::tempdir().unwrap();
    let sms = start(&config(&smsc, dir.path())).await;
    let to = E164::parse("+4530000000").unwrap();
    let id = sms
        .enqueue(
            "call-4",
            "mitid.hjaelp",
            &to,
            "MitID: https://kommune.example.org/mitid",
        )
        .await
        .unwrap();
    let m = wait_sms_status(&sms, id, Status::Failed).await;
    assert_eq!(m.last_error.as_deref(), Some("receipt: UNDELIV"));
    assert_eq!(
        smsc.received().len(),
        1,
        "a receipt failure is final, not retried"
    );
    assert_eq!(sms.metrics().failed.get(), 1);
    sms.shutdown().await;
}

#[tokio::test]
async fn rejected_destination_fails_without_retry() {
    let smsc = TestSmsc::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    smsc.set_fate("4540000000", Fate::Rejected(CommandStatus::EsmeRinvdstadr));
    smsc.set_fate("4541000000", Fate::Rejected(CommandStatus::EsmeRthrottled));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&smsc, dir.path());
    c.max_attempts = 3;
    let sms = start(&c).await;
    let bad = E164::parse("+4540000000").unwrap();
    let id = sms.enqueue("call-11", "a", &bad, "Hej").await.unwrap();
    let m = wait_sms_status(&sms, id, Status::Failed).await;
    assert_eq!(m.attempts, 1, "a bad destination is not retried");
    assert!(m.last_error.unwrap().contains("EsmeRinvdstadr"));
    // Throttling is the SMSC's problem, not the message's: retried until max_attempts.
    let busy = E164::parse("+4541000000").unwrap();
    let id = sms.enqueue("call-11", "b", &busy, "Hej").await.unwrap();
    let m = wait_sms_status(&sms, id, Status::Failed).await;
    assert_eq!(m.attempts, 3);
    assert_eq!(smsc.received().len(), 1 + 3);
    sms.shutdown().await;
}

#[tokio::test]
async fn smsc_down_then_back_delivers_after_it_returns() {
    let mut smsc = TestSmsc::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sms = start(&config(&smsc, dir.path())).await;
    // Bound and working first.
    let first = sms.enqueue("call-5", "a", &anna(), "Et").await.unwrap();
    wait_sms_status(&sms, first, Status::Delivered).await;

    smsc.stop().await;
    let id = sms.enqueue("call-5", "b", &anna(), "To").await.unwrap();
    // Tried while the SMSC is gone, and kept queued for later.
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = sms.message(id).await.unwrap().unwrap();
        if m.attempts >= 2 {
            break m;
        }
        assert!(Instant::now() < deadline, "not retried: {m:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        matches!(m.status, Status::Queued | Status::Sending),
        "{m:?}"
    );
    assert!(m.last_error.is_some());
    assert_eq!(smsc.received().len(), 1);

    smsc.restart().await.unwrap();
    wait_sms_status(&sms, id, Status::Delivered).await;
    let got = smsc.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].short_message, gsm7("To"));
    assert!(smsc.binds() >= 2, "bound again after the restart");
    assert!(sms.metrics().retried.get() >= 1);
    sms.shutdown().await;
}

#[tokio::test]
async fn gateway_restart_sends_each_queued_message_exactly_once() {
    let mut smsc = TestSmsc::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    smsc.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let c = config(&smsc, dir.path());
    let sms = start(&c).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            sms.enqueue(
                &format!("call-6-{i}"),
                "affald.storskrald",
                &anna(),
                &format!("Besked {i}"),
            )
            .await
            .unwrap(),
        );
    }
    // Each one tried (and failed) at least once before the gateway stops.
    for &id in &ids {
        let deadline = Instant::now() + Duration::from_secs(10);
        while sms.message(id).await.unwrap().unwrap().attempts == 0 {
            assert!(Instant::now() < deadline, "message {id} never tried");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    sms.shutdown().await;
    drop(sms);

    smsc.restart().await.unwrap();
    let sms = start(&c).await;
    for &id in &ids {
        wait_sms_status(&sms, id, Status::Delivered).await;
    }
    // A little longer, in case anything would be sent twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut texts: Vec<Vec<u8>> = smsc
        .received()
        .into_iter()
        .map(|s| s.short_message)
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        vec![gsm7("Besked 0"), gsm7("Besked 1"), gsm7("Besked 2")]
    );
    sms.shutdown().await;
}

#[tokio::test]
async fn duplicate_enqueue_sends_once_and_limit_applies() {
    let smsc = TestSmsc::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&smsc, dir.path());
    c.per_number_limit = 2;
    let sms = start(&c).await;
    let id = sms
        .enqueue("call-7", "pas.bestil", &anna(), "Pas")
        .await
        .unwrap();
    let again = sms
        .enqueue("call-7", "pas.bestil", &anna(), "Pas")
        .await
        .unwrap();
    assert_eq!(id, again);
    wait_sms_status(&sms, id, Status::Delivered).await;
    let third = sms
        .enqueue("call-7", "pas.bestil", &anna(), "Pas")
        .await
        .unwrap();
    assert_eq!(id, third, "still the same message after it was delivered");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smsc.received().len(), 1);
    assert_eq!(sms.metrics().enqueued.get(), 1);

    // The per-number limit counts distinct messages; landlines are never offered.
    assert!(sms.can_offer(&anna()).await.is_ok());
    sms.enqueue("call-8", "pas.bestil", &anna(), "Pas")
        .await
        .unwrap();
    assert!(sms.can_offer(&anna()).await.is_err());
    assert!(sms
        .enqueue("call-9", "pas.bestil", &anna(), "Pas")
        .await
        .is_err());
    let landline = E164::parse("+4533123456").unwrap();
    assert!(sms.can_offer(&landline).await.is_err());
    sms.shutdown().await;
}

#[tokio::test]
async fn idle_link_is_kept_alive_by_enquire_link() {
    let smsc = TestSmsc::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&smsc, dir.path());
    c.smpp.enquire_link_secs = 1;
    let sms = start(&c).await;
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert!(
        smsc.enquire_links() >= 2,
        "{} enquire_links",
        smsc.enquire_links()
    );
    assert_eq!(smsc.binds(), 1, "one bind, kept");
    let id = sms
        .enqueue("call-10", "a", &anna(), "Stadig her")
        .await
        .unwrap();
    wait_sms_status(&sms, id, Status::Delivered).await;
    assert_eq!(smsc.binds(), 1);
    sms.shutdown().await;
}
