//! A throwaway PostgreSQL cluster on loopback, from the Debian `postgresql` package:
//! for tests of the shared store and `voicebot bench storage`. It lives in a fresh
//! temporary folder, listens on a free port and a socket in that folder, trusts
//! local connections, runs as the `postgres` user when we are root (PostgreSQL
//! refuses to run as root), and is stopped and deleted when dropped.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use super::{Backend, Db, DbError};

#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error("no PostgreSQL server binaries under /usr/lib/postgresql (apt install postgresql)")]
    NotInstalled,
    #[error("{step}: {detail}")]
    Failed { step: &'static str, detail: String },
    #[error("scratch database: {0}")]
    Db(#[from] DbError),
}

pub struct ScratchPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl ScratchPostgres {
    /// Creates and starts a cluster. `durable = false` turns off fsync (tests);
    /// `true` keeps PostgreSQL's defaults (measurements of write cost).
    pub fn start(durable: bool) -> Result<ScratchPostgres, ScratchError> {
        let bin = server_bin().ok_or(ScratchError::NotInstalled)?;
        let dir = std::env::temp_dir().join(format!(
            "voicebot-pg-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| failed("create folder", e))?;
        let as_postgres = running_as_root();
        let mut pg = ScratchPostgres {
            dir,
            bin,
            port: 0,
            as_postgres,
        };
        if as_postgres {
            run(
                Command::new("chown").arg("postgres:").arg(&pg.dir),
                "chown to postgres",
            )?;
        }
        let data = pg.dir.join("data");
        run(
            pg.command("initdb")
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data),
            "initdb",
        )?;
        pg.port = free_port()?;
        let fsync = if durable { "on" } else { "off" };
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={fsync} -c max_connections=50",
            pg.port,
            pg.dir.display()
        );
        run(
            pg.command("pg_ctl")
                .args(["-w", "-t", "30", "-D"])
                .arg(&data)
                .arg("-l")
                .arg(pg.dir.join("server.log"))
                .args(["-o", &options, "start"]),
            "pg_ctl start",
        )?;
        Ok(pg)
    }

    /// A `postgres://` URL for `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database and returns its backend.
    pub fn create_database(&self, name: &str) -> Result<Backend, ScratchError> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
        if !valid {
            return Err(failed(
                "create database",
                format!("{name:?}: a-z, 0-9 and _ only"),
            ));
        }
        let mut admin = Db::open(&Backend::Postgres(self.url("postgres")))?;
        admin.batch(&format!("CREATE DATABASE {name}"))?;
        Ok(Backend::Postgres(self.url(name)))
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self
            .command("pg_ctl")
            .args(["-w", "-t", "10", "-m", "immediate", "-D"])
            .arg(&data)
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest installed server's `bin` folder.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> Result<u16, ScratchError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| failed("free port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| failed("free port", e))
}

fn failed(step: &'static str, detail: impl std::fmt::Display) -> ScratchError {
    ScratchError::Failed {
        step,
        detail: detail.to_string(),
    }
}

/// Runs a setup step to its end (bounded by the step's own `-t`/`-w` flags and by
/// initdb's size), failing with its output.
fn run(cmd: &mut Command, step: &'static str) -> Result<(), ScratchError> {
    let started = Instant::now();
    let out = cmd.output().map_err(|e| failed(step, e))?;
    if !out.status.success() {
        return Err(failed(
            step,
            format!(
                "{} after {:?}\n{}{}",
                out.status,
                started.elapsed(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    Ok(())
}
