//! What staff taught the bot on top of the knowledge base file: extra example
//! phrasings for existing intents and whole new intents, kept in an overlay file next
//! to the knowledge base (`kommune.toml` → `kommune.overlay.toml`).
//!
//! The knowledge base file stays the source of truth and is never rewritten by the
//! gateway, so it can be kept in git and edited by hand; the overlay is a small TOML
//! file in the same vocabulary (`[[intent]]` entries are knowledge-base entries), so a
//! reviewed change can be moved into the file by copy and paste. Merged, the two are
//! validated exactly as one knowledge base file is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::kb::{Kb, KbError};
use super::resolution::Language;

/// The overlay file that belongs to knowledge base `kb`.
pub fn path_for(kb: &Path) -> PathBuf {
    sibling(kb, "overlay.toml")
}

/// A file next to knowledge base `kb` named after it: `kommune.toml` → `kommune.{suffix}`.
pub fn sibling(kb: &Path, suffix: &str) -> PathBuf {
    let stem = kb
        .file_stem()
        .map_or_else(|| "kb".to_string(), |s| s.to_string_lossy().into_owned());
    kb.with_file_name(format!("{stem}.{suffix}"))
}

/// One phrasing added to an intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddedExample {
    pub intent: String,
    /// "da" or "en".
    pub lang: String,
    pub text: String,
}

impl AddedExample {
    pub fn language(&self) -> Result<Language, String> {
        match self.lang.as_str() {
            "da" => Ok(Language::Da),
            "en" => Ok(Language::En),
            other => Err(format!("lang must be \"da\" or \"en\", not {other:?}")),
        }
    }
}

/// A text in both languages, as the knowledge base file writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BothLanguages {
    pub da: String,
    pub en: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Examples {
    #[serde(default)]
    pub da: Vec<String>,
    #[serde(default)]
    pub en: Vec<String>,
}

/// A new answer intent, field for field a knowledge-base `[[intent]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIntent {
    pub id: String,
    pub topic: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_person: bool,
    pub link: String,
    pub title: BothLanguages,
    /// The spoken answer.
    pub answer: BothLanguages,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_text: Option<BothLanguages>,
    pub examples: Examples,
}

/// The overlay: what the file holds, or a draft of what it will hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    #[serde(default, rename = "example", skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<AddedExample>,
    #[serde(default, rename = "intent", skip_serializing_if = "Vec::is_empty")]
    pub intents: Vec<NewIntent>,
}

const HEADER: &str =
    "# Taught from the staff teach page (voicebot); merged over the knowledge base\n\
# file next to it. Move reviewed entries into that file, then delete them here.\n\n";

impl Overlay {
    pub fn parse(text: &str) -> Result<Overlay, KbError> {
        toml::from_str(text).map_err(|e| KbError::Syntax(e.to_string()))
    }

    /// The overlay of knowledge base `kb`; empty when there is no overlay file.
    pub fn read(kb: &Path) -> Result<Overlay, KbError> {
        let path = path_for(kb);
        match std::fs::read_to_string(&path) {
            Ok(text) => Overlay::parse(&text).map_err(|e| e.in_file(&path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Overlay::default()),
            Err(source) => Err(KbError::Read { path, source }),
        }
    }

    /// The file's text; empty for an empty overlay.
    pub fn to_toml(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        // Only strings, booleans, arrays and tables: serialization cannot fail.
        let body = toml::to_string(self).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty() && self.intents.is_empty()
    }

    /// `self` with `more` added after it.
    pub fn extended(&self, more: &Overlay) -> Overlay {
        let mut out = self.clone();
        out.examples.extend(more.examples.iter().cloned());
        out.intents.extend(more.intents.iter().cloned());
        out
    }

    /// One line per change, for people: what this overlay adds.
    pub fn describe(&self) -> Vec<String> {
        let examples = self
            .examples
            .iter()
            .map(|e| format!("example ({}) for {}: \"{}\"", e.lang, e.intent, e.text));
        let intents = self
            .intents
            .iter()
            .map(|i| format!("new intent {} ({}): \"{}\"", i.id, i.topic, i.title.da));
        examples.chain(intents).collect()
    }

    /// The knowledge base `base` (the file's text) with this overlay merged in: new
    /// intents are validated as entries of the file, examples must name an intent and
    /// come first among its examples. An example the intent already has is not added
    /// twice.
    pub fn apply(&self, base: &str) -> Result<Kb, KbError> {
        let mut table: toml::Table = base
            .parse()
            .map_err(|e: toml::de::Error| KbError::Syntax(e.to_string()))?;
        if !self.intents.is_empty() {
            let added = self
                .intents
                .iter()
                .map(toml::Value::try_from)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| KbError::Syntax(e.to_string()))?;
            match table
                .entry("intent")
                .or_insert_with(|| toml::Value::Array(Vec::new()))
            {
                toml::Value::Array(list) => list.extend(added),
                _ => return Err(KbError::Syntax("\"intent\" is not a list".into())),
            }
        }
        let mut kb = Kb::from_table(table)?;
        // Taught phrasings are real callers' words: they go before the file's own, in
        // the overlay's order, since the recognizer scores an intent's first phrasings
        // on the audio (within a budget) and may never reach the last ones.
        let mut taught: HashMap<(usize, Language), usize> = HashMap::new();
        for (n, e) in self.examples.iter().enumerate() {
            let bad = |problem: String| KbError::Entry {
                entry: format!("overlay example #{}", n + 1),
                problem,
            };
            let lang = e.language().map_err(bad)?;
            let text = e.text.trim();
            if text.is_empty() {
                return Err(bad("has no text".into()));
            }
            let pos = kb
                .position(&e.intent)
                .ok_or_else(|| bad(format!("names no known intent (\"{}\")", e.intent)))?;
            let intent = &mut kb.intents[pos];
            let list = match lang {
                Language::Da => &mut intent.examples_da,
                Language::En => &mut intent.examples_en,
            };
            if !list.iter().any(|x| x.trim().eq_ignore_ascii_case(text)) {
                let front = taught.entry((pos, lang)).or_insert(0);
                list.insert(*front, text.to_string());
                *front += 1;
            }
        }
        Ok(kb)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::intent::kb::tests::tiny_kb;

    fn answer_entry() -> String {
        "[[intent]]\nid = \"affald.a\"\ntopic = \"affald\"\nkind = \"answer\"\n\
         link = \"https://kommune.example.org/a\"\ntitle = { da = \"A\", en = \"A\" }\n\
         answer = { da = \"Fredag.\", en = \"Friday.\" }\n\
         examples.da = [\"a 1\", \"a 2\", \"a 3\", \"a 4\", \"a 5\"]\n\
         examples.en = [\"a 1\", \"a 2\", \"a 3\", \"a 4\", \"a 5\"]\n"
            .to_string()
    }

    pub(crate) fn new_intent(id: &str) -> NewIntent {
        let both = |s: &str| BothLanguages {
            da: s.into(),
            en: s.into(),
        };
        let five = |w: &str| (1..=5).map(|n| format!("{w} {n}")).collect();
        NewIntent {
            id: id.into(),
            topic: "general".into(),
            kind: "answer".into(),
            needs_person: false,
            link: "https://kommune.example.org/hund".into(),
            title: both("Hundeskat"),
            answer: both("Der er ingen hundeskat."),
            sms_text: Some(both("Læs mere")),
            examples: Examples {
                da: five("hund"),
                en: five("dog"),
            },
        }
    }

    fn example(intent: &str, lang: &str, text: &str) -> AddedExample {
        AddedExample {
            intent: intent.into(),
            lang: lang.into(),
            text: text.into(),
        }
    }

    #[test]
    fn examples_and_intents_merge_over_the_file() {
        let base = tiny_kb(&answer_entry());
        let overlay = Overlay {
            examples: vec![
                example("affald.a", "en", "when do the dustmen come"),
                example("affald.a", "en", "A 1"),
                example("affald.a", "en", "bins not emptied"),
            ],
            intents: vec![new_intent("general.hund")],
        };
        let kb = overlay.apply(&base).unwrap();
        let a = kb.get("affald.a").unwrap();
        assert_eq!(a.examples_en.len(), 7, "a known example is not added twice");
        assert_eq!(
            a.examples_en[..3],
            ["when do the dustmen come", "bins not emptied", "a 1"],
            "taught first, in order"
        );
        let hund = kb.get("general.hund").unwrap();
        assert_eq!(hund.answer.as_ref().unwrap().da, "Der er ingen hundeskat.");
        assert_eq!(hund.sms_text.as_ref().unwrap().en, "Læs mere");
        // The file's own text is untouched by the merge.
        assert_eq!(Kb::parse(&base).unwrap().intents.len(), 3);
    }

    #[test]
    fn the_overlay_round_trips_through_its_file_format() {
        let overlay = Overlay {
            examples: vec![example("affald.a", "da", "hvornår kommer skraldemanden")],
            intents: vec![new_intent("general.hund")],
        };
        let text = overlay.to_toml();
        assert!(text.starts_with("# Taught"), "{text}");
        assert!(text.contains("[[example]]") && text.contains("[[intent]]"));
        assert_eq!(Overlay::parse(&text).unwrap(), overlay);
        assert_eq!(Overlay::default().to_toml(), "");
    }

    #[test]
    fn a_bad_overlay_is_named() {
        let base = tiny_kb(&answer_entry());
        let error = |examples, intents| {
            Overlay { examples, intents }
                .apply(&base)
                .unwrap_err()
                .to_string()
        };
        let e = error(vec![example("affald.zz", "en", "x")], vec![]);
        assert!(
            e.contains("overlay example #1") && e.contains("affald.zz"),
            "{e}"
        );
        let e = error(vec![example("affald.a", "sv", "x")], vec![]);
        assert!(e.contains("lang"), "{e}");
        let mut dup = new_intent("affald.a");
        dup.topic = "affald".into();
        let e = error(vec![], vec![dup]);
        assert!(e.contains("twice"), "{e}");
        let mut few = new_intent("general.hund");
        few.examples.en.truncate(2);
        let e = error(vec![], vec![few]);
        assert!(
            e.contains("general.hund") && e.contains("2 en examples"),
            "{e}"
        );
    }

    #[test]
    fn the_overlay_lives_next_to_the_file() {
        assert_eq!(
            path_for(Path::new("/srv/kb/kommune.toml")),
            Path::new("/srv/kb/kommune.overlay.toml")
        );
    }
}
