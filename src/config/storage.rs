//! `[storage]`: where call records and the SMS outbox live. Without a `url`, each
//! gateway keeps SQLite files of its own (`[privacy] record_path`, `[sms] outbox`);
//! with `url = "postgres://…"`, every gateway behind one SIP front shares one
//! PostgreSQL database.

use serde::Deserialize;

use crate::storage::{Backend, Store};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `postgres://user:password@host:port/database` (or `postgresql://`); unset: SQLite.
    pub url: Option<String>,
    /// This gateway's name in the shared database: a restarted gateway takes back only
    /// its own unfinished calls and SMS. Default: the machine's host name.
    pub node: Option<String>,
}

impl StorageConfig {
    /// The shared database, if one is configured.
    pub fn shared(&self) -> Option<Backend> {
        self.url.clone().map(Backend::Postgres)
    }

    /// Where one kind of state goes: the shared database, else its own file.
    pub fn store(&self, sqlite_path: std::path::PathBuf) -> Store {
        Store {
            backend: self.shared().unwrap_or(Backend::Sqlite(sqlite_path)),
            node: self.node(),
        }
    }

    pub fn node(&self) -> String {
        self.node.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "voicebot".into())
        })
    }

    pub(super) fn check(&self) -> Result<(), String> {
        if let Some(url) = &self.url {
            let scheme = url.split("://").next().unwrap_or("");
            if !url.contains("://") || !matches!(scheme, "postgres" | "postgresql") {
                return Err(format!(
                    "[storage] url must start with postgres:// or postgresql:// (got {:?}); \
                     leave it out for SQLite",
                    crate::storage::redact_url(url)
                ));
            }
            url.parse::<tokio_postgres::Config>()
                .map_err(|e| format!("[storage] url: {e}"))?;
        }
        if self
            .node
            .as_deref()
            .is_some_and(|n| n.is_empty() || n.len() > 64 || n.chars().any(char::is_control))
        {
            return Err("[storage] node: 1 to 64 characters, no control characters".into());
        }
        Ok(())
    }
}
