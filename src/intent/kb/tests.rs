//! The knowledge base file's rules, each failing with the entry named.
use super::*;

fn examples(word: &str) -> String {
    let list = |lang: &str| {
        (1..=5)
            .map(|n| format!("\"{word} {lang} {n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "examples.da = [{}]\nexamples.en = [{}]\n",
        list("da"),
        list("en")
    )
}

/// One answer intent plus the special intents the bot needs.
pub(crate) fn tiny_kb(answer_entry: &str) -> String {
    let mut s = String::from(
        "[municipality]\nname = \"Test\"\nbase_url = \"https://kommune.example.org\"\n",
    );
    s.push_str(answer_entry);
    for (id, kind) in [
        ("system.person", "person"),
        ("system.out_of_scope", "out_of_scope"),
    ] {
        s.push_str(&format!(
            "[[intent]]\nid = \"{id}\"\ntopic = \"general\"\nkind = \"{kind}\"\n\
             title = {{ da = \"t\", en = \"t\" }}\nanswer = {{ da = \"a\", en = \"a\" }}\n{}",
            examples(kind)
        ));
    }
    s
}

fn answer_entry(id: &str, extra: &str) -> String {
    format!(
        "[[intent]]\nid = \"{id}\"\ntopic = \"affald\"\nkind = \"answer\"\n{extra}\n\
         title = {{ da = \"Affald\", en = \"Waste\" }}\n{}",
        examples("affald")
    )
}

const GOOD: &str = "link = \"https://kommune.example.org/affald\"\nanswer = { da = \"Hver fredag.\", en = \"Every Friday.\" }";

#[test]
fn a_valid_file_loads() {
    let kb = Kb::parse(&tiny_kb(&answer_entry("affald.a", GOOD))).unwrap();
    assert_eq!(kb.intents.len(), 3);
    let a = kb.get("affald.a").unwrap();
    assert_eq!(
        a.answer.as_ref().unwrap().get(Language::En),
        "Every Friday."
    );
    assert!(
        kb.get("system.person").unwrap().needs_person,
        "person implies needs_person"
    );
    assert_eq!(
        kb.first_of(Kind::OutOfScope).unwrap().id,
        "system.out_of_scope"
    );
}

#[test]
fn the_embedded_kb_is_valid() {
    let kb = Kb::embedded().unwrap();
    assert!(kb.intents.len() >= 60, "{}", kb.intents.len());
}

fn error_of(entry: &str) -> String {
    Kb::parse(&tiny_kb(entry)).unwrap_err().to_string()
}

#[test]
fn errors_name_the_entry() {
    let e = error_of(&format!(
        "{}{}",
        answer_entry("affald.a", GOOD),
        answer_entry("affald.a", GOOD)
    ));
    assert!(e.contains("\"affald.a\"") && e.contains("twice"), "{e}");
    let e = error_of(&answer_entry(
        "affald.b",
        "link = \"https://kommune.example.org/x\"",
    ));
    assert!(e.contains("\"affald.b\"") && e.contains("no answer"), "{e}");
    let bad_link = "link = \"http://kommune.example.org/x\"\nanswer = { da = \"a\", en = \"a\" }";
    let e = error_of(&answer_entry("affald.c", bad_link));
    assert!(e.contains("\"affald.c\"") && e.contains("https://"), "{e}");
    let no_link = "answer = { da = \"a\", en = \"a\" }";
    let e = error_of(&answer_entry("affald.d", no_link));
    assert!(e.contains("\"affald.d\"") && e.contains("no link"), "{e}");
    let long = format!(
        "link = \"https://kommune.example.org/x\"\nanswer = {{ da = \"{}\", en = \"a\" }}",
        "ord ".repeat(26)
    );
    let e = error_of(&answer_entry("affald.e", &long));
    assert!(e.contains("\"affald.e\"") && e.contains("26 words"), "{e}");
    let e = error_of(
        &answer_entry("affald.f", GOOD).replace("topic = \"affald\"", "topic = \"afald\""),
    );
    assert!(
        e.contains("\"affald.f\"") && e.contains("unknown topic \"afald\""),
        "{e}"
    );
    let e =
        error_of(&answer_entry("affald.g", GOOD).replace("kind = \"answer\"", "kind = \"faq\""));
    assert!(
        e.contains("\"affald.g\"") && e.contains("unknown kind \"faq\""),
        "{e}"
    );
    let e = error_of(&answer_entry("affald.h", GOOD).replace("id = \"affald.h\"\n", ""));
    assert!(e.contains("#1 (no id)"), "{e}");
}

#[test]
fn urls_are_checked() {
    assert!(check_https_url("https://kommune.example.org/a/b?c=d").is_ok());
    assert!(check_https_url("https://kommune.example.org").is_ok());
    for bad in [
        "http://a.org",
        "https://",
        "https:///x",
        "https://a b.org",
        "kommune.example.org",
        "https://localhost/x",
    ] {
        assert!(check_https_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_kb_needs_its_special_intents() {
    let s = "[municipality]\nname = \"T\"\nbase_url = \"https://t.example.org\"\n";
    let e = Kb::parse(s).unwrap_err().to_string();
    assert!(e.contains("person"), "{e}");
}

#[test]
fn syntax_and_file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("kb-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[municipality\n").unwrap();
    let e = Kb::load(&path).unwrap_err().to_string();
    assert!(e.contains("bad.toml") && e.contains("TOML"), "{e}");
    let e = Kb::load(&dir.join("missing.toml")).unwrap_err().to_string();
    assert!(e.contains("missing.toml"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_misspelt_key_is_reported_with_its_line() {
    let e = Kb::parse(&tiny_kb(&answer_entry("affald.a", GOOD)).replace("title =", "tittle ="))
        .unwrap_err()
        .to_string();
    assert!(e.contains("tittle") && e.contains("line"), "{e}");
}
