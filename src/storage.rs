//! Where the gateway keeps what must outlive a call: call records and the SMS outbox.
//! One gateway keeps them in SQLite files of its own (the default); many gateways
//! behind one SIP front share one PostgreSQL database (`[storage] url`).
//!
//! [`Db`] is the one seam between the two: the record and outbox logic is written
//! once, in SQL both engines speak (`?1` placeholders, upserts, `RETURNING`), and asks
//! [`Db`] for the few things that differ: how to serialise writers on a key
//! ([`Db::lock`]), how to claim a row no other gateway is claiming
//! ([`Db::skip_locked`]), and the identity column type in migrations.
//! Calls are blocking (SQLite is, and PostgreSQL is driven through a runtime handle),
//! so callers keep them off the async threads: a dedicated thread or `spawn_blocking`.

pub mod migrate;
mod postgres;
#[cfg(test)]
pub(crate) mod scenarios;
pub mod scratch;
pub mod sqlite;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL: no answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("PostgreSQL: connection lost in the middle of a transaction")]
    LostInTransaction,
    #[error("PostgreSQL needs a tokio runtime: {0}")]
    Runtime(std::io::Error),
    #[error("column {index}: {found} where {wanted} was expected")]
    Column {
        index: usize,
        wanted: &'static str,
        found: String,
    },
}

impl DbError {
    /// The database is away for now (a lost connection, a server restarting or
    /// refusing connections, a locked file): the same statement may well work later.
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            DbError::Sqlite(_) => false,
            // No answer from the server at all, or one that says it is going away
            // (class 08: connection, 57P: shutdown and recovery).
            DbError::Postgres(e) => {
                e.is_closed()
                    || e.as_db_error().is_none_or(|d| {
                        let code = d.code().code();
                        code.starts_with("08") || code.starts_with("57P") || d.severity() == "FATAL"
                    })
            }
            DbError::Timeout(_) | DbError::LostInTransaction => true,
            DbError::Runtime(_) | DbError::Column { .. } => false,
        }
    }
}

/// Which database holds a kind of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A file local to this gateway.
    Sqlite(PathBuf),
    /// A database every gateway shares (a `postgres://` URL).
    Postgres(String),
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Sqlite(path) => write!(f, "{}", path.display()),
            Backend::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

/// Where one kind of state goes, and the name of the gateway writing it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub backend: Backend,
    /// `[storage] node`: marks the calls and messages this gateway has in hand.
    pub node: String,
}

impl Store {
    /// A SQLite file of this gateway's own (the one-machine default).
    pub fn local(path: PathBuf) -> Store {
        Store {
            backend: Backend::Sqlite(path),
            node: crate::config::StorageConfig::default().node(),
        }
    }
}

/// A URL fit for logs and errors: its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// A value bound to a placeholder or read from a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(v.into())
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Value {
        Value::Real(v.into())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.into())
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row, read by column index.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(Vec<Value>);

impl Row {
    fn at(&self, index: usize) -> &Value {
        self.0.get(index).unwrap_or(&Value::Null)
    }

    fn wrong(&self, index: usize, wanted: &'static str) -> DbError {
        DbError::Column {
            index,
            wanted,
            found: format!("{:?}", self.at(index)),
        }
    }

    pub fn opt_int(&self, index: usize) -> Result<Option<i64>, DbError> {
        match self.at(index) {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            _ => Err(self.wrong(index, "an integer")),
        }
    }

    pub fn int(&self, index: usize) -> Result<i64, DbError> {
        self.opt_int(index)?
            .ok_or_else(|| self.wrong(index, "an integer"))
    }

    /// A count or other non-negative integer that fits 32 bits.
    pub fn count(&self, index: usize) -> Result<u32, DbError> {
        u32::try_from(self.int(index)?).map_err(|_| self.wrong(index, "a count"))
    }

    pub fn opt_real(&self, index: usize) -> Result<Option<f64>, DbError> {
        match self.at(index) {
            Value::Null => Ok(None),
            Value::Real(v) => Ok(Some(*v)),
            // SQLite stores a whole REAL as an integer when it can.
            Value::Int(v) => Ok(Some(*v as f64)),
            _ => Err(self.wrong(index, "a number")),
        }
    }

    pub fn opt_text(&self, index: usize) -> Result<Option<String>, DbError> {
        match self.at(index) {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            _ => Err(self.wrong(index, "text")),
        }
    }

    pub fn text(&self, index: usize) -> Result<String, DbError> {
        self.opt_text(index)?
            .ok_or_else(|| self.wrong(index, "text"))
    }

    /// A BOOLEAN (PostgreSQL) or 0/1 (SQLite).
    pub fn bool(&self, index: usize) -> Result<bool, DbError> {
        match self.at(index) {
            Value::Bool(v) => Ok(*v),
            Value::Int(v) => Ok(*v != 0),
            _ => Err(self.wrong(index, "a boolean")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One connection to the database of a [`Backend`].
pub struct Db {
    conn: Conn,
}

enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Pg>),
}

impl Db {
    /// Opens the database (a SQLite file is created, with its directory, readable by
    /// its owner only).
    pub fn open(backend: &Backend) -> Result<Db, DbError> {
        let conn = match backend {
            Backend::Sqlite(path) => Conn::Sqlite(sqlite::open(path)?),
            Backend::Postgres(url) => Conn::Postgres(Box::new(postgres::Pg::connect(url)?)),
        };
        Ok(Db { conn })
    }

    /// A private SQLite database in memory (unit tests).
    pub fn sqlite_in_memory() -> Result<Db, DbError> {
        let conn = rusqlite::Connection::open_in_memory()?;
        sqlite::configure(&conn)?;
        Ok(Db {
            conn: Conn::Sqlite(conn),
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Every commit reaches the disk before it returns (an SMS promised to a caller
    /// survives a power cut). PostgreSQL does that by default.
    pub fn durable_commits(&mut self) -> Result<(), DbError> {
        if let Conn::Sqlite(c) = &self.conn {
            c.pragma_update(None, "synchronous", "FULL")?;
        }
        Ok(())
    }

    /// Runs one statement; returns the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        match &mut self.conn {
            Conn::Sqlite(c) => {
                Ok(c.prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(params))? as u64)
            }
            Conn::Postgres(pg) => pg.execute(sql, params),
        }
    }

    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        match &mut self.conn {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let columns = stmt.column_count();
                let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
                    (0..columns)
                        .map(|i| sqlite::value(r.get_ref(i)?, i))
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map(Row)
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            }
            Conn::Postgres(pg) => pg.query(sql, params),
        }
    }

    pub fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query that always returns one (`SELECT COUNT(*)`, …).
    pub fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row, DbError> {
        Ok(self.query_opt(sql, params)?.unwrap_or(Row(Vec::new())))
    }

    /// Statements without parameters, separated by `;` (schema changes).
    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match &mut self.conn {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(pg) => pg.batch(sql),
        }
    }

    /// Runs `f` in a transaction: committed if it returns `Ok`, rolled back if not.
    /// SQLite takes the write lock at the start (two writers never both pass a check
    /// and then both write); PostgreSQL locks rows as they are touched, and
    /// [`Db::lock`] serialises on a key.
    pub fn transaction<T, E: From<DbError>>(
        &mut self,
        f: impl FnOnce(&mut Db) -> Result<T, E>,
    ) -> Result<T, E> {
        match &mut self.conn {
            Conn::Sqlite(c) => c.execute_batch("BEGIN IMMEDIATE").map_err(DbError::from)?,
            Conn::Postgres(pg) => pg.begin()?,
        }
        match f(self) {
            Ok(v) => {
                self.end("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                if let Err(rollback) = self.end("ROLLBACK") {
                    tracing::warn!(error = %rollback, "rollback failed");
                }
                Err(e)
            }
        }
    }

    fn end(&mut self, sql: &str) -> Result<(), DbError> {
        match &mut self.conn {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(pg) => pg.end(sql),
        }
    }

    /// Inside a transaction: waits until no other transaction holds `key`, and holds
    /// it until this one ends. SQLite needs nothing: its transaction already holds the
    /// whole database's write lock.
    pub fn lock(&mut self, key: &str) -> Result<(), DbError> {
        if self.dialect() == Dialect::Postgres {
            self.query("SELECT pg_advisory_xact_lock(hashtext(?1))", &[key.into()])?;
        }
        Ok(())
    }

    /// Appended to a `SELECT` that picks rows to claim: rows another gateway is
    /// claiming at this moment are passed over rather than waited for (PostgreSQL).
    pub fn skip_locked(&self) -> &'static str {
        match self.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redact_url("postgres://voicebot:s3cret@db:5432/voicebot"),
            "postgres://voicebot:***@db:5432/voicebot"
        );
        assert_eq!(
            redact_url("postgres://voicebot@db/voicebot"),
            "postgres://voicebot@db/voicebot"
        );
        assert_eq!(
            Backend::Postgres("postgresql://a:b@h/d".into()).to_string(),
            "postgresql://a:***@h/d"
        );
    }

    #[test]
    fn rows_read_both_engines_spellings() {
        let row = Row(vec![
            Value::Int(1),
            Value::Bool(true),
            Value::Null,
            Value::Int(3),
            Value::Text("x".into()),
        ]);
        assert!(row.bool(0).unwrap() && row.bool(1).unwrap());
        assert_eq!(row.opt_text(2).unwrap(), None);
        assert_eq!(row.opt_real(3).unwrap(), Some(3.0));
        let e = row.int(4).unwrap_err().to_string();
        assert!(e.contains("column 4") && e.contains("integer"), "{e}");
        assert!(row.int(9).is_err(), "a missing column is an error, not 0");
    }

    #[test]
    fn a_failed_transaction_leaves_nothing() {
        let mut db = Db::sqlite_in_memory().unwrap();
        db.batch("CREATE TABLE t (x BIGINT)").unwrap();
        let r: Result<(), DbError> = db.transaction(|db| {
            db.execute("INSERT INTO t VALUES (?1)", &[1i64.into()])?;
            db.execute("INSERT INTO nowhere VALUES (1)", &[])?;
            Ok(())
        });
        assert!(r.is_err());
        let n = db.query_one("SELECT COUNT(*) FROM t", &[]).unwrap();
        assert_eq!(n.int(0).unwrap(), 0);
    }
}
