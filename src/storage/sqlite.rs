//! SQLite, the default store: opening the gateway's files (call records, the SMS
//! outbox), and moving [`Value`]s in and out. The files hold
//! callers' words and numbers, so the file is created readable by its owner only
//! (0600; SQLite gives its `-wal` and `-shm` files the same mode), and
//! `secure_delete` overwrites deleted and blanked content instead of leaving it in
//! free pages.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use super::Value;

/// Opens (creating if need be, with its directory) a database file for the gateway's
/// own use: WAL, a busy timeout, `secure_delete`, mode 0600 when created.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let io = |e: std::io::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    create_private(path).map_err(io)?;
    let db = Connection::open(path)?;
    configure(&db)?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    Ok(db)
}

/// The pragmas every connection gets, in-memory ones (tests) included.
pub fn configure(db: &Connection) -> rusqlite::Result<()> {
    db.busy_timeout(Duration::from_secs(5))?;
    db.pragma_update(None, "secure_delete", "ON")
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Value::Int(v) => ToSqlOutput::Owned((*v).into()),
            Value::Real(v) => ToSqlOutput::Owned((*v).into()),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::Bool(v) => ToSqlOutput::Owned(i64::from(*v).into()),
        })
    }
}

/// A column as read; the gateway stores no blobs.
pub(super) fn value(v: ValueRef<'_>, index: usize) -> rusqlite::Result<Value> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(_) => {
            return Err(rusqlite::Error::InvalidColumnType(
                index,
                "blob".into(),
                rusqlite::types::Type::Blob,
            ))
        }
    })
}

/// Creates an empty file with mode 0600 unless it exists (an existing file keeps the
/// mode its owner gave it).
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_database_is_private_to_its_owner_with_secure_delete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.sqlite");
        let db = open(&path).unwrap();
        db.execute_batch("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('a');")
            .unwrap();
        for file in ["x.sqlite", "x.sqlite-wal", "x.sqlite-shm"] {
            let mode = std::fs::metadata(dir.path().join("sub").join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
        }
        let on: i64 = db
            .query_row("PRAGMA secure_delete", [], |r| r.get(0))
            .unwrap();
        assert_eq!(on, 1);
    }
}
