//! PostgreSQL, the shared store: one `tokio-postgres` connection driven from blocking
//! code. The connection task runs on the gateway's runtime (found from the calling
//! thread: a `spawn_blocking` or a thread started with the handle entered); a caller
//! outside any runtime (a test, a one-off command) gets a small runtime of its own.
//!
//! Every round trip is bounded by [`ROUND_TRIP`]; a connection the server closed (a
//! restart, a failover) is opened again at the next use, so one bad minute does not
//! leave a gateway without its database until it restarts.

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
        })
    }

    /// Connects again if the server closed the last connection.
    fn ensure_open(&mut self) -> Result<(), DbError> {
        if self.client.is_closed() {
            tracing::warn!("PostgreSQL connection lost; connecting again");
            self.statements.clear();
            self.client = open(&self.config, &self.exec)?;
        }
        Ok(())
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        self.ensure_open()?;
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let prepared = bounded(&self.exec, self.client.prepare(&numbered(sql)))?;
        if self.statements.len() >= STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), prepared.clone());
        Ok(prepared)
    }

    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let stmt = self.statement(sql)?;
        bounded(&self.exec, self.client.execute(&stmt, &refs(params)))
    }

    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let stmt = self.statement(sql)?;
        let rows = bounded(&self.exec, self.client.query(&stmt, &refs(params)))?;
        rows.iter().map(row).collect()
    }

    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.ensure_open()?;
        bounded(&self.exec, self.client.batch_execute(sql))
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
