//! Tests of what is stored run the same scenarios on both engines: each on a SQLite
//! file (a test of its own), and all on a real PostgreSQL in one test (one throwaway
//! cluster, a database per scenario). A scenario is `fn(open)`, where `open(node)`
//! opens the scenario's store (again) as the gateway so named.

/// `on_sqlite_and_postgres!(open; scenario, …)` with `open: fn(&Backend, &str) -> T`.
macro_rules! on_sqlite_and_postgres {
    ($open:ident; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let backend = $crate::storage::Backend::Sqlite(dir.path().join("sub/db.sqlite"));
                    super::$name(&|node| super::$open(&backend, node));
                }
            )*
        }

        #[test]
        fn every_scenario_on_postgres() {
            let pg = $crate::storage::scratch::ScratchPostgres::start(false).unwrap();
            let scenarios = [$((stringify!($name), $name as fn(&dyn Fn(&str) -> _))),*];
            for (i, (name, scenario)) in scenarios.into_iter().enumerate() {
                eprintln!("scenario {name}");
                let backend = pg.create_database(&format!("scenario_{i}")).unwrap();
                scenario(&|node| $open(&backend, node));
            }
        }
    };
}
pub(crate) use on_sqlite_and_postgres;

/// A SQLite file as a gateway from before versioned migrations left it: `schema` (from
/// `storage/before_migrations/`), then `rows`. Keep the folder while the file is used.
pub(crate) fn file_from_before_migrations(
    schema: &str,
    rows: &str,
) -> (tempfile::TempDir, super::Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(schema).unwrap();
    old.execute_batch(rows).unwrap();
    (dir, super::Backend::Sqlite(path))
}
