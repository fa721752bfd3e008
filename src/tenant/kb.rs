//! A tenant's knowledge base: the shared base (the common answers, `[intent] kb` or the
//! embedded one, with what staff taught in its overlay) and the tenant's own file on
//! top of it. The tenant's file is written like a knowledge base file, but each
//! `[[intent]]` entry only needs what differs:
//!
//! - an entry whose `id` the base has overrides the fields it gives (an answer, a
//!   link, its examples) and keeps the rest;
//! - an entry with a new `id` is an addition and must be a whole intent;
//! - `[[menu]]` entries replace the base's entry with the same key, or add one;
//! - `[municipality]` overrides the base's name and site.
//!
//! The merge is validated exactly as one knowledge base file is, and every error names
//! the tenant, its file and the entry, so a typo in one municipality's file is found
//! at start (or its reload is refused) without touching the others.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::intent::kb::{Kb, KbError, EMBEDDED};
use crate::intent::overlay::Overlay;

#[derive(Debug, thiserror::Error)]
#[error("tenant \"{tenant}\": {source}")]
pub struct TenantKbError {
    pub tenant: String,
    #[source]
    pub source: KbError,
}

/// Where a tenant's knowledge base comes from.
#[derive(Debug, Clone)]
pub struct KbSources {
    pub tenant: String,
    /// The shared base file; None: the embedded one.
    pub base: Option<PathBuf>,
    /// The tenant's own file; None: the base alone.
    pub own: Option<PathBuf>,
}

impl KbSources {
    /// The files whose changes make this knowledge base reload.
    pub fn files(&self) -> Vec<PathBuf> {
        self.base.iter().chain(&self.own).cloned().collect()
    }

    /// Reads the files and merges them.
    pub fn load(&self) -> Result<Kb, TenantKbError> {
        let err = |source| TenantKbError {
            tenant: self.tenant.clone(),
            source,
        };
        let Some(own) = &self.own else {
            return Kb::load_or_embedded(self.base.as_deref()).map_err(err);
        };
        let base_text = match &self.base {
            Some(path) => read(path).map_err(err)?,
            None => EMBEDDED.to_string(),
        };
        let own_text = read(own).map_err(err)?;
        let overlay = match &self.base {
            Some(path) => Overlay::read(path).map_err(err)?,
            None => Overlay::default(),
        };
        merge(&base_text, &own_text, &overlay).map_err(|e| err(e.in_file(own)))
    }
}

fn read(path: &Path) -> Result<String, KbError> {
    std::fs::read_to_string(path).map_err(|source| KbError::Read {
        path: path.into(),
        source,
    })
}

/// `own` (a tenant's file) over `base` (a knowledge base file's text), with the base's
/// `overlay` applied last. The base must be valid on its own: it is checked first, so
/// an error there is not blamed on the tenant's entries.
pub fn merge(base: &str, own: &str, overlay: &Overlay) -> Result<Kb, KbError> {
    Kb::parse(base)?;
    let syntax = |e: toml::de::Error| KbError::Syntax(e.to_string());
    let mut table: toml::Table = base.parse().map_err(syntax)?;
    let own: toml::Table = own.parse().map_err(syntax)?;
    for (key, value) in own {
        match key.as_str() {
            "intent" => merge_intents(&mut table, value)?,
            "menu" => merge_menu(&mut table, value)?,
            "municipality" => merge_fields(&mut table, "municipality", value)?,
            other => {
                return Err(KbError::Syntax(format!(
                    "unknown key \"{other}\" (intent, menu and municipality exist)"
                )))
            }
        }
    }
    if overlay.is_empty() {
        return Kb::from_table(table);
    }
    let text = toml::to_string(&table).map_err(|e| KbError::Syntax(e.to_string()))?;
    overlay.apply(&text)
}

fn list(value: toml::Value, what: &str) -> Result<Vec<toml::Table>, KbError> {
    let toml::Value::Array(items) = value else {
        return Err(KbError::Syntax(format!("\"{what}\" is not a list")));
    };
    items
        .into_iter()
        .map(|v| match v {
            toml::Value::Table(t) => Ok(t),
            _ => Err(KbError::Syntax(format!(
                "an entry of \"{what}\" is not a table"
            ))),
        })
        .collect()
}

fn base_list<'a>(
    table: &'a mut toml::Table,
    key: &str,
) -> Result<&'a mut Vec<toml::Value>, KbError> {
    match table
        .entry(key)
        .or_insert_with(|| toml::Value::Array(Vec::new()))
    {
        toml::Value::Array(list) => Ok(list),
        _ => Err(KbError::Syntax(format!("\"{key}\" is not a list"))),
    }
}

fn merge_intents(table: &mut toml::Table, own: toml::Value) -> Result<(), KbError> {
    let base = base_list(table, "intent")?;
    let mut seen = HashSet::new();
    for (n, entry) in list(own, "intent")?.into_iter().enumerate() {
        let id = entry
            .get("id")
            .and_then(|v| v.as_str())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let Some(id) = id else {
            return Err(KbError::Entry {
                entry: format!("#{} (no id)", n + 1),
                problem: "has no id: an override names the intent it changes".into(),
            });
        };
        let bad = |problem: String| KbError::Entry {
            entry: format!("\"{id}\""),
            problem,
        };
        if !seen.insert(id.clone()) {
            return Err(bad("is given twice in the tenant's file".into()));
        }
        let found = base.iter_mut().find_map(|v| match v {
            toml::Value::Table(t) if t.get("id").and_then(|i| i.as_str()) == Some(id.as_str()) => {
                Some(t)
            }
            _ => None,
        });
        match found {
            Some(base_entry) => {
                let kind =
                    |t: &toml::Table| t.get("kind").and_then(|k| k.as_str()).map(str::to_string);
                if let (Some(was), Some(now)) = (kind(&*base_entry), kind(&entry)) {
                    if was != now {
                        return Err(bad(format!(
                            "overrides the base's \"{was}\" intent as \"{now}\": give it an id of its own"
                        )));
                    }
                }
                base_entry.extend(entry);
            }
            None => base.push(toml::Value::Table(entry)),
        }
    }
    Ok(())
}

fn merge_menu(table: &mut toml::Table, own: toml::Value) -> Result<(), KbError> {
    let base = base_list(table, "menu")?;
    for (n, entry) in list(own, "menu")?.into_iter().enumerate() {
        let Some(key) = entry.get("key").and_then(|k| k.as_integer()) else {
            return Err(KbError::Menu {
                entry: format!("#{}", n + 1),
                problem: "has no key".into(),
            });
        };
        let same_key = |v: &toml::Value| v.get("key").and_then(|k| k.as_integer()) == Some(key);
        match base.iter_mut().find(|v| same_key(v)) {
            Some(slot) => *slot = toml::Value::Table(entry),
            None => base.push(toml::Value::Table(entry)),
        }
    }
    Ok(())
}

fn merge_fields(table: &mut toml::Table, key: &str, own: toml::Value) -> Result<(), KbError> {
    let toml::Value::Table(own) = own else {
        return Err(KbError::Syntax(format!("\"{key}\" is not a table")));
    };
    match table
        .entry(key)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
    {
        toml::Value::Table(base) => base.extend(own),
        _ => return Err(KbError::Syntax(format!("\"{key}\" is not a table"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::resolution::Language;

    fn answer(kb: &Kb, id: &str) -> String {
        kb.get(id)
            .unwrap()
            .answer
            .as_ref()
            .unwrap()
            .get(Language::Da)
            .to_string()
    }

    const ADDED: &str = "[[intent]]\nid = \"a.hund\"\ntopic = \"general\"\nkind = \"answer\"\n\
        link = \"https://a.example.org/hund\"\ntitle = { da = \"Hund\", en = \"Dog\" }\n\
        answer = { da = \"Hundeskat findes ikke i A.\", en = \"No dog tax in A.\" }\n\
        examples.da = [\"hund 1\", \"hund 2\", \"hund 3\", \"hund 4\", \"hund 5\"]\n\
        examples.en = [\"dog 1\", \"dog 2\", \"dog 3\", \"dog 4\", \"dog 5\"]\n";

    #[test]
    fn overrides_change_only_their_fields_and_additions_join() {
        let base = Kb::embedded().unwrap();
        let own = format!(
            "[municipality]\nname = \"A Kommune\"\n\
             [[intent]]\nid = \"pas_koerekort.nyt_pas\"\n\
             answer = {{ da = \"Pas i A: kom forbi.\", en = \"Passports in A: drop in.\" }}\n{ADDED}"
        );
        let kb = merge(EMBEDDED, &own, &Overlay::default()).unwrap();
        assert_eq!(answer(&kb, "pas_koerekort.nyt_pas"), "Pas i A: kom forbi.");
        let (was, now) = (
            base.get("pas_koerekort.nyt_pas").unwrap(),
            kb.get("pas_koerekort.nyt_pas").unwrap(),
        );
        assert_eq!(
            (&now.title, &now.examples_da),
            (&was.title, &was.examples_da)
        );
        assert_eq!(answer(&kb, "a.hund"), "Hundeskat findes ikke i A.");
        assert_eq!(kb.intents.len(), base.intents.len() + 1);
        assert_eq!(kb.municipality.name, "A Kommune");
        assert_eq!(kb.municipality.base_url, base.municipality.base_url);
    }

    #[test]
    fn conflicts_and_invalid_entries_name_the_tenant_and_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("a.toml");
        let sources = KbSources {
            tenant: "a".into(),
            base: None,
            own: Some(own.clone()),
        };
        let cases = [
            (
                "[[intent]]\nid = \"pas_koerekort.nyt_pas\"\nkind = \"person\"\n".to_string(),
                "intent \"pas_koerekort.nyt_pas\": overrides the base's \"answer\" intent as \"person\"",
            ),
            (
                format!("{ADDED}{ADDED}"),
                "intent \"a.hund\": is given twice in the tenant's file",
            ),
            (
                "[[intent]]\ntopic = \"affald\"\n".into(),
                "intent #1 (no id): has no id",
            ),
            (
                ADDED.replace("topic = \"general\"", "topic = \"hunde\""),
                "intent \"a.hund\": unknown topic \"hunde\"",
            ),
            (
                "[[intent]]\nid = \"pas_koerekort.nyt_pas\"\nlink = \"http://a.example.org\"\n".into(),
                "intent \"pas_koerekort.nyt_pas\": link \"http://a.example.org\" is not usable",
            ),
            ("[kommune]\nname = \"A\"\n".into(), "unknown key \"kommune\""),
        ];
        for (text, want) in cases {
            std::fs::write(&own, &text).unwrap();
            let e = sources.load().unwrap_err().to_string();
            assert!(e.starts_with("tenant \"a\": knowledge base "), "{e}");
            assert!(e.contains("a.toml"), "{e}");
            assert!(e.contains(want), "{e}\nwanted {want}");
        }
        let missing = KbSources {
            own: Some(dir.path().join("nowhere.toml")),
            ..sources
        };
        let e = missing.load().unwrap_err().to_string();
        assert!(
            e.contains("tenant \"a\"") && e.contains("nowhere.toml"),
            "{e}"
        );
    }

    #[test]
    fn the_base_overlay_reaches_every_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("kommune.toml");
        std::fs::write(&base, EMBEDDED).unwrap();
        std::fs::write(
            crate::intent::overlay::path_for(&base),
            "[[example]]\nintent = \"pas_koerekort.nyt_pas\"\nlang = \"da\"\ntext = \"lært af personalet til alle\"\n",
        )
        .unwrap();
        let own = dir.path().join("a.toml");
        std::fs::write(&own, ADDED).unwrap();
        let kb = KbSources {
            tenant: "a".into(),
            base: Some(base),
            own: Some(own),
        }
        .load()
        .unwrap();
        assert_eq!(
            kb.get("pas_koerekort.nyt_pas").unwrap().examples_da[0],
            "lært af personalet til alle"
        );
        assert!(kb.get("a.hund").is_some());
    }

    #[tokio::test]
    async fn a_change_to_the_tenants_file_reloads_its_merged_knowledge_base() {
        use crate::intent::{matcher::Matcher, reload};
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("a.toml");
        let answer_is = |text: &str| {
            format!(
                "[[intent]]\nid = \"pas_koerekort.nyt_pas\"\n\
                 answer = {{ da = \"{text}\", en = \"{text}\" }}\n"
            )
        };
        std::fs::write(&own, answer_is("Først.")).unwrap();
        let sources = KbSources {
            tenant: "a".into(),
            base: None,
            own: Some(own.clone()),
        };
        let shared = reload::shared(Matcher::new(sources.load().unwrap()));
        let load: reload::Loader = {
            let sources = sources.clone();
            std::sync::Arc::new(move || sources.load().map_err(|e| e.to_string()))
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(reload::watch_files(
            sources.files(),
            load,
            shared.clone(),
            Duration::from_millis(20),
            cancel.clone(),
        ));
        // Longer, so the change is seen even within one modification-time tick.
        std::fs::write(&own, answer_is("Derefter, og længere.")).unwrap();
        let mut reloaded = false;
        for _ in 0..200 {
            reloaded = answer(reload::current(&shared).kb(), "pas_koerekort.nyt_pas")
                == "Derefter, og længere.";
            if reloaded {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(reloaded, "the tenant's change is in service");
        assert!(
            reload::current(&shared)
                .kb()
                .get("affald.toemning")
                .is_some(),
            "merged over the base"
        );
        cancel.cancel();
        task.await.unwrap();
    }
}
