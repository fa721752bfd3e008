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
    }
}
