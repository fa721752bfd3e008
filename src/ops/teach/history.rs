//! Every version of the overlay that was in service, with who published it, when,
//! why, what it changed and a diff: one JSON line per version in a file next to the
//! knowledge base (`kommune.history.jsonl`), appended and never rewritten, so a
//! roll-back is a new version too and nothing is lost.
//!
//! Version 0 is the overlay as it was before the first change from the teach page
//! (usually none: the knowledge base file alone).

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::diff;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub version: u32,
    /// Unix seconds.
    pub at: i64,
    pub author: String,
    pub why: String,
    /// One line per change, for people.
    pub what: Vec<String>,
    /// The overlay file's lines added ("+ ") and removed ("- ").
    pub diff: Vec<String>,
    /// The overlay file's whole text in this version (empty: no overlay).
    pub overlay: String,
}

pub struct History {
    path: PathBuf,
}

impl History {
    pub fn new(path: PathBuf) -> History {
        History { path }
    }

    /// All versions, oldest first; none before the first publish.
    pub fn read(&self) -> std::io::Result<Vec<Version>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
            .collect()
    }

    /// Records `overlay` as the next version (and, the first time, what was in
    /// service before it as version 0); returns the new version.
    pub fn append(
        &self,
        before: &str,
        overlay: &str,
        change: Change,
        at: i64,
    ) -> std::io::Result<Version> {
        let versions = self.read()?;
        let mut lines = Vec::new();
        let last = match versions.last() {
            Some(v) => v.version,
            None => {
                lines.push(Version {
                    version: 0,
                    at,
                    author: String::new(),
                    why: "before the first change from the teach page".into(),
                    what: Vec::new(),
                    diff: Vec::new(),
                    overlay: before.to_string(),
                });
                0
            }
        };
        let version = Version {
            version: last + 1,
            at,
            author: change.author,
            why: change.why,
            what: change.what,
            diff: diff::lines(before, overlay),
            overlay: overlay.to_string(),
        };
        lines.push(version.clone());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut out = String::new();
        for v in &lines {
            out.push_str(&serde_json::to_string(v).map_err(std::io::Error::other)?);
            out.push('\n');
        }
        // One write per publish, so a crash leaves whole lines.
        file.write_all(out.as_bytes())?;
        file.sync_all()?;
        Ok(version)
    }
}

/// Who changed the overlay, why, and what the change was.
pub struct Change {
    pub author: String,
    pub why: String,
    pub what: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(why: &str) -> Change {
        Change {
            author: "Anne".into(),
            why: why.into(),
            what: vec![format!("did {why}")],
        }
    }

    #[test]
    fn versions_are_numbered_with_a_diff_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kb.history.jsonl");
        let history = History::new(path.clone());
        assert!(history.read().unwrap().is_empty());
        let v1 = history.append("", "a\n", change("one"), 100).unwrap();
        assert_eq!((v1.version, v1.diff.clone()), (1, vec!["+ a".to_string()]));
        let v2 = history.append("a\n", "a\nb\n", change("two"), 200).unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(v2.diff, ["+ b"]);
        let all = History::new(path).read().unwrap();
        let listed: Vec<(u32, &str, &str)> = all
            .iter()
            .map(|v| (v.version, v.why.as_str(), v.overlay.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                (0, "before the first change from the teach page", ""),
                (1, "one", "a\n"),
                (2, "two", "a\nb\n")
            ]
        );
        assert_eq!((all[2].author.as_str(), all[2].at), ("Anne", 200));
    }
}
