//! The knowledge base's keypad menu: up to eight topic groups a caller can pick with
//! the keypad when speech fails ("press 1 for waste, 2 for passports, ...").
//!
//! It is optional (`[[menu]]` entries in the knowledge-base file) and checked as
//! strictly as the intents: keys 1 to 8, each once (0 reaches a person and 9 switches
//! to English, so those are reserved), known topics that have answers to offer, and a
//! title in both languages. Errors name the entry by its key, or by its position when
//! the key itself is missing.

use std::collections::HashMap;

use serde::Deserialize;

use super::{text, Intent, KbError, RawText, Text, TOPICS};
use crate::intent::resolution::Kind;

/// Keys a menu entry may have; 0 and 9 are the bot's own.
pub const MENU_KEYS: std::ops::RangeInclusive<u8> = 1..=8;

/// One choice of the top-level keypad menu.
#[derive(Debug, Clone, PartialEq)]
pub struct MenuEntry {
    /// The digit to press, 1 to 8.
    pub key: u8,
    /// How the choice is read out: "Tryk 1 for {title}".
    pub title: Text,
    /// Knowledge-base topics whose answer intents the entry's own menu lists.
    pub topics: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMenuEntry {
    key: Option<i64>,
    title: Option<RawText>,
    topics: Option<Vec<String>>,
}

/// The entries, sorted by key, checked against the (already validated) intents.
pub(super) fn validate(
    raw: Vec<RawMenuEntry>,
    intents: &[Intent],
) -> Result<Vec<MenuEntry>, KbError> {
    let mut seen: HashMap<u8, usize> = HashMap::new();
    let mut menu = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let position = i + 1;
        let entry = match r.key {
            Some(key) => format!("key {key}"),
            None => format!("#{position} (no key)"),
        };
        let bad = |problem: String| KbError::Menu {
            entry: entry.clone(),
            problem,
        };
        let key = r.key.ok_or_else(|| bad("has no key".into()))?;
        let key = match u8::try_from(key) {
            Ok(k @ (0 | 9)) => {
                return Err(bad(format!(
                    "key {k} is reserved (0 reaches a person, 9 switches to English)"
                )))
            }
            Ok(k) if MENU_KEYS.contains(&k) => k,
            _ => return Err(bad("keys go from 1 to 8".into())),
        };
        if let Some(first) = seen.insert(key, position) {
            return Err(bad(format!(
                "key {key} is used twice (menu entries #{first} and #{position})"
            )));
        }
        let title = text("title", r.title)
            .map_err(bad)?
            .ok_or_else(|| bad("has no title".into()))?;
        let topics = r.topics.unwrap_or_default();
        if topics.is_empty() {
            return Err(bad("has no topics".into()));
        }
        for topic in &topics {
            if !TOPICS.contains(&topic.as_str()) {
                return Err(bad(format!(
                    "unknown topic \"{topic}\" (known: {})",
                    TOPICS.join(", ")
                )));
            }
            let answers = intents
                .iter()
                .any(|i| &i.topic == topic && i.kind == Kind::Answer);
            if !answers {
                return Err(bad(format!(
                    "topic \"{topic}\" has no answer intent to offer"
                )));
            }
        }
        menu.push(MenuEntry { key, title, topics });
    }
    menu.sort_by_key(|e| e.key);
    Ok(menu)
}

#[cfg(test)]
mod tests {
    use super::super::tests::tiny_kb;
    use super::super::Kb;

    const ANSWER: &str = "[[intent]]\nid = \"affald.a\"\ntopic = \"affald\"\nkind = \"answer\"\n\
        link = \"https://kommune.example.org/affald\"\n\
        title = { da = \"Affald\", en = \"Waste\" }\n\
        answer = { da = \"Hver fredag.\", en = \"Every Friday.\" }\n\
        examples.da = [\"a\", \"b\", \"c\", \"d\", \"e\"]\nexamples.en = [\"a\", \"b\", \"c\", \"d\", \"e\"]\n";

    fn entry(key: &str, topics: &str) -> String {
        format!(
            "[[menu]]\n{key}title = {{ da = \"affald\", en = \"waste\" }}\ntopics = [{topics}]\n"
        )
    }

    fn menu_error(menu: &str) -> String {
        Kb::parse(&tiny_kb(&format!("{ANSWER}{menu}")))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_menu_loads_sorted_by_key_and_is_optional() {
        let kb = Kb::parse(&tiny_kb(&format!(
            "{ANSWER}{}{}",
            entry("key = 2\n", "\"affald\""),
            entry("key = 1\n", "\"affald\"")
        )))
        .unwrap();
        let keys: Vec<u8> = kb.menu.iter().map(|e| e.key).collect();
        assert_eq!(keys, [1, 2]);
        assert_eq!(kb.menu[0].title.en, "waste");
        assert_eq!(kb.menu[0].topics, ["affald"]);
        assert!(Kb::parse(&tiny_kb(ANSWER)).unwrap().menu.is_empty());
    }

    #[test]
    fn menu_errors_name_the_entry() {
        let e = menu_error(&entry("key = 3\n", "\"afald\""));
        assert!(
            e.contains("menu entry key 3") && e.contains("unknown topic \"afald\""),
            "{e}"
        );
        let twice = format!(
            "{}{}",
            entry("key = 1\n", "\"affald\""),
            entry("key = 1\n", "\"affald\"")
        );
        let e = menu_error(&twice);
        assert!(e.contains("key 1 is used twice") && e.contains("#2"), "{e}");
        for reserved in ["0", "9"] {
            let e = menu_error(&entry(&format!("key = {reserved}\n"), "\"affald\""));
            assert!(e.contains(&format!("key {reserved} is reserved")), "{e}");
        }
        let e = menu_error(&entry("key = 12\n", "\"affald\""));
        assert!(e.contains("key 12") && e.contains("1 to 8"), "{e}");
        let e = menu_error(&entry("", "\"affald\""));
        assert!(e.contains("#1 (no key)"), "{e}");
        let e = menu_error(&entry("key = 4\n", ""));
        assert!(e.contains("key 4") && e.contains("no topics"), "{e}");
        let e = menu_error(&entry("key = 5\n", "\"skole\""));
        assert!(
            e.contains("key 5") && e.contains("\"skole\" has no answer intent"),
            "{e}"
        );
        let e =
            menu_error("[[menu]]\nkey = 6\ntitle = { da = \"affald\" }\ntopics = [\"affald\"]\n");
        assert!(
            e.contains("key 6") && e.contains("title has no en text"),
            "{e}"
        );
    }

    #[test]
    fn the_embedded_menu_covers_every_self_service_topic() {
        let kb = Kb::embedded().unwrap();
        assert!((1..=8).contains(&kb.menu.len()), "{}", kb.menu.len());
        let offered: Vec<&str> = kb
            .menu
            .iter()
            .flat_map(|e| e.topics.iter().map(String::as_str))
            .collect();
        // "general" (case status, complaints, ...) is for a person: 0 reaches one.
        let answers = kb
            .intents
            .iter()
            .filter(|i| i.kind == crate::intent::resolution::Kind::Answer && i.topic != "general");
        for intent in answers {
            assert!(
                offered.contains(&intent.topic.as_str()),
                "topic {} is not in the menu",
                intent.topic
            );
        }
    }
}
