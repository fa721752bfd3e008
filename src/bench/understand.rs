//! `voicebot bench understand` and `voicebot understand`: what the gateway makes of
//! callers' questions as telephone audio (audio-fixtures/understand), through a call's
//! own first-turn path, with and without the knowledge-base scoring.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::call::understanding::{self, Understanding, Understood};
use crate::config::Config;
use crate::intent::client::{with_local_matcher, IntentResolver};
use crate::intent::reload;
use crate::intent::resolution::Kind;
use crate::intent::resolution::{Action, Resolution};
use crate::stt::engine;
use crate::stt::recognizer::{Recognizer, SttOptions};

#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub id: String,
    pub lang: String,
    pub text: String,
    pub expect: String,
    pub set: String,
}

#[derive(Deserialize)]
struct Manifest {
    q: Vec<Question>,
}

pub struct Options {
    pub conditions: Vec<String>,
    pub set: String,
    pub lang: String,
    pub dump: Option<PathBuf>,
    /// Resolve the recognitions of this earlier `dump` again (no audio is recognized).
    pub replay: Option<PathBuf>,
    pub manifest: Option<PathBuf>,
    /// Call every question on a line of this language (default: the question's own).
    pub line: Option<String>,
}

/// Where `audio-fixtures/understand/make.sh` renders the audio.
pub fn audio_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VOICEBOT_FIXTURE_CACHE") {
        return PathBuf::from(d).join("understand");
    }
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
        PathBuf::from,
    );
    cache.join("voicebot/fixtures/understand")
}

pub fn questions(manifest: Option<&Path>) -> anyhow::Result<Vec<Question>> {
    let default =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/understand/questions.toml");
    let path = manifest.unwrap_or(&default);
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(toml::from_str::<Manifest>(&text)?.q)
}

/// How a turn went for the caller, judged against the expected intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Answered (or transferred, or ended) as it should be.
    Right,
    /// Asked back, naming the right intent: one "yes" away from right.
    Confirmed,
    /// Asked back or said it could not help, without a wrong answer.
    Missed,
    /// Put through to a person though the bot had the answer.
    Transferred,
    /// Answered something else with confidence.
    Wrong,
}

pub fn verdict(r: &Resolution, expect: &str, expect_kind: Option<Kind>) -> Verdict {
    // A confirm names one intent (yes or 1 takes it), a clarify two (1 or 2).
    let named = r.candidates.iter().take(2).any(|c| c.intent_id == expect);
    match (r.action, expect_kind) {
        (Action::Transfer, Some(Kind::Person)) => Verdict::Right,
        (_, Some(Kind::OutOfScope)) if r.kind == Kind::OutOfScope => Verdict::Right,
        (Action::Clarify | Action::Confirm, _) if named => Verdict::Confirmed,
        (Action::Clarify | Action::Confirm, _) => Verdict::Missed,
        (_, _) if r.intent_id == expect => Verdict::Right,
        (Action::Transfer, _) => Verdict::Transferred,
        // Yes, no or "say again" on a first turn make the bot ask what the caller wants.
        (_, _)
            if matches!(
                r.kind,
                Kind::OutOfScope | Kind::Repeat | Kind::Yes | Kind::No
            ) =>
        {
            Verdict::Missed
        }
        _ => Verdict::Wrong,
    }
}

/// One file through a call's first turn, on a single recognizer worker.
pub async fn file(config: &Config, path: &Path, lang: &str) -> anyhow::Result<Understood> {
    let (stt, understanding, resolver) = load(config)?;
    let audio = audio_16k(path)?;
    understanding::first_turn(&understanding, &stt, resolver.as_ref(), audio, lang).await
}

/// A recording at the recognizer's rate, from its own: telephone fixtures are 8 kHz,
/// web callers' (`wide`) 16 kHz, which must not pass through an 8 kHz bottleneck.
fn audio_16k(path: &Path) -> Result<Vec<f32>, crate::audio::wav::WavError> {
    let (pcm, rate) = crate::audio::wav::read_mono(path)?;
    Ok(crate::audio::resample::resample(&pcm, rate, 16_000))
}

type Loaded = (
    Recognizer,
    Understanding,
    std::sync::Arc<dyn IntentResolver>,
);

fn load(config: &Config) -> anyhow::Result<Loaded> {
    crate::intent::meaning::install(config.intent.second_opinion);
    let opts = SttOptions {
        workers: 1,
        queue: 1,
        rescore_budget: config.stt.rescore_budget,
        rescore_vocab: config.stt.rescore_vocab,
        beam_size: config.stt.beam_size,
        idle_threads: config.stt.idle_threads,
        ..SttOptions::default()
    };
    let stt = Recognizer::load(&crate::stt::model_path(&config.stt.model), opts)?;
    let (resolver, matcher) =
        with_local_matcher(&config.intent, tokio_util::sync::CancellationToken::new())?;
    let understanding = Understanding {
        config: config.stt.clone(),
        matcher,
    };
    Ok((stt, understanding, resolver))
}

#[derive(Default)]
struct Tally {
    verdicts: BTreeMap<Verdict, usize>,
    n: usize,
}

impl Tally {
    fn add(&mut self, v: Verdict) {
        *self.verdicts.entry(v).or_default() += 1;
        self.n += 1;
    }
    fn pct(&self, v: Verdict) -> f32 {
        100.0 * *self.verdicts.get(&v).unwrap_or(&0) as f32 / self.n.max(1) as f32
    }
}

fn percentile(sorted: &[f32], p: f32) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f32 * p).round() as usize]
}

pub async fn run(config: &Config, opts: &Options) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.stt.rescore = true;
    if let Some(dumped) = &opts.replay {
        return replay(&config, opts, dumped).await;
    }
    let (stt, understanding, resolver) = load(&config)?;
    let kb = reload::current(&understanding.matcher).kb().clone();
    let dir = audio_dir();
    let mut dump = match &opts.dump {
        Some(p) => Some(std::fs::File::create(p)?),
        None => None,
    };
    let mut tables = Tables::default();
    let mut missing = 0;
    for cond in &opts.conditions {
        for q in &chosen(opts)? {
            let wav = dir.join(format!("{}.{cond}.wav", q.id));
            let Ok(audio) = audio_16k(&wav) else {
                missing += 1;
                continue;
            };
            // The line's language is the question's own unless `line` says otherwise; the
            // language check runs either way (first turn).
            let line = opts.line.as_deref().unwrap_or(&q.lang);
            let t = engine::recognize(&stt, audio, understanding.turn(line, 1)).await?;
            let [text_only, with_hints] =
                resolve_both(resolver.as_ref(), understanding::request(&t, 1)).await?;
            let expect_kind = kb.get(&q.expect).map(|i| i.kind);
            for (with, r) in [(false, &text_only), (true, &with_hints)] {
                let v = verdict(r, &q.expect, expect_kind);
                let secs = if with {
                    t.decode_secs
                } else {
                    t.decode_secs - t.rescore_secs
                };
                tables.add(q, cond, with, v, secs);
                if let Some(f) = dump.as_mut() {
                    let line = serde_json::json!({
                        "id": q.id, "lang": q.lang, "set": q.set, "condition": cond,
                        "expect": q.expect, "rescore": with, "verdict": v,
                        "transcript": t.text, "asr_confidence": t.confidence, "text_intent": text_only.intent_id, "text_confidence": text_only.confidence, "text_action": text_only.action, "heard_language": t.language,
                        "action": r.action, "intent_id": r.intent_id, "confidence": r.confidence,
                        "hints": t.hints, "other_language_log_odds": t.other_language_log_odds, "decode_secs": t.decode_secs, "rescore_secs": t.rescore_secs,
                    });
                    writeln!(f, "{line}")?;
                }
            }
            eprint!(".");
        }
    }
    eprintln!();
    if missing > 0 {
        eprintln!(
            "{missing} fixture files missing in {} (run audio-fixtures/understand/make.sh)",
            dir.display()
        );
    }
    tables.print();
    Ok(())
}

/// The questions `opts` picks by set and language.
fn chosen(opts: &Options) -> anyhow::Result<Vec<Question>> {
    Ok(questions(opts.manifest.as_deref())?
        .into_iter()
        .filter(|q| opts.set == "all" || q.set == opts.set)
        .filter(|q| opts.lang == "all" || q.lang == opts.lang)
        .collect())
}

/// A turn resolved on its words alone, and with the audio's hints.
async fn resolve_both(
    resolver: &dyn IntentResolver,
    req: crate::intent::resolution::Request,
) -> anyhow::Result<[Resolution; 2]> {
    let text_only = crate::intent::resolution::Request {
        hints: Vec::new(),
        ..req.clone()
    };
    Ok([
        resolver.resolve(text_only).await?,
        resolver.resolve(req).await?,
    ])
}

/// One fixture's recognition as `--dump` wrote it.
#[derive(Deserialize)]
struct Dumped {
    id: String,
    condition: String,
    rescore: bool,
    verdict: Verdict,
    transcript: String,
    asr_confidence: f32,
    heard_language: String,
    hints: Vec<crate::intent::resolution::Hint>,
    decode_secs: f32,
    rescore_secs: f32,
}

/// `run` on the recognitions of an earlier `--dump`: the intent resolution as it is
/// now, on the transcripts and hints the recognizer gave then. The turns whose verdict
/// (with the hints) changed since are listed.
async fn replay(config: &Config, opts: &Options, dumped: &Path) -> anyhow::Result<()> {
    crate::intent::meaning::install(config.intent.second_opinion);
    let (resolver, matcher) =
        with_local_matcher(&config.intent, tokio_util::sync::CancellationToken::new())?;
    let kb = reload::current(&matcher).kb().clone();
    let by_id: BTreeMap<String, Question> = chosen(opts)?
        .into_iter()
        .map(|q| (q.id.clone(), q))
        .collect();
    let mut tables = Tables::default();
    let text = std::fs::read_to_string(dumped)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dumped.display()))?;
    for line in text.lines() {
        let d: Dumped = serde_json::from_str(line)?;
        // Each recognition is dumped twice (without and with the hints): one will do.
        let Some(q) = by_id.get(&d.id).filter(|_| d.rescore) else {
            continue;
        };
        if !opts.conditions.contains(&d.condition) {
            continue;
        }
        let was = d.verdict;
        let req = crate::intent::resolution::Request {
            turn: 1,
            text: d.transcript,
            asr_confidence: Some(d.asr_confidence),
            language: d.heard_language.parse().unwrap_or_default(),
            hints: d.hints,
            ..Default::default()
        };
        let resolved = resolve_both(resolver.as_ref(), req).await?;
        let expect_kind = kb.get(&q.expect).map(|i| i.kind);
        for (with, r) in [false, true].into_iter().zip(&resolved) {
            let secs = if with {
                d.decode_secs
            } else {
                d.decode_secs - d.rescore_secs
            };
            let v = verdict(r, &q.expect, expect_kind);
            tables.add(q, &d.condition, with, v, secs);
            if with && v != was {
                println!(
                    "{} {} ({}): {was:?} -> {v:?}: {:?} {} {}",
                    q.id, d.condition, q.set, r.action, r.intent_id, q.expect
                );
            }
        }
    }
    tables.print();
    Ok(())
}

/// The verdicts per (language, condition, set, with the hints) and the recognition
/// seconds per (language, with the hints).
#[derive(Default)]
struct Tables {
    tallies: BTreeMap<(String, String, String, bool), Tally>,
    times: BTreeMap<(String, bool), Vec<f32>>,
}

impl Tables {
    fn add(&mut self, q: &Question, cond: &str, with: bool, v: Verdict, secs: f32) {
        for set in [q.set.as_str(), "all"] {
            self.tallies
                .entry((q.lang.clone(), cond.to_string(), set.to_string(), with))
                .or_default()
                .add(v);
        }
        self.times
            .entry((q.lang.clone(), with))
            .or_default()
            .push(secs);
    }

    fn print(mut self) {
        println!("| lang | condition | set | KB scoring | n | right | confirmed | missed | transferred | wrong |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for ((lang, cond, set, with), t) in &self.tallies {
            println!(
                "| {lang} | {cond} | {set} | {} | {} | {:.0}% | {:.0}% | {:.0}% | {:.0}% | {:.0}% |",
                if *with { "yes" } else { "no" },
                t.n,
                t.pct(Verdict::Right),
                t.pct(Verdict::Confirmed),
                t.pct(Verdict::Missed),
                t.pct(Verdict::Transferred),
                t.pct(Verdict::Wrong),
            );
        }
        println!("\n| lang | KB scoring | recognition p50 s | p95 s |\n|---|---|---|---|");
        for ((lang, with), secs) in &mut self.times {
            secs.sort_by(f32::total_cmp);
            println!(
                "| {lang} | {} | {:.2} | {:.2} |",
                if *with { "yes" } else { "no" },
                percentile(secs, 0.5),
                percentile(secs, 0.95)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::kb::Kb;
    use crate::intent::matcher::Matcher;
    use crate::intent::resolution::{Language, Request};

    fn judge(text: &str, expect: &str) -> Verdict {
        let m = Matcher::new(Kb::embedded().unwrap());
        let r = m.resolve(&Request::new(text, Language::Da));
        verdict(&r, expect, m.kb().get(expect).map(|i| i.kind))
    }

    #[test]
    fn turns_are_judged_against_the_expected_intent() {
        let bins = "hvornår bliver mit skrald hentet";
        assert_eq!(judge(bins, "affald.toemning"), Verdict::Right);
        assert_eq!(judge(bins, "pas_koerekort.nyt_pas"), Verdict::Wrong);
        assert_eq!(
            judge("jeg vil tale med et menneske", "system.person"),
            Verdict::Right
        );
        assert_eq!(
            judge("jeg vil tale med et menneske", "affald.toemning"),
            Verdict::Transferred
        );
        assert_eq!(
            judge("xylofon kvantefysik zebra", "affald.toemning"),
            Verdict::Missed
        );
        assert_eq!(
            judge("xylofon kvantefysik zebra", "system.out_of_scope"),
            Verdict::Right
        );
        // "pas" alone is asked about: naming the expected intent is one key away.
        let pas = Matcher::new(Kb::embedded().unwrap()).resolve(&Request::new("pas", Language::Da));
        let named = pas.candidates[0].intent_id.clone();
        assert_eq!(judge("pas", &named), Verdict::Confirmed);
        assert_eq!(judge("pas", "affald.toemning"), Verdict::Missed);
        // A "yes" on a first turn makes the bot ask what the caller wants: no wrong answer.
        assert_eq!(judge("ja tak", "affald.toemning"), Verdict::Missed);
    }
}
