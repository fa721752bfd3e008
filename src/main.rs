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
        what: voicebot_gateway::bench::cli::BenchCommand,
    },
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
    let fuzzing = matches!(&cli.command, Command::Bench { what } if what.is_fuzz());
    if !fuzzing {
        init_logging(config.as_ref().map_or(LogFormat::Text, |c| c.log.format));
    }
    match cli.command {
        Command::Intents { command } => Ok(voicebot_gateway::intent::cli::run(command).await?),
        Command::Bench { what } => voicebot_gateway::bench::cli::run(what).await,
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
