//! Teaching against real files: a knowledge base file, call records in SQLite.
use super::*;
use crate::intent::kb::EMBEDDED;
use crate::intent::overlay::tests::new_intent;
use crate::intent::resolution::{Action, Language, Request};
use crate::ops::live::{answer, LiveCalls};

const QUESTION: &str = "the dustmen forgot my street again";
const INTENT: &str = "affald.manglende_toemning";
const NOW: i64 = 2_000_000_000;

/// A knowledge base file, and call records with one call the bot did not answer.
fn setup(dir: &Path) -> Teacher {
    let kb = dir.join("kommune.toml");
    std::fs::write(&kb, EMBEDDED).unwrap();
    let records = crate::storage::Store::local(dir.join("records.sqlite"));
    let live = LiveCalls::new(4);
    live.start("c-missed", NOW - 3600, "70101010", "", "en");
    live.said("c-missed", 4.0, "caller", QUESTION);
    let mut missed = answer("system.out_of_scope", "general", 0.05);
    missed.kind = crate::intent::resolution::Kind::OutOfScope;
    live.understood("c-missed", &missed);
    let mut call = live.get("c-missed").unwrap();
    call.outcome = Some("unresolved".into());
    call.ended = Some(NOW - 3500);
    Records::open(&records).unwrap().save(&call).unwrap();
    let matcher = reload::shared(Matcher::new(Kb::load(&kb).unwrap()));
    Teacher::new(kb, matcher, records)
}

fn example(intent: &str, lang: &str, text: &str) -> AddedExample {
    AddedExample {
        intent: intent.into(),
        lang: lang.into(),
        text: text.into(),
    }
}

fn answered_as(t: &Teacher) -> (Action, String) {
    let r = reload::current(&t.matcher).resolve(&Request::new(QUESTION, Language::En));
    (r.action, r.intent_id)
}

#[test]
fn teach_preview_publish_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let t = setup(dir.path());
    let before = answered_as(&t);
    assert_ne!(before.1, INTENT, "the bot must not know the question yet");

    let groups = t.unresolved(NOW).unwrap();
    let q = &groups[0].questions[0];
    assert_eq!(
        (q.call_id.as_str(), q.text.as_str()),
        ("c-missed", QUESTION)
    );
    assert_eq!(q.taught_to, None);

    assert!(matches!(
        t.add_example(example("affald.nope", "en", QUESTION)),
        Err(TeachError::UnknownIntent(_))
    ));
    assert!(matches!(
        t.add_example(example(INTENT, "sv", QUESTION)),
        Err(TeachError::Invalid(_))
    ));
    let draft = t.add_example(example(INTENT, "en", QUESTION)).unwrap();
    assert_eq!(draft.what.len(), 1);
    assert!(
        draft
            .diff
            .iter()
            .any(|l| l.starts_with("+ ") && l.contains(QUESTION)),
        "{draft:?}"
    );
    assert!(
        matches!(
            t.add_example(example(INTENT, "en", QUESTION)),
            Err(TeachError::Conflict(_))
        ),
        "the draft's own examples count"
    );
    assert_eq!(answered_as(&t), before, "a draft is not in service");

    let p = t.preview(NOW).unwrap();
    assert_eq!((p.calls, p.changed_turns), (1, 1), "{p:#?}");
    assert_eq!(p.changed[0].call_id, "c-missed");
    assert_eq!(p.changed[0].after.intent_id, INTENT);

    let v1 = t.publish("Anne".into(), "dustmen".into(), NOW).unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(answered_as(&t), (Action::Answer, INTENT.to_string()));
    assert_eq!(
        std::fs::read_to_string(&t.kb).unwrap(),
        EMBEDDED,
        "the file is not written"
    );
    let on_disk = Kb::load(&t.kb).unwrap();
    assert!(on_disk
        .get(INTENT)
        .unwrap()
        .examples_en
        .iter()
        .any(|e| e == QUESTION));
    assert!(
        t.draft_view().unwrap().what.is_empty(),
        "the draft is published"
    );
    assert!(matches!(
        t.publish("Anne".into(), "again".into(), NOW),
        Err(TeachError::Conflict(_))
    ));
    assert_eq!(
        t.unresolved(NOW).unwrap()[0].questions[0]
            .taught_to
            .as_deref(),
        Some(INTENT)
    );

    let history = t.history().unwrap();
    let listed: Vec<(u32, &str)> = history
        .iter()
        .map(|v| (v.version, v.author.as_str()))
        .collect();
    assert_eq!(listed, [(1, "Anne"), (0, "")]);
    assert!(history[0].diff.iter().any(|l| l.contains(QUESTION)));

    assert!(matches!(
        t.rollback(7, "Bo".into(), "x".into(), NOW),
        Err(TeachError::UnknownVersion(7))
    ));
    let v2 = t
        .rollback(0, "Bo".into(), "wrong intent".into(), NOW + 1)
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.what, ["roll-back to version 0"]);
    assert_eq!(answered_as(&t), before, "the previous answer is back");
    assert!(
        !overlay::path_for(&t.kb).exists(),
        "version 0 had no overlay"
    );
    assert!(matches!(
        t.rollback(0, "Bo".into(), "x".into(), NOW),
        Err(TeachError::Conflict(_))
    ));
    let v3 = t
        .rollback(1, "Bo".into(), "it was right".into(), NOW + 2)
        .unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(answered_as(&t).1, INTENT);
}

#[test]
fn a_new_intent_must_be_a_valid_entry_and_can_be_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let t = setup(dir.path());
    let mut bad = new_intent("general.hund");
    bad.link = "http://kommune.example.org/hund".into();
    let e = t.add_intent(bad).unwrap_err();
    assert!(
        matches!(e, TeachError::Invalid(_)) && e.to_string().contains("https://"),
        "{e}"
    );
    let view = t.add_intent(new_intent("general.hund")).unwrap();
    assert_eq!(
        view.what,
        ["new intent general.hund (general): \"Hundeskat\""]
    );
    assert!(
        t.intents().unwrap().iter().any(|i| i.id == "general.hund"),
        "draft intents can be taught to"
    );
    t.add_example(example("general.hund", "da", "hvad koster hundeskat"))
        .unwrap();
    assert_eq!(t.discard().unwrap().what.len(), 0);
    assert!(!t.intents().unwrap().iter().any(|i| i.id == "general.hund"));
}
