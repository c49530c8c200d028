//! `Store::check_ready`: ready on a migrated database, not ready (with a reason that says what
//! to do) when the schema is behind the build.

use sqlx::Connection as _;

#[tokio::test]
async fn a_database_behind_the_build_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = ostiary_store::open(&url).await.unwrap();
    store.check_ready().await.unwrap();

    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let error = store.check_ready().await.unwrap_err().to_string();
    assert!(error.contains("ostiary migrate"), "{error}");
}
