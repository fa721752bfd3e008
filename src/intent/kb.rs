//! The knowledge base: what callers can ask and what the bot answers, one TOML file
//! per municipality (format described at the top of `kb/eksempel-kommune.toml`).
//!
//! The file is written by people at the municipality, not programmers, so loading is
//! strict and every problem is reported naming the entry (its id, or its position when
//! the id itself is missing): a typo in a topic must fail the (re)load, not silently
//! route calls to the wrong queue.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::overlay::Overlay;
use super::resolution::{Kind, Language};

mod menu;
pub use menu::{MenuEntry, MENU_KEYS};

/// The knowledge base built into the binary: the fictional Eksempel Kommune.
pub const EMBEDDED: &str = include_str!("../../kb/eksempel-kommune.toml");

/// Topics an intent can have; the topic picks the transfer queue.
pub const TOPICS: [&str; 17] = [
    "affald",
    "pas_koerekort",
    "mitid",
    "sundhedskort",
    "flytning",
    "borgerservice",
    "boligstoette",
    "pension",
    "dagtilbud",
    "skole",
    "parkering",
    "veje",
    "byggeri",
    "ejendomsskat",
    "sundhed",
    "beskaeftigelse",
    "general",
];

/// A spoken answer is read aloud on the phone: longer ones lose the caller.
pub const MAX_ANSWER_WORDS: usize = 25;
/// Fewer example phrasings than this cannot teach the matcher how callers speak.
pub const MIN_EXAMPLES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("cannot read knowledge base {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("knowledge base {path}: {source}")]
    InFile { path: PathBuf, source: Box<KbError> },
    #[error("not valid TOML: {0}")]
    Syntax(String),
    #[error("intent {entry}: {problem}")]
    Entry { entry: String, problem: String },
    #[error("intent \"{id}\" is defined twice (entries #{first} and #{second})")]
    Duplicate {
        id: String,
        first: usize,
        second: usize,
    },
    #[error("menu entry {entry}: {problem}")]
    Menu { entry: String, problem: String },
    #[error("there is no intent of kind \"{0}\", which the bot needs")]
    MissingKind(&'static str),
}

impl KbError {
    /// This error, naming the file it is in.
    pub fn in_file(self, path: &Path) -> KbError {
        KbError::InFile {
            path: path.into(),
            source: Box::new(self),
        }
    }
}

/// A text in both languages.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    pub da: String,
    pub en: String,
}

impl Text {
    pub fn get(&self, lang: Language) -> &str {
        match lang {
            Language::Da => &self.da,
            Language::En => &self.en,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    pub id: String,
    /// One of [`TOPICS`].
    pub topic: String,
    pub kind: Kind,
    /// The bot gives the short answer, then transfers.
    pub needs_person: bool,
    pub link: Option<String>,
    pub title: Text,
    /// Absent only for yes, no and repeat, which the conversation answers itself.
    pub answer: Option<Text>,
    pub sms_text: Option<Text>,
    pub examples_da: Vec<String>,
    pub examples_en: Vec<String>,
}

impl Intent {
    pub fn examples(&self, lang: Language) -> &[String] {
        match lang {
            Language::Da => &self.examples_da,
            Language::En => &self.examples_en,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Municipality {
    pub name: String,
    pub base_url: String,
}

/// A validated knowledge base.
#[derive(Debug, Clone, PartialEq)]
pub struct Kb {
    pub municipality: Municipality,
    pub intents: Vec<Intent>,
    /// The keypad menu, by key; empty when the file has none.
    pub menu: Vec<MenuEntry>,
}

impl Kb {
    /// The embedded Eksempel Kommune knowledge base.
    pub fn embedded() -> Result<Kb, KbError> {
        Kb::parse(EMBEDDED)
    }

    /// Reads and validates a file with its overlay (what staff taught, see
    /// [`overlay`](super::overlay)) merged in; errors name the file and the entry.
    pub fn load(path: &Path) -> Result<Kb, KbError> {
        let text = std::fs::read_to_string(path).map_err(|source| KbError::Read {
            path: path.into(),
            source,
        })?;
        let kb = Kb::parse(&text).map_err(|e| e.in_file(path))?;
        let overlay = Overlay::read(path)?;
        if overlay.is_empty() {
            return Ok(kb);
        }
        overlay
            .apply(&text)
            .map_err(|e| e.in_file(&super::overlay::path_for(path)))
    }

    /// `load(path)` for a path, [`Kb::embedded`] for none.
    pub fn load_or_embedded(path: Option<&Path>) -> Result<Kb, KbError> {
        path.map_or_else(Kb::embedded, Kb::load)
    }

    pub fn parse(text: &str) -> Result<Kb, KbError> {
        // Straight from the text, so a misspelt key is reported with its line.
        let raw: RawKb = toml::from_str(text).map_err(|e| KbError::Syntax(e.to_string()))?;
        Kb::from_raw(raw)
    }

    /// A knowledge base from its file's parsed TOML (the overlay merges that way).
    pub fn from_table(table: toml::Table) -> Result<Kb, KbError> {
        let raw: RawKb = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| KbError::Syntax(e.to_string()))?;
        Kb::from_raw(raw)
    }

    fn from_raw(raw: RawKb) -> Result<Kb, KbError> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut intents = Vec::with_capacity(raw.intent.len());
        for (i, r) in raw.intent.into_iter().enumerate() {
            let intent = r.validate(i + 1)?;
            if let Some(first) = seen.insert(intent.id.clone(), i + 1) {
                return Err(KbError::Duplicate {
                    id: intent.id,
                    first,
                    second: i + 1,
                });
            }
            intents.push(intent);
        }
        for needed in [Kind::Person, Kind::OutOfScope] {
            if !intents.iter().any(|i| i.kind == needed) {
                return Err(KbError::MissingKind(needed.as_str()));
            }
        }
        let menu = menu::validate(raw.menu, &intents)?;
        Ok(Kb {
            municipality: raw.municipality,
            intents,
            menu,
        })
    }

    pub fn get(&self, id: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.id == id)
    }

    /// The index of intent `id` in `intents`.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.intents.iter().position(|i| i.id == id)
    }

    /// The first intent of a kind; [`Kb::parse`] guarantees one for person and
    /// out of scope.
    pub fn first_of(&self, kind: Kind) -> Option<&Intent> {
        self.intents.iter().find(|i| i.kind == kind)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKb {
    municipality: Municipality,
    #[serde(default)]
    intent: Vec<RawIntent>,
    #[serde(default)]
    menu: Vec<menu::RawMenuEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    da: Option<String>,
    en: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExamples {
    #[serde(default)]
    da: Vec<String>,
    #[serde(default)]
    en: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    id: Option<String>,
    topic: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    needs_person: bool,
    link: Option<String>,
    title: Option<RawText>,
    answer: Option<RawText>,
    sms_text: Option<RawText>,
    #[serde(default)]
    examples: RawExamples,
}

impl RawIntent {
    fn validate(self, position: usize) -> Result<Intent, KbError> {
        let id = self
            .id
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let entry = match &id {
            Some(id) => format!("\"{id}\""),
            None => format!("#{position} (no id)"),
        };
        let bad = |problem: String| KbError::Entry {
            entry: entry.clone(),
            problem,
        };
        let id = id.ok_or_else(|| bad("has no id".into()))?;

        let topic = self.topic.ok_or_else(|| bad("has no topic".into()))?;
        if !TOPICS.contains(&topic.as_str()) {
            return Err(bad(format!(
                "unknown topic \"{topic}\" (known: {})",
                TOPICS.join(", ")
            )));
        }
        let kind_name = self.kind.ok_or_else(|| bad("has no kind".into()))?;
        let kind: Kind = kind_name.parse().map_err(|()| {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            bad(format!(
                "unknown kind \"{kind_name}\" (known: {})",
                known.join(", ")
            ))
        })?;

        let text = |field: &str, raw: Option<RawText>| text(field, raw).map_err(&bad);
        let title = text("title", self.title)?.ok_or_else(|| bad("has no title".into()))?;
        let answer = text("answer", self.answer)?;
        let sms_text = text("sms_text", self.sms_text)?;

        let needs_answer = !matches!(kind, Kind::Yes | Kind::No | Kind::Repeat);
        match &answer {
            None if needs_answer => return Err(bad("has no answer".into())),
            Some(a) => {
                for lang in Language::ALL {
                    let words = a.get(lang).split_whitespace().count();
                    if words > MAX_ANSWER_WORDS {
                        return Err(bad(format!(
                            "answer ({lang}) has {words} words; a spoken answer may have at most {MAX_ANSWER_WORDS}"
                        )));
                    }
                }
            }
            None => {}
        }

        if let Some(link) = &self.link {
            if let Err(why) = check_https_url(link) {
                return Err(bad(format!("link \"{link}\" is not usable: {why}")));
            }
        } else if kind == Kind::Answer {
            return Err(bad(
                "has no link (every answer needs a page with the full answer)".into(),
            ));
        }

        for (lang, examples) in [
            (Language::Da, &self.examples.da),
            (Language::En, &self.examples.en),
        ] {
            let n = examples.iter().filter(|e| !e.trim().is_empty()).count();
            if n < MIN_EXAMPLES {
                return Err(bad(format!(
                    "has {n} {lang} examples; at least {MIN_EXAMPLES} are needed"
                )));
            }
        }

        Ok(Intent {
            id,
            topic,
            kind,
            needs_person: self.needs_person || kind == Kind::Person,
            link: self.link,
            title,
            answer,
            sms_text,
            examples_da: self.examples.da,
            examples_en: self.examples.en,
        })
    }
}

/// A `{ da, en }` text, both trimmed and non-empty; `Err` says what is missing.
fn text(field: &str, raw: Option<RawText>) -> Result<Option<Text>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let get = |lang: &str, v: Option<String>| {
        v.map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{field} has no {lang} text"))
    };
    Ok(Some(Text {
        da: get("da", raw.da)?,
        en: get("en", raw.en)?,
    }))
}

/// Links are sent to citizens by SMS: only absolute https URLs with a host.
fn check_https_url(link: &str) -> Result<(), &'static str> {
    let rest = link
        .strip_prefix("https://")
        .ok_or("it must start with https://")?;
    if link.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces");
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let name = host.split(':').next().unwrap_or("");
    let valid = |label: &str| {
        !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !name.contains('.') || !name.split('.').all(valid) {
        return Err("it has no valid host name");
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
