//! `voicebot bench fuzz` and `tests/fuzz.rs`: feeds mutated bytes to every parser that
//! reads input from outside (the network, an operator's files) and reports panics.
//!
//! Why not cargo-fuzz: libFuzzer needs a nightly toolchain (`-Zsanitizer`) and the
//! `cargo-fuzz`/`libfuzzer-sys` crates, which a fresh machine of ours and CI do not
//! have (the one toolchain there is stable). This harness runs on stable inside the
//! ordinary test command: a committed seed corpus (`fuzz/corpus/<target>/`), byte-level
//! mutations from a seeded PRNG (bit flips, interesting bytes and numbers, insertions,
//! deletions, truncation, repeated chunks, splicing two inputs, multi-byte UTF-8), and
//! `catch_unwind` around each call. Without coverage feedback it keeps a mutant for
//! further mutation when it changes the target's verdict (accepted ↔ refused), which
//! steers it past the first checks of a parser. The same seed gives the same inputs,
//! so a panic found is reproduced by its seed and count.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod mutate;
pub mod targets;

pub use mutate::Rng;

/// One fuzzed parser: its name (its corpus folder) and the call, which returns whether
/// the input was accepted (the feedback that keeps a mutant).
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]) -> bool,
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub target: &'static str,
    pub inputs: u64,
    pub seeds: usize,
    /// Inputs kept for mutation at the end of the run (seeds included).
    pub pool: usize,
    /// The first panics: message and the input that caused it.
    pub panics: Vec<(String, Vec<u8>)>,
    pub panic_count: u64,
}

/// Inputs kept for mutation at most.
const POOL: usize = 4096;

thread_local! {
    /// The panic message of the input being run on this thread, set by the hook.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records panics on fuzzing threads instead of
/// printing them, and prints the rest as before.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let fuzzing = FUZZING.with(|f| *f.borrow());
            if fuzzing {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{at}: {msg}")));
            } else {
                previous(info);
            }
        }));
    });
}

thread_local! {
    static FUZZING: RefCell<bool> = const { RefCell::new(false) };
}

/// The seeds of `target` under `corpus` (`<corpus>/<target>/*`).
pub fn seeds(corpus: &Path, target: &str) -> std::io::Result<Vec<Vec<u8>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus.join(target))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.iter().map(std::fs::read).collect()
}

/// The committed corpus: `fuzz/corpus` in the source tree.
pub fn default_corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

/// Runs `target` on its seeds, then on mutants for `time` (and at most `max_inputs`).
pub fn run(
    target: &Target,
    seeds: Vec<Vec<u8>>,
    seed: u64,
    time: Duration,
    max_inputs: u64,
) -> Report {
    quiet_panics();
    FUZZING.with(|f| *f.borrow_mut() = true);
    let mut report = Report {
        target: target.name,
        seeds: seeds.len(),
        ..Default::default()
    };
    let mut rng = Rng::new(seed);
    let mut pool: Vec<(Vec<u8>, bool)> = Vec::new();
    let try_one = |input: &[u8], report: &mut Report| -> Option<bool> {
        report.inputs += 1;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (target.run)(input)));
        match r {
            Ok(accepted) => Some(accepted),
            Err(_) => {
                report.panic_count += 1;
                let msg = LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_default();
                if report.panics.len() < 5 && !report.panics.iter().any(|(m, _)| *m == msg) {
                    report.panics.push((msg, input.to_vec()));
                }
                None
            }
        }
    };
    for s in seeds {
        if let Some(accepted) = try_one(&s, &mut report) {
            pool.push((s, accepted));
        }
    }
    if pool.is_empty() {
        pool.push((Vec::new(), false));
    }
    let seeds = pool.len();
    let start = Instant::now();
    while start.elapsed() < time && report.inputs < max_inputs {
        // Checking the clock per input costs more than some targets: check per batch.
        for _ in 0..64 {
            let (parent, parent_verdict) = &pool[rng.below(pool.len())];
            let other = &pool[rng.below(pool.len())].0;
            let input = mutate::mutate(&mut rng, parent, other);
            let verdict = try_one(&input, &mut report);
            if let Some(v) = verdict.filter(|v| v != parent_verdict) {
                // A full pool replaces a mutant (never a seed), so it keeps moving.
                if pool.len() < POOL {
                    pool.push((input, v));
                } else {
                    let i = seeds + rng.below(POOL - seeds);
                    pool[i] = (input, v);
                }
            }
        }
    }
    FUZZING.with(|f| *f.borrow_mut() = false);
    report.pool = pool.len();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cuts its input as text at byte 3: panics when that falls inside a character.
    fn cuts_at_3(data: &[u8]) -> bool {
        let mut s = String::from_utf8_lossy(data).into_owned();
        s.truncate(3);
        s.starts_with('a')
    }

    #[test]
    fn a_panic_is_caught_with_the_input_that_caused_it() {
        let target = Target {
            name: "cut",
            run: cuts_at_3,
        };
        let seeds = vec![b"abcdef".to_vec()];
        let r = run(&target, seeds, 1, Duration::from_secs(5), 200_000);
        assert!(r.panic_count > 0, "{r:?}");
        let (msg, input) = &r.panics[0];
        assert!(msg.contains("char_boundary"), "{msg}");
        assert!(std::panic::catch_unwind(|| cuts_at_3(input)).is_err());
        // The runner goes on after a panic, and the hook is back to normal after it.
        assert!(r.inputs > r.panic_count);
    }
}
