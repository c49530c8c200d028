//! A fresh store per test, of each kind, opened through `ostiary_store::open` (so the URL
//! scheme selection is exercised too).

use std::future::Future;
use std::sync::Arc;

use ostiary_core::Store;
use ostiary_store::testing::ScratchDatabase;

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
/// Without the variable it fails: these tests are `#[ignore]`d unless asked for.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let database = ScratchDatabase::create("the PostgreSQL contract tests").await;
    let store = ostiary_store::open(database.url())
        .await
        .expect("open PostgreSQL");
    // On a task of its own, so that a failing test still drops its database.
    let outcome = tokio::spawn(test(store)).await;
    let dropped = database.drop_now().await;
    match outcome {
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("the test did not finish: {e}"),
        Ok(()) => {}
    }
    dropped.expect("drop the test database");
}
