//! `voicebot bench …`: the subcommands and what each prints.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Intent resolution: p50/p99 in-process and over gRPC loopback, requests per core.
    Intent {
        #[arg(long)]
        kb: Option<PathBuf>,
    },
    /// RTP for N concurrent calls on loopback: CPU and memory per call, pacing jitter.
    Rtp {
        #[arg(long, default_value = "100,1000")]
        calls: String,
        #[arg(long, default_value = "10")]
        secs: u64,
    },
    /// Call records per call on a SQLite file and on PostgreSQL (a scratch cluster
    /// from the postgresql package, or --url).
    Storage {
        #[arg(long, default_value = "1000")]
        calls: usize,
        /// postgres://… to measure instead of a scratch cluster on loopback.
        #[arg(long)]
        url: Option<String>,
    },
    /// Speech recognition per fixture: latency, real-time factor, word error rate.
    Stt {
        #[arg(long, default_value = "base")]
        model: String,
    },
    /// Understanding of the fixtures in audio-fixtures/understand: right / confirmed /
    /// wrong / transferred per language and condition, with and without the
    /// knowledge-base scoring, and recognition time.
    Understand {
        #[arg(long, default_value = "clean,noise,loss,wide")]
        conditions: String,
        /// tune | holdout | all
        #[arg(long, default_value = "all")]
        set: String,
        /// da | en | all
        #[arg(long, default_value = "all")]
        lang: String,
        /// Write one JSON line per fixture and condition here (for calibration).
        #[arg(long)]
        dump: Option<PathBuf>,
        /// Resolve the transcripts and acoustic hints of such a dump again instead of
        /// recognizing the audio: a change to the intent resolution measured in seconds
        /// on the very transcripts it was measured before on.
        #[arg(long, conflicts_with = "dump")]
        replay: Option<PathBuf>,
        /// The fixture list (default: audio-fixtures/understand/questions.toml).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Call every question on a line of this language (default: its own).
        #[arg(long)]
        line: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Voices: time to first audio, real-time factor, cache warm-up and word error rate
    /// through G.711, per engine and language.
    Tts {
        /// `[tts]` (a Danish Piper voice by path is measured too) and `[stt] model`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The end-of-turn model on the understanding fixtures: finished turns ended at
    /// their last pause, pauses inside a turn waited out, time per judgement.
    TurnEnd {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Voice activity on the understanding fixtures (clean, noise, loss): WebRTC's VAD,
    /// Silero, and both as calls use them, through the call's endpointer: turn start,
    /// barge-in, questions cut, voice heard after the last word, false starts in noise.
    Vad {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Fuzz every parser of outside input (SIP, SDP, RTP, RFC 4733, sipfrag, SMPP,
    /// knowledge base, config) with mutants of fuzz/corpus; prints inputs and panics.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value = "60")]
        secs: u64,
        /// Only these targets (comma separated); default: all.
        #[arg(long)]
        targets: Option<String>,
        #[arg(long, default_value = "1")]
        seed: u64,
    },
    /// Turn latency on the wire: caller's speech end → first reply audio.
    Turn {
        /// Callers asking one question each, all at once (default 1,5,10,20; with
        /// --talking alone, none).
        #[arg(long)]
        callers: Option<String>,
        /// Capacity: this many callers at once, each asking several questions in one
        /// call and talking ~30% of the time; stops at the level whose answer p95
        /// passes 1.2 s.
        #[arg(long)]
        talking: Option<String>,
        /// The line's language and its callers' questions: en | da.
        #[arg(long, default_value = "en")]
        lang: String,
        /// A config file whose settings the in-process gateway uses (its SIP and HTTP
        /// addresses and the line's language are the bench's own).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Turn latency of a web caller (WebRTC, Opus) beside a phone caller's (SIP,
    /// A-law): the same questions, one call at a time.
    Web {
        /// Questions asked by each kind of caller.
        #[arg(long, default_value = "8")]
        turns: usize,
        /// As for `bench turn`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn numbers(list: &str) -> anyhow::Result<Vec<usize>> {
    list.split(',')
        .map(|n| {
            n.trim()
                .parse()
                .with_context(|| format!("{n:?} is not a number"))
        })
        .collect()
}

impl BenchCommand {
    /// Fuzzing makes libraries log every bad input: millions of lines that say nothing.
    pub fn is_fuzz(&self) -> bool {
        matches!(self, BenchCommand::Fuzz { .. })
    }
}

/// Runs a benchmark; its figures go to stdout.
pub async fn run(what: BenchCommand) -> anyhow::Result<()> {
    match what {
        BenchCommand::Intent { kb } => {
            println!("{}", crate::intent::bench::run(kb.as_deref()).await?);
            Ok(())
        }
        BenchCommand::Rtp { calls, secs } => {
            use crate::bench::rtp::{self, EchoHandling};
            println!("| calls | echo | CPU % per call | memory KiB per call | pacing p50 | pacing p99 | sent | received | lost | echo muted |");
            println!("|---|---|---|---|---|---|---|---|---|---|");
            for (i, (n, echo)) in numbers(&calls)?
                .into_iter()
                .flat_map(|n| EchoHandling::ALL.map(|e| (n, e)))
                .enumerate()
            {
                let r = rtp::run(n, secs, echo).await?;
                // Later runs reuse the memory the allocator kept from earlier ones.
                let memory = match i {
                    0 => format!("{:.0}", r.memory_kib_per_call),
                    _ => "–".into(),
                };
                println!(
                    "| {} | {} | {:.2} | {memory} | {:?} | {:?} | {} | {} | {} | {} |",
                    r.calls,
                    echo.describe(),
                    r.cpu_percent_per_call,
                    r.pacing_p50,
                    r.pacing_p99,
                    r.packets_sent,
                    r.packets_received,
                    r.lost,
                    r.echo_muted
                );
            }
            Ok(())
        }
        BenchCommand::Stt { model } => {
            let mut out = String::new();
            crate::bench::stt::run(&model, &mut out).await?;
            println!("{out}");
            Ok(())
        }
        BenchCommand::Storage { calls, url } => {
            let mut out = String::new();
            crate::bench::storage::run(calls, url, &mut out).await?;
            println!("{out}");
            Ok(())
        }
        BenchCommand::Tts { config } => {
            let mut out = String::new();
            let config = Config::load(config.as_deref())?;
            crate::bench::tts::run(&config, &mut out).await?;
            println!("{out}");
            Ok(())
        }
        BenchCommand::TurnEnd { config } => {
            let mut out = String::new();
            let config = Config::load(config.as_deref())?;
            crate::bench::turn_end::run(&config, &mut out)?;
            println!("{out}");
            Ok(())
        }
        BenchCommand::Vad { config } => {
            let mut out = String::new();
            let config = Config::load(config.as_deref())?;
            crate::bench::vad::run(&config, &mut out)?;
            println!("{out}");
            Ok(())
        }
        BenchCommand::Fuzz {
            secs,
            targets,
            seed,
        } => fuzz(secs, targets.as_deref(), seed),
        BenchCommand::Web { turns, config } => {
            let mut out = String::new();
            let config = Config::load(config.as_deref())?;
            crate::bench::web::run(config, turns, &mut out).await?;
            println!("{out}");
            Ok(())
        }
        BenchCommand::Turn {
            callers,
            talking,
            lang,
            config,
        } => {
            let mut out = String::new();
            let config = Config::load(config.as_deref())?;
            let callers = callers.or_else(|| talking.is_none().then(|| "1,5,10,20".into()));
            if let Some(callers) = callers {
                crate::bench::turn::run(config.clone(), &lang, &numbers(&callers)?, &mut out)
                    .await?;
            }
            if let Some(talking) = talking {
                crate::bench::capacity::run(config, &lang, &numbers(&talking)?, &mut out).await?;
            }
            println!("{out}");
            Ok(())
        }
        BenchCommand::Understand {
            conditions,
            set,
            lang,
            dump,
            replay,
            manifest,
            line,
            config,
        } => {
            let opts = crate::bench::understand::Options {
                conditions: conditions
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .collect(),
                set,
                lang,
                dump,
                replay,
                manifest,
                line,
            };
            let config = Config::load(config.as_deref())?;
            crate::bench::understand::run(&config, &opts).await
        }
    }
}

/// `voicebot bench fuzz`: each target in turn; exits non-zero if anything panicked.
fn fuzz(secs: u64, only: Option<&str>, seed: u64) -> anyhow::Result<()> {
    use crate::bench::fuzz;
    let corpus = fuzz::default_corpus();
    println!("| target | seeds | inputs | inputs/s | kept | panics |");
    println!("|---|---|---|---|---|---|");
    let mut panics = 0;
    for target in fuzz::targets::ALL {
        if only.is_some_and(|o| !o.split(',').any(|t| t.trim() == target.name)) {
            continue;
        }
        let seeds = fuzz::seeds(&corpus, target.name)
            .with_context(|| format!("corpus {}", corpus.display()))?;
        let time = std::time::Duration::from_secs(secs);
        let started = std::time::Instant::now();
        let r = fuzz::run(target, seeds, seed, time, u64::MAX);
        let rate = r.inputs as f64 / started.elapsed().as_secs_f64();
        println!(
            "| {} | {} | {} | {rate:.0} | {} | {} |",
            r.target, r.seeds, r.inputs, r.pool, r.panic_count
        );
        for (msg, input) in &r.panics {
            eprintln!(
                "{}: {msg}\n  input: {:?}",
                r.target,
                String::from_utf8_lossy(input)
            );
        }
        panics += r.panic_count;
    }
    anyhow::ensure!(panics == 0, "{panics} inputs panicked");
    Ok(())
}
