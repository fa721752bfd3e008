//! A short bounded fuzz run of every parser of outside input (`voicebot bench fuzz`
//! runs the same for minutes): the committed seeds and their mutants, no panic.
//! Stable Rust, not cargo-fuzz: see `src/bench/fuzz.rs` for why.

use std::time::Duration;

use voicebot_gateway::bench::fuzz::{self, targets};

/// Seconds per target here; a different seed per run of the suite would make a
/// failure hard to reproduce, so the seed is fixed (and printed on failure).
const SECS: u64 = 3;
const SEED: u64 = 13;

fn fuzz_target(name: &str) {
    let target = targets::ALL
        .iter()
        .find(|t| t.name == name)
        .expect("a target");
    let seeds = fuzz::seeds(&fuzz::default_corpus(), name).expect("the committed corpus");
    assert!(!seeds.is_empty(), "no seeds for {name}");
    let r = fuzz::run(target, seeds, SEED, Duration::from_secs(SECS), u64::MAX);
    assert!(r.inputs > 1_000, "{name}: only {} inputs ran", r.inputs);
    let shown: Vec<String> = r
        .panics
        .iter()
        .map(|(msg, input)| format!("{msg}\n  input: {:?}", String::from_utf8_lossy(input)))
        .collect();
    assert_eq!(
        r.panic_count,
        0,
        "{name} (seed {SEED}) panicked on {} of {} inputs:\n{}",
        r.panic_count,
        r.inputs,
        shown.join("\n")
    );
    // Every target has seeds it accepts, so mutants explore past its first checks.
    assert!(r.pool > r.seeds, "{name}: no mutant changed the verdict");
}

#[test]
fn sip_guard_and_parser() {
    fuzz_target("sip");
}

#[test]
fn sdp() {
    fuzz_target("sdp");
}

#[test]
fn rtp() {
    fuzz_target("rtp");
}

#[test]
fn rfc4733() {
    fuzz_target("rfc4733");
}

#[test]
fn sipfrag() {
    fuzz_target("sipfrag");
}

#[test]
fn smpp_pdus() {
    fuzz_target("smpp");
}

#[test]
fn knowledge_base() {
    fuzz_target("kb");
}

#[test]
fn config() {
    fuzz_target("config");
}
