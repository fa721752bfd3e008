use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use voicebot_gateway::caller::{self, CallOptions};
use voicebot_gateway::config::{Config, LogFormat};

/// jemalloc gives freed memory back to the system; with glibc's malloc the gateway's
/// resident memory kept creeping up after every few thousand calls (per-thread arenas
/// keep their holes) while its live heap stayed flat (scripts/soak.sh, heaptrack).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "voicebot",
    version,
    about = "Telephone voicebot gateway for a Danish municipality"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer calls (embedded defaults when no config file is given).
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Place a test call: play a WAV as the caller, record what the bot says.
    Call {
        /// e.g. sip:bot@127.0.0.1:5060
        uri: String,
        #[arg(long)]
        play: PathBuf,
        #[arg(long)]
        record: Option<PathBuf>,
        /// Keys to press, DIGIT@SECONDS after answer, comma separated: "0@4.5,#@9".
        #[arg(long, default_value = "")]
        dtmf: String,
        /// Hang up this many seconds after answer (default: 5 s after the WAV's speech).
        #[arg(long)]
        hangup_after: Option<f64>,
        /// Offer only this codec (PCMA or PCMU); default offers both.
        #[arg(long)]
        codec: Option<String>,
        /// Our number (From user part), e.g. +4520123456.
        #[arg(long, default_value = "caller")]
        from: String,
        /// Send this number as P-Asserted-Identity, as a carrier does.
        #[arg(long)]
        pai: Option<String>,
        /// Call from this address (e.g. 127.0.0.2, an untrusted source for the gateway).
        #[arg(long)]
        local_ip: Option<std::net::IpAddr>,
        /// Send back what we hear this many ms later (a line with echo).
        #[arg(long)]
        echo_ms: Option<u32>,
        /// How much quieter the echo is, in dB.
        #[arg(long, default_value_t = -10.0, allow_negative_numbers = true)]
        echo_db: f32,
    },
    /// What the gateway makes of a WAV (any rate) as a caller's first turn: one JSON
    /// object (transcript, action, intent_id, confidence, language).
    Understand {
        file: PathBuf,
        /// The line's language (default: `[stt] language`).
        #[arg(long)]
        lang: Option<String>,
        /// The free transcript alone, without scoring the knowledge base on the audio.
        #[arg(long)]
        no_rescore: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Transcribe a WAV file (any rate) with the local whisper model.
    Transcribe {
        file: PathBuf,
        /// `base`, `tiny.en`, or a path to a ggml model.
        #[arg(long, default_value = "base")]
        model: String,
        #[arg(long, default_value = "da")]
        lang: String,
        /// Words that steer recognition; default: the configured domain words.
        #[arg(long)]
        prompt: Option<String>,
        /// Decode with whisper's full 30 s encoder context instead of one cut to the audio.
        #[arg(long)]
        full_context: bool,
    },
    /// Fetch and convert the speech models (runs models/fetch.sh).
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// The intent service: run it over gRPC, or ask it one question.
    Intents {
        #[command(subcommand)]
        command: voicebot_gateway::intent::cli::IntentsCommand,
    },
    /// A test SMSC (SMPP 3.4) that acknowledges and receipts every message; for trying
    /// `[sms] sender = "smpp"` without a carrier.
    Smsc {
        #[arg(long, default_value = "127.0.0.1:2775")]
        listen: std::net::SocketAddr,
    },
    /// Measure a part of the gateway.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
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

#[derive(Subcommand)]
enum ModelsAction {
    /// base | base-q8_0 | tiny.en | vad | voice | onnxruntime | meaning | turn | all
    Fetch {
        #[arg(default_value = "all")]
        which: Vec<String>,
    },
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rsipstack=warn,webrtc=warn"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt.json().init(),
    }
}

/// `voicebot bench fuzz`: each target in turn; exits non-zero if anything panicked.
fn fuzz(secs: u64, only: Option<&str>, seed: u64) -> anyhow::Result<()> {
    use voicebot_gateway::bench::fuzz;
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

/// SIGTERM (systemd, Docker, Kubernetes) or SIGINT (Ctrl-C), whichever comes first.
async fn stop_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `serve` reads its config first, for `[log] format`.
    let config = match &cli.command {
        Command::Serve { config } => Some(Config::load(config.as_deref())?),
        _ => None,
    };
    // Fuzzing makes libraries log every bad input: millions of lines that say nothing.
    let fuzzing = matches!(
        cli.command,
        Command::Bench {
            what: BenchCommand::Fuzz { .. }
        }
    );
    if !fuzzing {
        init_logging(config.as_ref().map_or(LogFormat::Text, |c| c.log.format));
    }
    match cli.command {
        Command::Intents { command } => Ok(voicebot_gateway::intent::cli::run(command).await?),
        Command::Bench {
            what: BenchCommand::Intent { kb },
        } => {
            println!(
                "{}",
                voicebot_gateway::intent::bench::run(kb.as_deref()).await?
            );
            Ok(())
        }
        Command::Bench {
            what: BenchCommand::Rtp { calls, secs },
        } => {
            use voicebot_gateway::bench::rtp::{self, EchoHandling};
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
        Command::Bench {
            what: BenchCommand::Stt { model },
        } => {
            let mut out = String::new();
            voicebot_gateway::bench::stt::run(&model, &mut out).await?;
            println!("{out}");
            Ok(())
        }
        Command::Bench {
            what: BenchCommand::Storage { calls, url },
        } => {
            let mut out = String::new();
            voicebot_gateway::bench::storage::run(calls, url, &mut out).await?;
            println!("{out}");
            Ok(())
        }
        Command::Bench {
            what: BenchCommand::Tts { config },
        } => {
            let mut out = String::new();
            let config = Config::load(config.as_deref())?;
            voicebot_gateway::bench::tts::run(&config, &mut out).await?;
            println!("{out}");
            Ok(())
        }
        Command::Bench {
            what: BenchCommand::TurnEnd { config },
        } => {
            let mut out = String::new();
            let config = Config::load(config.as_deref())?;
            voicebot_gateway::bench::turn_end::run(&config, &mut out)?;
            println!("{out}");
            Ok(())
        }
        Command::Bench {
            what:
                BenchCommand::Fuzz {
                    secs,
                    targets,
                    seed,
                },
        } => fuzz(secs, targets.as_deref(), seed),
        Command::Bench {
            what: BenchCommand::Web { turns, config },
        } => {
            let mut out = String::new();
            let config = Config::load(config.as_deref())?;
            voicebot_gateway::bench::web::run(config, turns, &mut out).await?;
            println!("{out}");
            Ok(())
        }
        Command::Bench {
            what:
                BenchCommand::Turn {
                    callers,
                    talking,
                    lang,
                    config,
                },
        } => {
            let mut out = String::new();
            let config = Config::load(config.as_deref())?;
            let callers = callers.or_else(|| talking.is_none().then(|| "1,5,10,20".into()));
            if let Some(callers) = callers {
                voicebot_gateway::bench::turn::run(
                    config.clone(),
                    &lang,
                    &numbers(&callers)?,
                    &mut out,
                )
                .await?;
            }
            if let Some(talking) = talking {
                voicebot_gateway::bench::capacity::run(
                    config,
                    &lang,
                    &numbers(&talking)?,
                    &mut out,
                )
                .await?;
            }
            println!("{out}");
            Ok(())
        }
        Command::Bench {
            what:
                BenchCommand::Understand {
                    conditions,
                    set,
                    lang,
                    dump,
                    manifest,
                    line,
                    config,
                },
        } => {
            let opts = voicebot_gateway::bench::understand::Options {
                conditions: conditions
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .collect(),
                set,
                lang,
                dump,
                manifest,
                line,
            };
            let config = Config::load(config.as_deref())?;
            voicebot_gateway::bench::understand::run(&config, &opts).await
        }
        Command::Understand {
            file,
            lang,
            no_rescore,
            config,
        } => {
            let mut config = Config::load(config.as_deref())?;
            if no_rescore {
                config.stt.rescore = false;
            }
            let lang = lang.unwrap_or_else(|| config.stt.language.clone());
            let u = voicebot_gateway::bench::understand::file(&config, &file, &lang).await?;
            println!("{}", serde_json::to_string(&u)?);
            Ok(())
        }
        Command::Smsc { listen } => {
            let smsc = voicebot_gateway::sms::smsc::TestSmsc::start(listen).await?;
            tracing::info!(addr = %smsc.addr(), "test SMSC listening; ctrl-c stops it");
            tokio::signal::ctrl_c()
                .await
                .context("waiting for ctrl-c")?;
            Ok(())
        }
        Command::Serve { .. } => {
            let config = config.unwrap_or_default();
            let drain_for = std::time::Duration::from_secs(config.sip.drain_secs);
            let running = voicebot_gateway::serve::start(config, CancellationToken::new()).await?;
            let signal = stop_signal().await?;
            tracing::info!(signal, "stopping");
            running.drain.run(drain_for).await;
            Ok(())
        }
        Command::Transcribe {
            file,
            model,
            lang,
            prompt,
            full_context,
        } => {
            let t = voicebot_gateway::stt::transcribe_file(
                &file,
                &model,
                &lang,
                prompt.as_deref(),
                !full_context,
            )
            .await?;
            println!("{}", t.text);
            eprintln!(
                "{:.2} s to transcribe {:.2} s of audio",
                t.decode_secs, t.audio_secs
            );
            Ok(())
        }
        Command::Models {
            action: ModelsAction::Fetch { which },
        } => {
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fetch.sh");
            let status = std::process::Command::new("bash")
                .arg(&script)
                .args(&which)
                .status()
                .with_context(|| format!("running {}", script.display()))?;
            anyhow::ensure!(status.success(), "{} failed", script.display());
            Ok(())
        }
        Command::Call {
            uri,
            play,
            record,
            dtmf,
            hangup_after,
            codec,
            from,
            pai,
            local_ip,
            echo_ms,
            echo_db,
        } => {
            let codecs = match codec.as_deref() {
                None => vec![
                    voicebot_gateway::audio::g711::Law::Alaw,
                    voicebot_gateway::audio::g711::Law::Ulaw,
                ],
                Some(c) => {
                    Config::parse(&format!("[sip]\ncodecs = [{c:?}]"))
                        .map_err(|e| anyhow::anyhow!("--codec: {e}"))?
                        .sip
                        .codecs
                }
            };
            let opts = CallOptions {
                target: uri,
                play,
                record,
                dtmf: caller::parse_dtmf(&dtmf)?,
                hangup_after,
                codecs,
                from,
                pai,
                local_ip,
                echo: echo_ms.map(|delay_ms| caller::Echo {
                    delay_ms,
                    gain_db: echo_db,
                }),
            };
            let report = caller::place(opts).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}
