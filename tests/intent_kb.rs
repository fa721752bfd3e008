//! Knowledge-base files with mistakes are refused at load with an error naming the file
//! and the entry, as a municipality's editor would see it.

use voicebot_gateway::intent::kb::Kb;

const HEADER: &str =
    "[municipality]\nname = \"Test\"\nbase_url = \"https://kommune.example.org\"\n";

const SPECIALS: &str = r#"
[[intent]]
id = "system.person"
topic = "general"
kind = "person"
title = { da = "Medarbejder", en = "Staff" }
answer = { da = "Et øjeblik.", en = "One moment." }
examples.da = ["medarbejder", "et menneske", "en person", "stil mig videre", "omstilling"]
examples.en = ["operator", "a human", "a person", "put me through", "transfer me"]

[[intent]]
id = "system.out_of_scope"
topic = "general"
kind = "out_of_scope"
title = { da = "Uden for", en = "Outside" }
answer = { da = "Det kan jeg ikke.", en = "I can't." }
examples.da = ["vejret", "fodbold", "pizza", "toget", "banken"]
examples.en = ["weather", "football", "pizza", "train", "bank"]
"#;

fn entry(id: &str, extra: &str) -> String {
    format!(
        r#"
[[intent]]
id = "{id}"
topic = "affald"
kind = "answer"
title = {{ da = "Tømning", en = "Collection" }}
{extra}
examples.da = ["hvornår tømmer I", "skraldedag", "hvornår hentes affald", "tømningskalender", "hentes skrald"]
examples.en = ["bin day", "when is collection", "when do you empty bins", "collection calendar", "rubbish day"]
"#
    )
}

const GOOD: &str = "link = \"https://kommune.example.org/affald\"\nanswer = { da = \"Se kalenderen.\", en = \"See the calendar.\" }";

/// Loads `entries` from a real file and returns the error text.
fn load_error(name: &str, entries: &str) -> String {
    let dir = std::env::temp_dir().join(format!("intent-kb-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, format!("{HEADER}{entries}{SPECIALS}")).unwrap();
    let result = Kb::load(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    let e = result.expect_err("the file has a mistake").to_string();
    assert!(e.contains(&format!("{name}.toml")), "names the file: {e}");
    e
}

#[test]
fn a_correct_file_loads() {
    let dir = std::env::temp_dir().join(format!("intent-kb-{}-good", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("good.toml");
    std::fs::write(
        &path,
        format!("{HEADER}{}{SPECIALS}", entry("affald.toemning", GOOD)),
    )
    .unwrap();
    let kb = Kb::load(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(kb.intents.len(), 3);
}

#[test]
fn duplicate_ids_are_named() {
    let e = load_error(
        "dup",
        &format!(
            "{}{}",
            entry("affald.toemning", GOOD),
            entry("affald.toemning", GOOD)
        ),
    );
    assert!(
        e.contains("\"affald.toemning\"") && e.contains("defined twice"),
        "{e}"
    );
}

#[test]
fn a_missing_answer_is_named() {
    let e = load_error(
        "noanswer",
        &entry(
            "affald.toemning",
            "link = \"https://kommune.example.org/affald\"",
        ),
    );
    assert!(
        e.contains("\"affald.toemning\"") && e.contains("no answer"),
        "{e}"
    );
}

#[test]
fn bad_links_are_named() {
    for (name, link) in [
        ("http", "http://kommune.example.org/affald"),
        ("relative", "/affald"),
        ("spaces", "https://kommune.example.org/a b"),
    ] {
        let extra = format!("link = \"{link}\"\nanswer = {{ da = \"a\", en = \"a\" }}");
        let e = load_error(name, &entry("affald.toemning", &extra));
        assert!(e.contains("\"affald.toemning\"") && e.contains(link), "{e}");
    }
}

#[test]
fn unknown_topics_and_kinds_and_long_answers_are_named() {
    let e = load_error(
        "topic",
        &entry("affald.toemning", GOOD).replace("topic = \"affald\"", "topic = \"skrald\""),
    );
    assert!(
        e.contains("\"affald.toemning\"") && e.contains("unknown topic \"skrald\""),
        "{e}"
    );
    let e = load_error(
        "kind",
        &entry("affald.toemning", GOOD).replace("kind = \"answer\"", "kind = \"faq\""),
    );
    assert!(
        e.contains("\"affald.toemning\"") && e.contains("unknown kind \"faq\""),
        "{e}"
    );
    let long = format!(
        "link = \"https://kommune.example.org/a\"\nanswer = {{ da = \"{}\", en = \"a\" }}",
        "ord ".repeat(30)
    );
    let e = load_error("long", &entry("affald.toemning", &long));
    assert!(
        e.contains("\"affald.toemning\"") && e.contains("30 words"),
        "{e}"
    );
}

#[test]
fn the_shipped_knowledge_base_loads() {
    let kb = Kb::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kb/eksempel-kommune.toml"),
    )
    .unwrap();
    assert!(kb.intents.len() >= 60);
    assert_eq!(
        kb,
        Kb::embedded().unwrap(),
        "the binary embeds the file in the repository"
    );
}
