//! A fresh store per test, of each kind, opened through `ostiary_store::open` (so the URL
//! scheme selection is exercised too).

use std::future::Future;
use std::sync::Arc;

use ostiary_core::Store;
use ostiary_core::secret::random_bytes;
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

/// The variable naming a PostgreSQL server (any existing database on it) for the tests.
const DATABASE_URL_VAR: &str = "OSTIARY_TEST_DATABASE_URL";

/// Runs `test` on a fresh SQLite database file in a temporary directory.
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("ostiary.db").display());
    let store = ostiary_store::open(&url).await.expect("open SQLite");
    test(store).await;
}

/// Runs `test` on a fresh PostgreSQL database, created for it on the server that
/// `OSTIARY_TEST_DATABASE_URL` names and dropped afterwards (also when the test fails).
/// Without the variable, says so on stderr and passes.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(server) = std::env::var(DATABASE_URL_VAR) else {
        eprintln!("skipped: {DATABASE_URL_VAR} is not set (PostgreSQL contract tests)");
        return;
    };
    let name = format!(
        "ostiary_t_{}",
        random_bytes::<8>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut admin = PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("connect to {DATABASE_URL_VAR}: {e}"));
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    let mut url = url::Url::parse(&server).expect("a URL");
    url.set_path(&name);
    let store = ostiary_store::open(url.as_str())
        .await
        .expect("open PostgreSQL");
    // On a task of its own, so that a failing test still drops its database.
    let outcome = tokio::spawn(test(store)).await;
    let dropped = sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
    match outcome {
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("the test did not finish: {e}"),
        Ok(()) => {}
    }
    dropped.expect("drop the test database");
}
