//! `[[tenants]]`: one entry per municipality served by this gateway. Each key not
//! given falls back to the shared setting (`[intent] kb`, `[prompts]`, `[transfer]`,
//! `[sms] from`), so a tenant is written as what makes it different.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::number::normalise;
use crate::config::{QueueConfig, TransferConfig};

/// The name of the one tenant a config without `[[tenants]]` has.
pub const DEFAULT_TENANT: &str = "default";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Shown on the dashboard, in call records and as the `tenant` metrics label.
    pub name: String,
    /// Called numbers (the INVITE's Request-URI user, or its To) that reach this tenant,
    /// in any common writing (`+45 70 00 00 01`, `004570000001`, `70000001`).
    #[serde(default)]
    pub numbers: Vec<String>,
    /// SIP domains (the Request-URI's host) that reach it when no number matches.
    #[serde(default)]
    pub domains: Vec<String>,
    /// The language its lines are answered in; default: `[stt] language`. A number
    /// listed in `[stt] languages` keeps the language given there.
    #[serde(default)]
    pub language: Option<String>,
    /// Its knowledge base: overrides (same id) and additions merged over the shared
    /// base (`[intent] kb`, or the embedded one).
    #[serde(default)]
    pub kb: Option<PathBuf>,
    /// Prompt overrides per language, as `[prompts.da]` (merged over `[prompts]`).
    #[serde(default)]
    pub prompts: toml::Table,
    /// The greeting in the tenant's language: `prompts.<language>.greeting`, shorter.
    #[serde(default)]
    pub greeting: Option<String>,
    /// Its queues and their opening hours (as `[[transfer.queues]]`); default: the
    /// shared ones.
    #[serde(default)]
    pub queues: Option<Vec<QueueConfig>>,
    /// As `[transfer] default_queue`, among its own queues.
    #[serde(default)]
    pub default_queue: Option<String>,
    /// Closed days besides the Danish public holidays; default: `[transfer]`'s.
    #[serde(default)]
    pub closed_dates: Option<Vec<String>>,
    /// Sender shown on the phone for its SMS (as `[sms] from`); default: `[sms] from`.
    #[serde(default)]
    pub sms_from: Option<String>,
}

impl TenantConfig {
    /// The tenant a config without `[[tenants]]` runs as: everything shared.
    pub fn implicit() -> TenantConfig {
        TenantConfig {
            name: DEFAULT_TENANT.into(),
            numbers: Vec::new(),
            domains: Vec::new(),
            language: None,
            kb: None,
            prompts: toml::Table::new(),
            greeting: None,
            queues: None,
            default_queue: None,
            closed_dates: None,
            sms_from: None,
        }
    }

    /// The language of its lines, `shared` (`[stt] language`) when not given.
    pub fn language<'a>(&'a self, shared: &'a str) -> &'a str {
        self.language.as_deref().unwrap_or(shared)
    }

    /// `[transfer]` as this tenant sees it: its own queues, hours and closed days.
    pub fn transfer(&self, shared: &TransferConfig) -> TransferConfig {
        let mut t = shared.clone();
        if let Some(queues) = &self.queues {
            t.queues = queues.clone();
            t.default_queue = None;
        }
        if self.default_queue.is_some() {
            t.default_queue = self.default_queue.clone();
        }
        if let Some(closed) = &self.closed_dates {
            t.closed_dates = closed.clone();
        }
        t
    }

    /// `[prompts]` as this tenant sees it: its own texts over the shared ones, key by
    /// key, with `greeting` as its language's greeting.
    pub fn prompts(&self, shared: &toml::Table, shared_language: &str) -> toml::Table {
        let mut out = shared.clone();
        for (lang, over) in &self.prompts {
            match (out.get_mut(lang), over) {
                (Some(toml::Value::Table(base)), toml::Value::Table(over)) => {
                    base.extend(over.clone());
                }
                _ => {
                    out.insert(lang.clone(), over.clone());
                }
            }
        }
        if let Some(greeting) = &self.greeting {
            let lang = self.language(shared_language).to_string();
            if let toml::Value::Table(t) = out
                .entry(lang)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            {
                t.insert("greeting".into(), toml::Value::String(greeting.clone()));
            }
        }
        out
    }
}

/// What serde cannot check: names, numbers and domains each once, known languages, and
/// a greeting given one way only. Errors name the tenant.
pub fn check(tenants: &[TenantConfig], shared_language: &str) -> Result<(), String> {
    let mut names = HashMap::new();
    let mut numbers: HashMap<String, &str> = HashMap::new();
    let mut domains: HashMap<String, &str> = HashMap::new();
    for t in tenants {
        let name = t.name.trim();
        if name.is_empty() {
            return Err("[[tenants]] every tenant needs a name".into());
        }
        let bad = |problem: String| Err(format!("[[tenants]] tenant \"{name}\": {problem}"));
        if names.insert(name, ()).is_some() {
            return bad("the name is used twice".into());
        }
        let language = t.language(shared_language);
        if !matches!(language, "da" | "en") {
            return bad(format!("language \"{language}\" (da and en exist)"));
        }
        for number in &t.numbers {
            let key = normalise(number);
            if key.is_empty() {
                return bad("an empty number".into());
            }
            if let Some(other) = numbers.insert(key, name) {
                return bad(format!("number \"{number}\" is also tenant \"{other}\"'s"));
            }
        }
        for domain in &t.domains {
            let key = domain.trim().to_ascii_lowercase();
            if key.is_empty() {
                return bad("an empty domain".into());
            }
            if let Some(other) = domains.insert(key, name) {
                return bad(format!("domain \"{domain}\" is also tenant \"{other}\"'s"));
            }
        }
        let greeting_prompt = t
            .prompts
            .get(language)
            .and_then(|p| p.as_table())
            .is_some_and(|p| p.contains_key("greeting"));
        if t.greeting.is_some() && greeting_prompt {
            return bad(format!(
                "greeting and prompts.{language}.greeting both given; keep one"
            ));
        }
        if t.queues.as_ref().is_some_and(Vec::is_empty) {
            return bad("queues is empty (leave it out to use [transfer]'s)".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants(toml: &str) -> Vec<TenantConfig> {
        #[derive(Deserialize)]
        struct File {
            tenants: Vec<TenantConfig>,
        }
        toml::from_str::<File>(toml).unwrap().tenants
    }

    #[test]
    fn a_tenant_overrides_only_what_it_gives() {
        let t = &tenants(
            "[[tenants]]\nname = \"a\"\nlanguage = \"en\"\ngreeting = \"Hi from A.\"\n\
             prompts.en.farewell = \"Bye from A.\"\nsms_from = \"KommuneA\"\n",
        )[0];
        let shared: toml::Table =
            toml::from_str("[da]\nfarewell = \"Farvel.\"\n[en]\nfiller = \"Hold on.\"\n").unwrap();
        let p = t.prompts(&shared, "da");
        assert_eq!(p["en"]["greeting"].as_str(), Some("Hi from A."));
        assert_eq!(p["en"]["farewell"].as_str(), Some("Bye from A."));
        assert_eq!(p["en"]["filler"].as_str(), Some("Hold on."));
        assert_eq!(p["da"]["farewell"].as_str(), Some("Farvel."));
        let transfer = t.transfer(&TransferConfig::default());
        assert_eq!(transfer.queues[0].name, "borgerservice");
        assert_eq!(t.language("da"), "en");
    }

    #[test]
    fn its_own_queues_replace_the_shared_ones() {
        let t = &tenants(
            "[[tenants]]\nname = \"a\"\nclosed_dates = [\"2026-12-24\"]\n\
             [[tenants.queues]]\nname = \"a-queue\"\nuri = \"sip:a@127.0.0.1\"\n\
             hours = { mon = \"08:00-15:00\" }\n",
        )[0];
        let shared = TransferConfig {
            default_queue: Some("borgerservice".into()),
            ..TransferConfig::default()
        };
        let transfer = t.transfer(&shared);
        let names: Vec<&str> = transfer.queues.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["a-queue"]);
        assert_eq!(
            transfer.default_queue, None,
            "the shared default is not its"
        );
        assert_eq!(transfer.closed_dates, ["2026-12-24"]);
    }

    #[test]
    fn mistakes_name_the_tenant() {
        let cases = [
            (
                "[[tenants]]\nname = \"a\"\nnumbers = [\"+45 70000001\"]\n\
                 [[tenants]]\nname = \"b\"\nnumbers = [\"004570000001\"]\n",
                "tenant \"b\": number \"004570000001\" is also tenant \"a\"'s",
            ),
            (
                "[[tenants]]\nname = \"a\"\n[[tenants]]\nname = \"a\"\n",
                "tenant \"a\": the name is used twice",
            ),
            (
                "[[tenants]]\nname = \"a\"\nlanguage = \"sv\"\n",
                "tenant \"a\": language \"sv\"",
            ),
            (
                "[[tenants]]\nname = \"a\"\ngreeting = \"Hej\"\nprompts.da.greeting = \"Goddag\"\n",
                "tenant \"a\": greeting and prompts.da.greeting both given",
            ),
            (
                "[[tenants]]\nname = \"a\"\ndomains = [\"a.example.org\"]\n\
                 [[tenants]]\nname = \"b\"\ndomains = [\"A.example.org\"]\n",
                "tenant \"b\": domain \"A.example.org\" is also tenant \"a\"'s",
            ),
            ("[[tenants]]\nname = \" \"\n", "every tenant needs a name"),
        ];
        for (toml, want) in cases {
            let e = check(&tenants(toml), "da").unwrap_err();
            assert!(e.contains(want), "{e}\nwanted {want}");
        }
    }
}
