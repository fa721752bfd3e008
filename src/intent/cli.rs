//! `voicebot intents ...`: run the intent service on its own, or ask it one question.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use tokio_util::sync::CancellationToken;

use super::breaker::BreakerConfig;
use super::client::{self, Grpc, GrpcConfig, InProcess, IntentError, IntentResolver};
use super::kb::{Kb, KbError};
use super::matcher::Matcher;
use super::reload;
use super::resolution::{Language, Request};
use super::server::{self, MatcherService, ServeError};
use crate::config::Config;
use crate::tenant::kb::KbSources;

#[derive(Debug, Subcommand)]
pub enum IntentsCommand {
    /// Run the intent service as a gRPC server (with grpc.health.v1); reloads --kb when
    /// the file changes.
    Serve {
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Knowledge base file (default: the embedded Eksempel Kommune).
        #[arg(long, conflicts_with = "config")]
        kb: Option<PathBuf>,
        /// The gateways' config: its `[intent] kb` and each `[[tenants]]` knowledge base
        /// (merged over it) are served, each request answered from its tenant's.
        #[arg(long)]
        config: Option<PathBuf>,
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
    /// Embed a knowledge base's examples and titles for the second opinion on meaning
    /// and keep them on disk (beside the model), so gateways start without doing it
    /// (~15 s on 2 cores for the embedded one). The test script runs it first.
    Warm {
        /// Knowledge base file (default: the embedded Eksempel Kommune).
        #[arg(long)]
        kb: Option<PathBuf>,
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
    #[error("--config: {0}")]
    Config(String),
    #[error(transparent)]
    Meaning(#[from] super::meaning::EngineError),
    #[error("the knowledge base could not be embedded (see the log)")]
    NotEmbedded,
}

/// The base knowledge base and each tenant's merged over it, each watched for changes.
fn tenants_service(path: &Path, cancel: CancellationToken) -> Result<MatcherService, CliError> {
    let config = Config::load(Some(path)).map_err(|e| CliError::Config(e.to_string()))?;
    let watched = |sources: KbSources| {
        let files = sources.files();
        let load: reload::Loader = Arc::new(move || sources.load().map_err(|e| e.to_string()));
        client::over_files(files, load, None, cancel.clone())
            .map(|(_, matcher)| matcher)
            .map_err(CliError::Config)
    };
    let base = watched(KbSources {
        tenant: String::new(),
        base: config.intent.kb.clone(),
        own: None,
    })?;
    let mut tenants = HashMap::new();
    for tenant in &config.tenants {
        let matcher = watched(KbSources {
            tenant: tenant.name.clone(),
            base: config.intent.kb.clone(),
            own: tenant.kb.clone(),
        })?;
        tracing::info!(tenant = %tenant.name, "tenant's knowledge base served");
        tenants.insert(tenant.name.clone(), matcher);
    }
    Ok(MatcherService::with_tenants(base, tenants))
}

pub async fn run(command: IntentsCommand) -> Result<(), CliError> {
    if !matches!(command, IntentsCommand::Warm { .. }) {
        super::meaning::install(true);
    }
    match command {
        IntentsCommand::Serve { listen, kb, config } => {
            let cancel = CancellationToken::new();
            let service = match config {
                Some(path) => tenants_service(&path, cancel.clone())?,
                None => {
                    let matcher =
                        reload::shared(Matcher::new(Kb::load_or_embedded(kb.as_deref())?));
                    if let Some(path) = kb {
                        tokio::spawn(reload::watch(
                            path,
                            matcher.clone(),
                            reload::POLL,
                            cancel.clone(),
                        ));
                    }
                    MatcherService::new(matcher)
                }
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|source| CliError::Listen {
                    addr: listen,
                    source,
                })?;
            tracing::info!(addr = %listener.local_addr().unwrap_or(listen), "intent service listening");
            let stop = cancel.clone();
            let shutdown = async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = stop.cancelled() => {}
                }
            };
            let served = server::serve(listener, service, shutdown).await;
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
        IntentsCommand::Warm { kb } => {
            let kb = Kb::load_or_embedded(kb.as_deref())?;
            let embedder = super::meaning::load()?;
            let started = std::time::Instant::now();
            super::meaning::Meaning::build_with(&kb, &embedder).ok_or(CliError::NotEmbedded)?;
            println!(
                "{} intents embedded in {:.1} s",
                kb.intents.len(),
                started.elapsed().as_secs_f32()
            );
            Ok(())
        }
    }
}
