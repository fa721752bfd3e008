//! `voicebot intents ...`: run the intent service on its own, or ask it one question.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use tokio_util::sync::CancellationToken;

use super::breaker::BreakerConfig;
use super::client::{Grpc, GrpcConfig, InProcess, IntentError, IntentResolver};
use super::kb::{Kb, KbError};
use super::matcher::Matcher;
use super::reload;
use super::resolution::{Language, Request};
use super::server::{self, MatcherService, ServeError};

#[derive(Debug, Subcommand)]
pub enum IntentsCommand {
    /// Run the intent service as a gRPC server (with grpc.health.v1); reloads --kb when
    /// the file changes.
    Serve {
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Knowledge base file (default: the embedded Eksempel Kommune).
        #[arg(long)]
        kb: Option<PathBuf>,
    },
    /// Resolve one utterance and print the resolution as JSON.
    Ask {
        text: String,
        #[arg(long, default_value = "da")]
        lang: String,
        /// Knowledge base file (default: the embedded Eksempel Kommune).
        #[arg(long)]
        kb: Option<PathBuf>,
        /// Ask a running intent service (e.g. http://127.0.0.1:50051) instead.
        #[arg(long, conflicts_with = "kb")]
        endpoint: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Kb(#[from] KbError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Intent(#[from] IntentError),
    #[error("--lang: {0}")]
    Language(String),
}

pub async fn run(command: IntentsCommand) -> Result<(), CliError> {
    match command {
        IntentsCommand::Serve { listen, kb } => {
            let matcher = reload::shared(Matcher::new(Kb::load_or_embedded(kb.as_deref())?));
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|source| CliError::Listen {
                    addr: listen,
                    source,
                })?;
            let cancel = CancellationToken::new();
            if let Some(path) = kb {
                tokio::spawn(reload::watch(
                    path,
                    matcher.clone(),
                    reload::POLL,
                    cancel.clone(),
                ));
            }
            tracing::info!(addr = %listener.local_addr().unwrap_or(listen), "intent service listening");
            let stop = cancel.clone();
            let shutdown = async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = stop.cancelled() => {}
                }
            };
            let served = server::serve(listener, MatcherService::new(matcher), shutdown).await;
            cancel.cancel();
            Ok(served?)
        }
        IntentsCommand::Ask {
            text,
            lang,
            kb,
            endpoint,
        } => {
            let language: Language = lang.parse().map_err(CliError::Language)?;
            let resolver: Box<dyn IntentResolver> = match endpoint {
                Some(endpoint) => Box::new(Grpc::new(GrpcConfig {
                    endpoint,
                    deadline: Duration::from_secs(5),
                    breaker: BreakerConfig::default(),
                })?),
                None => Box::new(InProcess::new(reload::shared(Matcher::new(
                    Kb::load_or_embedded(kb.as_deref())?,
                )))),
            };
            let resolution = resolver.resolve(Request::new(text, language)).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&resolution).expect("a resolution serialises")
            );
            Ok(())
        }
    }
}
