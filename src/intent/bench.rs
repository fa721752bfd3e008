//! `voicebot bench intent`: how long a turn's resolution takes, in-process and over gRPC
//! on loopback, and how many resolutions a core can do per second.
//!
//! The workload is every example phrasing of the knowledge base in both languages, in
//! turn. Latency is measured one request at a time (what one caller sees); throughput
//! with 32 concurrent callers, divided by the CPU time the process used (client and
//! server share the process over loopback, so both are counted).

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::breaker::BreakerConfig;
use super::client::{Grpc, GrpcConfig, InProcess, IntentError, IntentResolver};
use super::kb::{Kb, KbError};
use super::matcher::Matcher;
use super::reload;
use super::resolution::{Language, Request};
use super::server::{self, MatcherService};

const IN_PROCESS_REQUESTS: usize = 5_000;
const GRPC_REQUESTS: usize = 2_000;
const CONCURRENT_CALLERS: usize = 32;
const CONCURRENT_REQUESTS: usize = 8_000;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Kb(#[from] KbError),
    #[error(transparent)]
    Intent(#[from] IntentError),
    #[error("cannot listen on loopback: {0}")]
    Listen(std::io::Error),
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub requests: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

#[derive(Debug, Serialize)]
pub struct Throughput {
    pub requests: usize,
    pub concurrency: usize,
    pub requests_per_second: f64,
    /// Requests per CPU-second used by the whole process; `None` where the process's
    /// CPU time cannot be read (not Linux).
    pub requests_per_core_second: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub intents: usize,
    pub phrasings: usize,
    pub in_process: Latency,
    pub in_process_throughput: Throughput,
    pub grpc_loopback: Latency,
    pub grpc_loopback_throughput: Throughput,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "intent resolution: {} intents, {} phrasings",
            self.intents, self.phrasings
        )?;
        for (name, l, t) in [
            ("in-process", &self.in_process, &self.in_process_throughput),
            (
                "gRPC loopback",
                &self.grpc_loopback,
                &self.grpc_loopback_throughput,
            ),
        ] {
            let per_core = t
                .requests_per_core_second
                .map_or("n/a".to_string(), |r| format!("{r:.0}"));
            writeln!(
                f,
                "  {name:<14} p50 {:>6} µs  p99 {:>6} µs  max {:>6} µs  ({} sequential) | {:.0} req/s with {} callers, {per_core} req per CPU-second",
                l.p50_us, l.p99_us, l.max_us, l.requests, t.requests_per_second, t.concurrency
            )?;
        }
        Ok(())
    }
}

/// Runs the benchmark against `kb` (or the embedded knowledge base).
pub async fn run(kb: Option<&Path>) -> Result<BenchReport, BenchError> {
    super::meaning::install(true);
    let kb = Kb::load_or_embedded(kb)?;
    let intents = kb.intents.len();
    let phrasings: Arc<Vec<Request>> = Arc::new(
        Language::ALL
            .into_iter()
            .flat_map(|lang| {
                kb.intents.iter().flat_map(move |i| {
                    i.examples(lang)
                        .iter()
                        .map(move |e| Request::new(e.clone(), lang))
                })
            })
            .collect(),
    );
    let matcher = reload::shared(Matcher::new(kb));

    let local: Arc<dyn IntentResolver> = Arc::new(InProcess::new(matcher.clone()));
    let in_process = latency(&local, &phrasings, IN_PROCESS_REQUESTS).await?;
    let in_process_throughput = throughput(&local, &phrasings, CONCURRENT_REQUESTS).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(BenchError::Listen)?;
    let addr = listener.local_addr().map_err(BenchError::Listen)?;
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let server = tokio::spawn(server::serve(
        listener,
        MatcherService::new(matcher),
        async move { stopped.cancelled().await },
    ));
    let remote: Arc<dyn IntentResolver> = Arc::new(Grpc::new(GrpcConfig {
        endpoint: format!("http://{addr}"),
        deadline: Duration::from_secs(2),
        breaker: BreakerConfig::default(),
    })?);
    let grpc = async {
        Ok::<_, BenchError>((
            latency(&remote, &phrasings, GRPC_REQUESTS).await?,
            throughput(&remote, &phrasings, CONCURRENT_REQUESTS).await?,
        ))
    }
    .await;
    stop.cancel();
    let _ = server.await;
    let (grpc_loopback, grpc_loopback_throughput) = grpc?;

    Ok(BenchReport {
        intents,
        phrasings: phrasings.len(),
        in_process,
        in_process_throughput,
        grpc_loopback,
        grpc_loopback_throughput,
    })
}

async fn latency(
    resolver: &Arc<dyn IntentResolver>,
    phrasings: &[Request],
    n: usize,
) -> Result<Latency, BenchError> {
    for req in phrasings.iter().cycle().take(n / 10) {
        resolver.resolve(req.clone()).await?;
    }
    let mut took = Vec::with_capacity(n);
    for req in phrasings.iter().cycle().take(n) {
        let started = Instant::now();
        resolver.resolve(req.clone()).await?;
        took.push(started.elapsed());
    }
    took.sort();
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize].as_micros() as u64;
    Ok(Latency {
        requests: n,
        p50_us: at(0.5),
        p99_us: at(0.99),
        max_us: at(1.0),
    })
}

async fn throughput(
    resolver: &Arc<dyn IntentResolver>,
    phrasings: &Arc<Vec<Request>>,
    n: usize,
) -> Result<Throughput, BenchError> {
    let cpu_before = cpu_time();
    let started = Instant::now();
    let per_caller = n / CONCURRENT_CALLERS;
    let callers: Vec<_> = (0..CONCURRENT_CALLERS)
        .map(|c| {
            let resolver = resolver.clone();
            let phrasings = phrasings.clone();
            tokio::spawn(async move {
                for req in phrasings.iter().cycle().skip(c * 7).take(per_caller) {
                    resolver.resolve(req.clone()).await?;
                }
                Ok::<_, IntentError>(())
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a bench caller does not panic")?;
    }
    let wall = started.elapsed().as_secs_f64();
    let done = per_caller * CONCURRENT_CALLERS;
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    Ok(Throughput {
        requests: done,
        concurrency: CONCURRENT_CALLERS,
        requests_per_second: done as f64 / wall,
        requests_per_core_second: cpu.filter(|c| *c > 0.0).map(|c| done as f64 / c),
    })
}

/// CPU seconds (user + system) this process has used, from /proc (Linux, 100 Hz ticks).
fn cpu_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_and_grows() {
        let before = cpu_time().expect("Linux /proc");
        let mut x = 0u64;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(x != 1);
        assert!(cpu_time().unwrap() >= before);
    }
}
