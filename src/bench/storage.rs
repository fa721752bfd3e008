//! `voicebot bench storage`: what the call records cost per call on each store, as a
//! gateway writes them (through the records thread, one write at the start, after
//! each answer and at the end): a SQLite file, and PostgreSQL on loopback (a scratch
//! cluster with fsync on, or the database at `--url`).

use std::fmt::Write as _;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;

use crate::ops::live::LiveCalls;
use crate::ops::records::{RecordWriter, Records};
use crate::storage::scratch::ScratchPostgres;
use crate::storage::{Backend, Store};

/// Caller turns per simulated call (with the bot's answer to each).
const TURNS: usize = 3;

pub async fn run(calls: usize, url: Option<String>, out: &mut String) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("voicebot-bench-storage-{}", std::process::id()));
    let sqlite = Backend::Sqlite(dir.join("records.sqlite"));
    let result = async {
        let line = measure(sqlite, calls).await?;
        writeln!(out, "sqlite file (WAL): {line}")?;
        let (postgres, _cluster) = match url {
            Some(url) => (Backend::Postgres(url), None),
            None => {
                let (backend, cluster) = tokio::task::spawn_blocking(|| {
                    let cluster = ScratchPostgres::start(true)?;
                    Ok::<_, anyhow::Error>((cluster.create_database("bench")?, cluster))
                })
                .await??;
                (backend, Some(cluster))
            }
        };
        let what = postgres.to_string();
        let line = measure(postgres, calls).await?;
        writeln!(out, "postgresql {what} (fsync on, loopback TCP): {line}")?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    std::fs::remove_dir_all(&dir).ok();
    result
}

/// `calls` calls of `TURNS` turns through the records thread; their cost per call.
async fn measure(backend: Backend, calls: usize) -> anyhow::Result<String> {
    let store = Store {
        backend,
        node: "bench".into(),
    };
    let records = tokio::task::spawn_blocking(move || Records::open(&store)).await??;
    let failures = Counter::default();
    let live = LiveCalls::with_records(64, RecordWriter::spawn(records, failures.clone()));
    let started = Instant::now();
    for i in 0..calls {
        let id = live.start(&format!("bench-{i}"), 1_800_000_000, "70101010", "", "da");
        live.said(
            &id,
            0.5,
            "bot",
            "Goddag, du har ringet til Eksempel Kommune.",
        );
        for t in 0..TURNS {
            let at = 5.0 + 10.0 * t as f32;
            live.said(&id, at, "caller", "hvornår bliver mit affald hentet");
            live.replied(&id, 1.2);
            live.said(
                &id,
                at + 1.2,
                "bot",
                "Dit affald hentes hver anden tirsdag.",
            );
        }
        live.end(&id, "resolved");
    }
    live.flush_records().await;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(failures.get() == 0, "{} writes failed", failures.get());
    Ok(format!(
        "{calls} calls of {TURNS} turns in {secs:.2} s: {:.2} ms per call, {:.0} calls/s",
        secs * 1000.0 / calls as f64,
        calls as f64 / secs
    ))
}
