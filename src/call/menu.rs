//! The keypad menu a caller gets when speech fails: "Tryk 1 for affald, 2 for pas og
//! kørekort, ..., eller 0 for en medarbejder." A digit opens that entry's own menu of
//! answers ("Tryk 1 for Tømningskalender, ..."), and a digit there picks an answer.
//!
//! Recognition of Danish telephone speech is poor, so the keypad is the way out that
//! always works. The menu is built once from the knowledge base's `[[menu]]` entries
//! and shared by all calls; this file holds the model, how it is read out and which
//! digit means what. When to offer it, and what a wrong key costs, is the
//! conversation's business.

use super::prompts::Prompts;
use crate::intent::kb::{Kb, Text};
use crate::intent::resolution::{Kind, Language};

/// At most this many choices are read out per menu (keys 1 to 8; 0 and 9 are taken).
pub const MAX_CHOICES: usize = 8;

/// One answer in an entry's menu.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub intent_id: String,
    pub title: Text,
}

/// One top-level choice and the answers it leads to (key 1 first).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// '1' to '8'.
    pub key: char,
    pub title: Text,
    pub choices: Vec<Choice>,
}

/// The whole menu; empty when the knowledge base has none (the conversation then
/// asks the caller to rephrase instead).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Menu {
    entries: Vec<Entry>,
}

/// Where in the menu the caller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Top,
    /// The menu of the entry at this index.
    Entry(usize),
}

/// What a digit means at a level.
#[derive(Debug, Clone, PartialEq)]
pub enum Pick {
    /// Opens the menu of the entry at this index.
    Entry(usize),
    /// An answer, with its title as read out in the call's language.
    Intent { intent_id: String, title: String },
    /// Not one of the choices.
    Invalid,
}

impl Menu {
    /// Entries without choices are dropped; choices beyond [`MAX_CHOICES`] too.
    pub fn new(entries: Vec<Entry>) -> Menu {
        let entries = entries
            .into_iter()
            .filter(|e| !e.choices.is_empty())
            .map(|mut e| {
                e.choices.truncate(MAX_CHOICES);
                e
            })
            .take(MAX_CHOICES)
            .collect();
        Menu { entries }
    }

    /// Each `[[menu]]` entry lists the answer intents of its topics, the first eight in
    /// the knowledge base's order.
    pub fn from_kb(kb: &Kb) -> Menu {
        let entries = kb
            .menu
            .iter()
            .map(|m| Entry {
                key: char::from(b'0' + m.key),
                title: m.title.clone(),
                choices: kb
                    .intents
                    .iter()
                    .filter(|i| i.kind == Kind::Answer && m.topics.contains(&i.topic))
                    .map(|i| Choice {
                        intent_id: i.id.clone(),
                        title: i.title.clone(),
                    })
                    .collect(),
            })
            .collect();
        Menu::new(entries)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// What `digit` picks at `level`.
    pub fn pick(&self, level: Level, digit: char, lang: Language) -> Pick {
        match level {
            Level::Top => self
                .entries
                .iter()
                .position(|e| e.key == digit)
                .map_or(Pick::Invalid, Pick::Entry),
            Level::Entry(entry) => {
                let choice = digit
                    .to_digit(10)
                    .filter(|&d| d >= 1)
                    .and_then(|d| self.entries.get(entry)?.choices.get(d as usize - 1));
                match choice {
                    Some(c) => Pick::Intent {
                        intent_id: c.intent_id.clone(),
                        title: c.title.get(lang).to_string(),
                    },
                    None => Pick::Invalid,
                }
            }
        }
    }

    /// The menu at `level` after `lead` ("I did not quite understand."), if any.
    pub fn speak_after(
        &self,
        lead: Option<&str>,
        level: Level,
        prompts: &Prompts,
        lang: Language,
    ) -> String {
        let menu = self.speak(level, prompts, lang);
        match lead {
            Some(lead) => format!("{lead} {menu}"),
            None => menu,
        }
    }

    /// The menu at `level` read out, e.g. "Tryk 1 for affald, 2 for pas og kørekort,
    /// eller 0 for en medarbejder. ..."
    pub fn speak(&self, level: Level, prompts: &Prompts, lang: Language) -> String {
        let choices = |items: Vec<(char, &str)>| {
            items
                .into_iter()
                .map(|(key, title)| {
                    prompts
                        .menu_choice
                        .replace("{key}", &key.to_string())
                        .replace("{title}", title)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        match level.entry().and_then(|i| self.entries.get(i)) {
            None => {
                let items = self.entries.iter().map(|e| (e.key, e.title.get(lang)));
                prompts.menu.replace("{choices}", &choices(items.collect()))
            }
            Some(entry) => {
                let items = (1..)
                    .zip(&entry.choices)
                    .map(|(n, c)| (char::from_digit(n, 10).unwrap_or('?'), c.title.get(lang)));
                prompts
                    .submenu
                    .replace("{title}", entry.title.get(lang))
                    .replace("{choices}", &choices(items.collect()))
            }
        }
    }

    /// Every menu read out in one language, as after a miss and as repeated, for
    /// warming the prompt cache.
    pub fn all_spoken(&self, prompts: &Prompts, lang: Language) -> Vec<String> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut texts = vec![
            self.speak_after(Some(&prompts.menu_intro), Level::Top, prompts, lang),
            self.speak(Level::Top, prompts, lang),
        ];
        texts.extend((0..self.entries.len()).map(|i| self.speak(Level::Entry(i), prompts, lang)));
        texts
    }
}

impl Level {
    fn entry(self) -> Option<usize> {
        match self {
            Level::Top => None,
            Level::Entry(i) => Some(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(da: &str, en: &str) -> Text {
        Text {
            da: da.into(),
            en: en.into(),
        }
    }

    #[test]
    fn the_embedded_menu_reads_out_its_entries_and_their_answers() {
        let kb = Kb::embedded().unwrap();
        let menu = Menu::from_kb(&kb);
        assert_eq!(menu.entries().len(), kb.menu.len());
        let da = Prompts::danish();
        let top = menu.speak(Level::Top, &da, Language::Da);
        assert!(
            top.starts_with("Tryk 1 for affald, 2 for pas og kørekort, 3 for"),
            "{top}"
        );
        assert!(top.contains(", eller 0 for en medarbejder."), "{top}");
        assert_eq!(menu.pick(Level::Top, '1', Language::Da), Pick::Entry(0));
        let waste = menu.speak(Level::Entry(0), &da, Language::Da);
        assert!(
            waste.starts_with(
                "Om affald: Tryk 1 for Tømningskalender, 2 for Bestil afhentning af storskrald,"
            ),
            "{waste}"
        );
        assert_eq!(
            menu.pick(Level::Entry(0), '2', Language::En),
            Pick::Intent {
                intent_id: "affald.storskrald".into(),
                title: "Book a bulky waste pickup".into()
            }
        );
        let en = menu.speak(Level::Top, &Prompts::english(), Language::En);
        assert!(en.starts_with("Press 1 for waste, 2 for passports"), "{en}");
        assert_eq!(menu.all_spoken(&da, Language::Da).len(), 2 + kb.menu.len());
        assert!(Menu::default().all_spoken(&da, Language::Da).is_empty());
    }

    #[test]
    fn a_menu_keeps_the_first_eight_answers_of_its_topics_in_kb_order() {
        let kb = Kb::embedded().unwrap();
        let menu = Menu::from_kb(&kb);
        // Passports and driving licences: nine answers in the knowledge base.
        let pas = &menu.entries()[1];
        assert_eq!(pas.choices.len(), MAX_CHOICES);
        let in_kb: Vec<&str> = kb
            .intents
            .iter()
            .filter(|i| i.topic == "pas_koerekort")
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(in_kb.len(), 9);
        let offered: Vec<&str> = pas.choices.iter().map(|c| c.intent_id.as_str()).collect();
        assert_eq!(offered, in_kb[..8]);
        // Only answers are offered, never the special intents.
        assert!(menu.entries().iter().flat_map(|e| &e.choices).all(|c| kb
            .get(&c.intent_id)
            .unwrap()
            .kind
            == Kind::Answer));
    }

    #[test]
    fn digits_that_are_no_choice_are_invalid() {
        let menu = Menu::new(vec![Entry {
            key: '3',
            title: text("affald", "waste"),
            choices: vec![Choice {
                intent_id: "affald.a".into(),
                title: text("A", "A"),
            }],
        }]);
        assert_eq!(menu.pick(Level::Top, '3', Language::Da), Pick::Entry(0));
        for d in ['1', '0', '9', '*', '#'] {
            assert_eq!(menu.pick(Level::Top, d, Language::Da), Pick::Invalid, "{d}");
        }
        assert!(matches!(
            menu.pick(Level::Entry(0), '1', Language::Da),
            Pick::Intent { .. }
        ));
        for d in ['0', '2', '9', '*'] {
            assert_eq!(
                menu.pick(Level::Entry(0), d, Language::Da),
                Pick::Invalid,
                "{d}"
            );
        }
        assert_eq!(menu.pick(Level::Entry(7), '1', Language::Da), Pick::Invalid);
    }

    #[test]
    fn a_knowledge_base_without_a_menu_gives_an_empty_one() {
        let mut kb = Kb::embedded().unwrap();
        kb.menu.clear();
        assert!(Menu::from_kb(&kb).is_empty());
        let empty = Menu::new(vec![Entry {
            key: '1',
            title: text("x", "x"),
            choices: vec![],
        }]);
        assert!(empty.is_empty(), "an entry without answers is dropped");
    }
}
