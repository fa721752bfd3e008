//! PostgreSQL, the shared store: one `tokio-postgres` connection driven from blocking
//! code. The connection task runs on the gateway's runtime (found from the calling
//! thread: a `spawn_blocking` or a thread started with the handle entered); a caller
//! outside any runtime (a test, a one-off command) gets a small runtime of its own.
//!
//! Every round trip is bounded by [`ROUND_TRIP`]; a connection the server closed (a
//! restart, a failover) is opened again at the next use, so one bad minute does not
//! leave a gateway without its database until it restarts. A statement in flight when
//! the connection went fails (and is counted by its caller); none is retried blindly,
//! as it may be in the middle of a transaction.

use std::collections::HashMap;
use std::error::Error;
use std::future::Future;
use std::time::Duration;

use bytes::BytesMut;
use tokio::runtime::{Handle, Runtime};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

use super::{DbError, Row, Value};

/// The longest a statement (or connecting) may take before it counts as failed.
const ROUND_TRIP: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection; the gateway uses a few dozen.
const STATEMENTS: usize = 128;

enum Exec {
    Shared(Handle),
    Own(Runtime),
}

impl Exec {
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        match self {
            Exec::Shared(h) => h.block_on(f),
            Exec::Own(rt) => rt.block_on(f),
        }
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, f: F) {
        match self {
            Exec::Shared(h) => h.spawn(f),
            Exec::Own(rt) => rt.spawn(f),
        };
    }
}

pub(super) struct Pg {
    config: tokio_postgres::Config,
    exec: Exec,
    client: Client,
    statements: HashMap<String, Statement>,
    /// An error said the connection is gone (its task may not have noticed yet).
    broken: bool,
    /// Between BEGIN and COMMIT/ROLLBACK: a lost connection is then not replaced, or
    /// the rest of the transaction would commit statement by statement.
    in_transaction: bool,
}

impl Pg {
    pub fn connect(url: &str) -> Result<Pg, DbError> {
        let mut config: tokio_postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(ROUND_TRIP);
        }
        if config.get_application_name().is_none() {
            config.application_name("voicebot");
        }
        let exec = match Handle::try_current() {
            Ok(h) => Exec::Shared(h),
            Err(_) => Exec::Own(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(DbError::Runtime)?,
            ),
        };
        let client = open(&config, &exec)?;
        Ok(Pg {
            config,
            exec,
            client,
            statements: HashMap::new(),
            broken: false,
            in_transaction: false,
        })
    }

    /// Connects again if the server closed the last connection (outside a transaction).
    fn ensure_open(&mut self) -> Result<(), DbError> {
        if self.broken || self.client.is_closed() {
            if self.in_transaction {
                return Err(DbError::LostInTransaction);
            }
            tracing::warn!("PostgreSQL connection lost; connecting again");
            self.statements.clear();
            self.client = open(&self.config, &self.exec)?;
            self.broken = false;
        }
        Ok(())
    }

    /// Notes an error that means the connection is gone.
    fn track<T>(&mut self, result: Result<T, DbError>) -> Result<T, DbError> {
        if let Err(e) = &result {
            self.broken |= match e {
                DbError::Postgres(e) => {
                    e.is_closed() || e.as_db_error().is_some_and(|d| d.severity() == "FATAL")
                }
                // Whatever the server is doing with it, this connection is not to be trusted.
                DbError::Timeout(_) => true,
                _ => false,
            };
        }
        result
    }

    pub fn begin(&mut self) -> Result<(), DbError> {
        self.batch("BEGIN")?;
        self.in_transaction = true;
        Ok(())
    }

    /// COMMIT or ROLLBACK.
    pub fn end(&mut self, sql: &str) -> Result<(), DbError> {
        let result = self.batch(sql);
        self.in_transaction = false;
        result
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        self.ensure_open()?;
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let prepared = bounded(&self.exec, self.client.prepare(&numbered(sql)));
        let prepared = self.track(prepared)?;
        if self.statements.len() >= STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), prepared.clone());
        Ok(prepared)
    }

    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let stmt = self.statement(sql)?;
        let done = bounded(&self.exec, self.client.execute(&stmt, &refs(params)));
        self.track(done)
    }

    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let stmt = self.statement(sql)?;
        let rows = bounded(&self.exec, self.client.query(&stmt, &refs(params)));
        self.track(rows)?.iter().map(row).collect()
    }

    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.ensure_open()?;
        let done = bounded(&self.exec, self.client.batch_execute(sql));
        self.track(done)
    }
}

fn open(config: &tokio_postgres::Config, exec: &Exec) -> Result<Client, DbError> {
    let (client, connection) = bounded(exec, config.connect(NoTls))?;
    exec.spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

fn bounded<T>(
    exec: &Exec,
    f: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, DbError> {
    exec.block_on(async { tokio::time::timeout(ROUND_TRIP, f).await })
        .map_err(|_| DbError::Timeout(ROUND_TRIP))?
        .map_err(DbError::Postgres)
}

/// `?1` → `$1`: the shared SQL uses SQLite's spelling of numbered placeholders.
/// (No statement of ours has a `?` inside a string literal.)
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn row(r: &tokio_postgres::Row) -> Result<Row, DbError> {
    let mut out = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let ty = column.type_();
        let v = if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map(Value::Int)
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?
                .map(|v| Value::Int(v.into()))
        } else if *ty == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map(Value::Real)
        } else if *ty == Type::FLOAT4 {
            r.try_get::<_, Option<f32>>(i)?
                .map(|v| Value::Real(v.into()))
        } else if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?.map(Value::Bool)
        } else if *ty == Type::TEXT || *ty == Type::VARCHAR {
            r.try_get::<_, Option<String>>(i)?.map(Value::Text)
        } else if *ty == Type::VOID {
            // pg_advisory_xact_lock() and friends.
            None
        } else {
            return Err(DbError::Column {
                index: i,
                wanted: "bigint, double precision, boolean or text",
                found: ty.to_string(),
            });
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(out))
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let check = |ok: bool, what: &str| -> Result<(), Box<dyn Error + Sync + Send>> {
            if ok {
                Ok(())
            } else {
                Err(format!("a {ty} parameter was given {what}").into())
            }
        };
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Value::Int(v) => {
                check(<i64 as ToSql>::accepts(ty), "an integer")?;
                v.to_sql(ty, out)
            }
            Value::Real(v) if *ty == Type::FLOAT4 => (*v as f32).to_sql(ty, out),
            Value::Real(v) => {
                check(<f64 as ToSql>::accepts(ty), "a number")?;
                v.to_sql(ty, out)
            }
            Value::Text(v) => {
                check(<&str as ToSql>::accepts(ty), "text")?;
                v.as_str().to_sql(ty, out)
            }
            Value::Bool(v) => {
                check(<bool as ToSql>::accepts(ty), "a boolean")?;
                v.to_sql(ty, out)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`, where the value's own type is known.
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_for_postgres() {
        assert_eq!(
            numbered("UPDATE sms SET a = ?2 WHERE id = ?1 AND b = '?' || ?10"),
            "UPDATE sms SET a = $2 WHERE id = $1 AND b = '?' || $10"
        );
    }
}

#[cfg(test)]
mod reconnect_tests {
    use crate::storage::scratch::ScratchPostgres;
    use crate::storage::{Db, DbError};

    fn backend_pid(db: &mut Db) -> i64 {
        db.query_one("SELECT pg_backend_pid()", &[])
            .unwrap()
            .int(0)
            .unwrap()
    }

    /// What a server restart or an administrator does to a connection.
    fn terminate(admin: &mut Db, pid: i64) {
        let killed = admin
            .query_one(
                "SELECT pg_terminate_backend(CAST(?1 AS INTEGER))",
                &[pid.into()],
            )
            .unwrap()
            .bool(0)
            .unwrap();
        assert!(killed);
    }

    #[test]
    fn a_connection_the_server_closed_is_opened_again_at_the_next_use() {
        let pg = ScratchPostgres::start(false).unwrap();
        let backend = pg.create_database("reconnect").unwrap();
        // As in the gateway: the connections' tasks run on a runtime of their own
        // threads, and notice a closed connection at once.
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _entered = runtime.enter();
        let (mut db, mut admin) = (Db::open(&backend).unwrap(), Db::open(&backend).unwrap());
        let pid = backend_pid(&mut db);
        terminate(&mut admin, pid);
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_ne!(backend_pid(&mut db), pid, "a new connection");

        // Lost inside a transaction: the transaction fails whole, nothing of it stays.
        db.batch("CREATE TABLE t (x BIGINT)").unwrap();
        let pid = backend_pid(&mut db);
        let r: Result<(), DbError> = db.transaction(|db| {
            db.execute("INSERT INTO t VALUES (1)", &[])?;
            terminate(&mut admin, pid);
            std::thread::sleep(std::time::Duration::from_millis(300));
            // A new connection here would commit this insert on its own.
            db.execute("INSERT INTO t VALUES (2)", &[])?;
            Ok(())
        });
        assert!(matches!(r, Err(DbError::LostInTransaction)), "{r:?}");
        let rows = admin.query_one("SELECT COUNT(*) FROM t", &[]).unwrap();
        assert_eq!(rows.int(0).unwrap(), 0, "not half a transaction");
        assert_eq!(
            db.query_one("SELECT COUNT(*) FROM t", &[])
                .unwrap()
                .int(0)
                .unwrap(),
            0
        );
    }
}
