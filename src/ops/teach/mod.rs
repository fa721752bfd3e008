//! Staff teach the bot from the calls it could not handle: the questions it missed
//! ([`unresolved`]), a draft of new example phrasings and new intents, a replay of
//! the last 30 days' calls against the draft ([`preview`]), and publishing it as the
//! knowledge base's overlay ([`overlay`](crate::intent::overlay)) with a versioned,
//! reversible [`history`]. The knowledge base file itself is never written.
//!
//! Files next to the knowledge base `kommune.toml`: `kommune.overlay.toml` (in
//! service), `kommune.draft.toml` (not yet published; survives a restart) and
//! `kommune.history.jsonl`. Changes are serialised by one lock: two staff members
//! publishing at once get one version each, never a mix.

pub mod api;
mod diff;
pub mod history;
pub mod preview;
pub mod unresolved;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use crate::intent::kb::{Kb, KbError};
use crate::intent::matcher::Matcher;
use crate::intent::overlay::{self, sibling, AddedExample, NewIntent, Overlay};
use crate::intent::reload::{self, SharedMatcher};
use crate::ops::records::{Records, RecordsError};
use crate::storage::Store;
use history::{Change, History, Version};

/// How far back the unresolved list and the preview look.
pub const LOOKBACK_SECS: i64 = 30 * 86_400;
/// Changes a draft may hold, and the overlay in service: past this, reviewed entries
/// belong in the knowledge base file.
pub const MAX_CHANGES: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum TeachError {
    #[error("unknown intent \"{0}\"")]
    UnknownIntent(String),
    #[error("unknown version {0}")]
    UnknownVersion(u32),
    /// Input that breaks a rule (a field, or the knowledge base's own rules).
    #[error("{0}")]
    Invalid(String),
    /// Input that cannot be read at all.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the knowledge base: {0}")]
    Kb(#[from] KbError),
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error("teach files: {0}")]
    Io(#[from] std::io::Error),
}

/// The draft as staff see it: what it changes, and the overlay file's diff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DraftView {
    pub what: Vec<String>,
    pub diff: Vec<String>,
}

/// One intent as the teach page lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentSummary {
    pub id: String,
    pub topic: String,
    pub kind: &'static str,
    pub title_da: String,
    pub title_en: String,
}

pub struct Teacher {
    kb: PathBuf,
    matcher: SharedMatcher,
    records: Store,
    history: History,
    lock: Mutex<()>,
}

/// Writes `text` whole or not at all (a reader, such as the reload watcher of another
/// process, never sees half a file); empty text removes the file.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    if text.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

impl Teacher {
    /// Teaching for the knowledge base file `kb`, whose matcher in service is
    /// `matcher`; questions come from the call records at `records`.
    pub fn new(kb: PathBuf, matcher: SharedMatcher, records: Store) -> Teacher {
        Teacher {
            history: History::new(sibling(&kb, "history.jsonl")),
            kb,
            matcher,
            records,
            lock: Mutex::new(()),
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn draft_path(&self) -> PathBuf {
        sibling(&self.kb, "draft.toml")
    }

    fn draft(&self) -> Result<Overlay, TeachError> {
        match std::fs::read_to_string(self.draft_path()) {
            Ok(text) => Ok(Overlay::parse(&text).map_err(|e| e.in_file(&self.draft_path()))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Overlay::default()),
            Err(e) => Err(e.into()),
        }
    }

    fn published(&self) -> Result<Overlay, TeachError> {
        Ok(Overlay::read(&self.kb)?)
    }

    /// The knowledge base file with `overlay` merged in; a problem is the caller's.
    fn merged(&self, overlay: &Overlay) -> Result<Kb, TeachError> {
        let base = std::fs::read_to_string(&self.kb)?;
        overlay
            .apply(&base)
            .map_err(|e| TeachError::Invalid(e.to_string()))
    }

    fn view(&self, draft: &Overlay) -> Result<DraftView, TeachError> {
        let published = self.published()?;
        Ok(DraftView {
            what: draft.describe(),
            diff: diff::lines(&published.to_toml(), &published.extended(draft).to_toml()),
        })
    }

    /// Adds `change` to the draft if the whole still makes a valid knowledge base.
    fn add(&self, change: Overlay) -> Result<DraftView, TeachError> {
        let _one_at_a_time = self.locked();
        let draft = self.draft()?.extended(&change);
        let published = self.published()?;
        let changes = |o: &Overlay| o.examples.len() + o.intents.len();
        if changes(&draft) > MAX_CHANGES || changes(&published.extended(&draft)) > MAX_CHANGES {
            return Err(TeachError::Conflict(format!(
                "at most {MAX_CHANGES} taught changes: move reviewed ones into the knowledge base file"
            )));
        }
        self.merged(&published.extended(&draft))?;
        write_atomically(&self.draft_path(), &draft.to_toml())?;
        self.view(&draft)
    }

    /// The intents of the knowledge base in service and of the draft.
    pub fn intents(&self) -> Result<Vec<IntentSummary>, TeachError> {
        let kb = self.merged(&self.published()?.extended(&self.draft()?))?;
        Ok(kb
            .intents
            .iter()
            .map(|i| IntentSummary {
                id: i.id.clone(),
                topic: i.topic.clone(),
                kind: i.kind.as_str(),
                title_da: i.title.da.clone(),
                title_en: i.title.en.clone(),
            })
            .collect())
    }

    /// Drafts `text` as a new example of intent `intent` (checked by the caller).
    pub fn add_example(&self, example: AddedExample) -> Result<DraftView, TeachError> {
        let kb = self.merged(&self.published()?.extended(&self.draft()?))?;
        let lang = example.language().map_err(TeachError::Invalid)?;
        let intent = kb
            .get(&example.intent)
            .ok_or_else(|| TeachError::UnknownIntent(example.intent.clone()))?;
        let text = example.text.trim();
        if intent
            .examples(lang)
            .iter()
            .any(|e| e.trim().eq_ignore_ascii_case(text))
        {
            return Err(TeachError::Conflict(format!(
                "\"{text}\" is already an example of {}",
                intent.id
            )));
        }
        self.add(Overlay {
            examples: vec![example],
            intents: Vec::new(),
        })
    }

    pub fn add_intent(&self, intent: NewIntent) -> Result<DraftView, TeachError> {
        self.add(Overlay {
            examples: Vec::new(),
            intents: vec![intent],
        })
    }

    pub fn draft_view(&self) -> Result<DraftView, TeachError> {
        self.view(&self.draft()?)
    }

    pub fn discard(&self) -> Result<DraftView, TeachError> {
        let _one_at_a_time = self.locked();
        write_atomically(&self.draft_path(), "")?;
        self.view(&Overlay::default())
    }

    fn recent_calls(
        &self,
        now_unix: i64,
    ) -> Result<Vec<crate::ops::records::CallRecord>, TeachError> {
        Ok(Records::open(&self.records)?.since(now_unix - LOOKBACK_SECS)?)
    }

    pub fn unresolved(&self, now_unix: i64) -> Result<Vec<unresolved::Group>, TeachError> {
        let calls = self.recent_calls(now_unix)?;
        Ok(unresolved::group(
            &calls,
            reload::current(&self.matcher).kb(),
        ))
    }

    /// The last 30 days' calls replayed through the matcher in service and the draft.
    pub fn preview(&self, now_unix: i64) -> Result<preview::Preview, TeachError> {
        let draft = self.merged(&self.published()?.extended(&self.draft()?))?;
        let calls = self.recent_calls(now_unix)?;
        Ok(preview::replay(
            &calls,
            &reload::current(&self.matcher),
            &Matcher::new(draft),
        ))
    }

    /// Puts `overlay` in service: written next to the knowledge base, recorded as the
    /// next version, and loaded into the matcher at once.
    fn put_in_service(
        &self,
        overlay: &Overlay,
        change: Change,
        now_unix: i64,
    ) -> Result<Version, TeachError> {
        let kb = self.merged(overlay)?;
        let before = self.published()?.to_toml();
        let text = overlay.to_toml();
        let version = self.history.append(&before, &text, change, now_unix)?;
        write_atomically(&overlay::path_for(&self.kb), &text)?;
        reload::replace(&self.matcher, Matcher::new(kb));
        tracing::info!(version = version.version, author = %version.author, "knowledge base overlay published");
        Ok(version)
    }

    pub fn publish(
        &self,
        author: String,
        why: String,
        now_unix: i64,
    ) -> Result<Version, TeachError> {
        let _one_at_a_time = self.locked();
        let draft = self.draft()?;
        if draft.is_empty() {
            return Err(TeachError::Conflict(
                "nothing to publish: the draft is empty".into(),
            ));
        }
        let next = self.published()?.extended(&draft);
        let change = Change {
            author,
            why,
            what: draft.describe(),
        };
        let version = self.put_in_service(&next, change, now_unix)?;
        write_atomically(&self.draft_path(), "")?;
        Ok(version)
    }

    /// Newest first.
    pub fn history(&self) -> Result<Vec<Version>, TeachError> {
        let mut all = self.history.read()?;
        all.reverse();
        Ok(all)
    }

    /// Puts version `version`'s overlay back in service, as a new version.
    pub fn rollback(
        &self,
        version: u32,
        author: String,
        why: String,
        now_unix: i64,
    ) -> Result<Version, TeachError> {
        let _one_at_a_time = self.locked();
        let target = self
            .history
            .read()?
            .into_iter()
            .find(|v| v.version == version)
            .ok_or(TeachError::UnknownVersion(version))?;
        let overlay = Overlay::parse(&target.overlay)?;
        if overlay == self.published()? {
            return Err(TeachError::Conflict(format!(
                "version {version} is what is in service"
            )));
        }
        let change = Change {
            author,
            why,
            what: vec![format!("roll-back to version {version}")],
        };
        self.put_in_service(&overlay, change, now_unix)
    }
}

#[cfg(test)]
mod tests;
