//! Reloads the knowledge base when its file or its overlay (what staff taught,
//! [`overlay`](super::overlay)) changes, without a restart.
//!
//! The matcher in use sits behind an `RwLock<Arc<Matcher>>`: a turn takes the current
//! `Arc` (a pointer copy under a read lock) and keeps using it even if a reload swaps in
//! a new one meanwhile. A watcher task polls the file's modification time and size
//! once a second (cheap, and works on every filesystem, including bind mounts where
//! inotify events do not arrive). A file that fails to load is logged with the error
//! naming the entry, and the old knowledge base stays in service.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::kb::Kb;
use super::matcher::Matcher;
use super::overlay;

/// The matcher in service, swapped whole on reload.
pub type SharedMatcher = Arc<RwLock<Arc<Matcher>>>;

/// How often the watcher looks at the file.
pub const POLL: Duration = Duration::from_secs(1);

pub fn shared(matcher: Matcher) -> SharedMatcher {
    Arc::new(RwLock::new(Arc::new(matcher)))
}

/// The matcher in service now.
pub fn current(shared: &SharedMatcher) -> Arc<Matcher> {
    // A writer never panics while holding the lock (it only assigns), so a poisoned
    // lock still holds a whole matcher.
    shared.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Puts `matcher` in service (what a publish from the teach page does at once; the
/// watcher would see the overlay file change within [`POLL`]).
pub fn replace(shared: &SharedMatcher, matcher: Matcher) {
    *shared.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(matcher);
}

/// What identifies a version of a file; `None` while it cannot be read.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The versions of each knowledge base file and of its overlay.
type Stamps = Vec<(Option<(SystemTime, u64)>, Option<(SystemTime, u64)>)>;

fn stamps(paths: &[PathBuf]) -> Stamps {
    paths
        .iter()
        .map(|p| (stamp(p), stamp(&overlay::path_for(p))))
        .collect()
}

/// How a knowledge base is read from its files (the error names file and entry).
pub type Loader = Arc<dyn Fn() -> Result<Kb, String> + Send + Sync>;

/// Watches `path` every `interval` until `cancel`, loading it into `shared` whenever
/// it changes. The file's current version is noted when this is called (not when the
/// future is first polled), so a change made right after is not missed.
pub fn watch(
    path: PathBuf,
    shared: SharedMatcher,
    interval: Duration,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send {
    let file = path.clone();
    let load: Loader = Arc::new(move || Kb::load(&file).map_err(|e| e.to_string()));
    watch_files(vec![path], load, shared, interval, cancel)
}

/// As [`watch`], for a knowledge base made of several files (a tenant's over the
/// shared base): any of them (or their overlays) changing reloads it through `load`.
pub fn watch_files(
    paths: Vec<PathBuf>,
    load: Loader,
    shared: SharedMatcher,
    interval: Duration,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send {
    let mut seen = stamps(&paths);
    async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let files = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = stamps(&paths);
            // A file being rewritten may be missing for a moment: wait for it.
            if now == seen || now.iter().any(|(file, _)| file.is_none()) {
                continue;
            }
            seen = now;
            let load = load.clone();
            match tokio::task::spawn_blocking(move || load().map(Matcher::new)).await {
                Ok(Ok(matcher)) => {
                    tracing::info!(path = %files, intents = matcher.kb().intents.len(), "knowledge base reloaded");
                    replace(&shared, matcher);
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "knowledge base not reloaded; keeping the previous one")
                }
                Err(e) => {
                    tracing::error!(error = %e, "knowledge base reload task failed; keeping the previous one")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::kb::tests::tiny_kb;

    fn entry(answer: &str) -> String {
        format!(
            "[[intent]]\nid = \"affald.a\"\ntopic = \"affald\"\nkind = \"answer\"\n\
             link = \"https://kommune.example.org/a\"\ntitle = {{ da = \"A\", en = \"A\" }}\n\
             answer = {{ da = \"{answer}\", en = \"{answer}\" }}\n\
             examples.da = [\"a 1\", \"a 2\", \"a 3\", \"a 4\", \"a 5\"]\n\
             examples.en = [\"a 1\", \"a 2\", \"a 3\", \"a 4\", \"a 5\"]\n"
        )
    }

    fn answer_of(shared: &SharedMatcher) -> String {
        current(shared)
            .kb()
            .get("affald.a")
            .unwrap()
            .answer
            .as_ref()
            .unwrap()
            .da
            .clone()
    }

    async fn wait_for(shared: &SharedMatcher, want: &str) -> bool {
        for _ in 0..200 {
            if answer_of(shared) == want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_changed_file_is_reloaded_and_a_broken_one_is_not() {
        let dir = std::env::temp_dir().join(format!("kb-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kb.toml");
        std::fs::write(&path, tiny_kb(&entry("first"))).unwrap();
        let shared = shared(Matcher::new(Kb::load(&path).unwrap()));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(watch(
            path.clone(),
            shared.clone(),
            Duration::from_millis(20),
            cancel.clone(),
        ));

        // Differs in size too, so the change is seen even within one mtime tick.
        std::fs::write(&path, tiny_kb(&entry("second one"))).unwrap();
        assert!(wait_for(&shared, "second one").await, "reloaded");

        std::fs::write(
            &path,
            tiny_kb(&entry("third")).replace("https://", "http://"),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            answer_of(&shared),
            "second one",
            "a broken file keeps the old knowledge base"
        );

        std::fs::write(&path, tiny_kb(&entry("fourth, fixed"))).unwrap();
        assert!(
            wait_for(&shared, "fourth, fixed").await,
            "a fixed file loads again"
        );

        let examples = |shared: &SharedMatcher| {
            current(shared)
                .kb()
                .get("affald.a")
                .unwrap()
                .examples_en
                .len()
        };
        assert_eq!(examples(&shared), 5);
        std::fs::write(
            overlay::path_for(&path),
            "[[example]]\nintent = \"affald.a\"\nlang = \"en\"\ntext = \"taught\"\n",
        )
        .unwrap();
        let mut taught = false;
        for _ in 0..200 {
            taught = examples(&shared) == 6;
            if taught {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(taught, "a new overlay is merged in");

        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
