//! Opening a database as an operator meets it: a wrong URL is named as such, a SQLite file is
//! created only in a directory that exists, an unreachable PostgreSQL server is an error
//! within seconds that names the address and the cause, and errors read without the driver's
//! internals.

use std::time::{Duration, Instant};

use ostiary_store::OpenError;
use ostiary_store::testing::ScratchDatabase;

fn error_of(result: Result<std::sync::Arc<dyn ostiary_core::Store>, OpenError>) -> OpenError {
    match result {
        Ok(_) => panic!("the database opened"),
        Err(e) => e,
    }
}

#[test]
fn invalid_and_unsupported_urls_are_named_as_such_without_their_password() {
    for good in [
        "sqlite::memory:",
        "sqlite://ostiary.db",
        "sqlite:///var/lib/ostiary/ostiary.db",
        "postgres://ostiary:pw@127.0.0.1:5432/idp",
        "postgresql://ostiary@127.0.0.1/idp?sslmode=require",
    ] {
        ostiary_store::check_url(good).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    assert!(matches!(
        ostiary_store::check_url("mysql://root@127.0.0.1/idp"),
        Err(OpenError::UnsupportedScheme(scheme)) if scheme == "mysql"
    ));
    assert!(matches!(
        ostiary_store::check_url("ostiary.db"),
        Err(OpenError::InvalidUrl(_))
    ));
    for bad in [
        "postgres://ostiary:s3cret@[127.0.0.1/idp",
        "postgres://ostiary:s3cret@127.0.0.1:99999/idp",
        "sqlite://ostiary.db?mode=rwc&s3cret=1",
    ] {
        let error = ostiary_store::check_url(bad).expect_err(bad);
        assert!(
            matches!(error, OpenError::InvalidUrl(_)),
            "{bad}: {error:?}"
        );
        let text = error.to_string();
        assert!(text.starts_with("invalid database URL: "), "{text}");
        assert!(!text.contains("error with configuration"), "{text}");
        if bad.starts_with("postgres") {
            assert!(!text.contains("s3cret"), "{text}");
        }
    }
}

#[tokio::test]
async fn a_sqlite_database_in_a_missing_directory_is_refused_naming_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let url = format!("sqlite://{}", missing.join("ostiary.db").display());

    let error = error_of(ostiary_store::open(&url).await);

    assert!(
        matches!(&error, OpenError::MissingDirectory(named) if *named == missing),
        "{error:?}"
    );
    assert!(error.to_string().contains(&missing.display().to_string()));
    assert!(!missing.exists(), "no directory was created");
}

#[tokio::test]
async fn in_memory_and_relative_to_an_existing_directory_sqlite_still_opens() {
    ostiary_store::open("sqlite::memory:").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ostiary.db").display());
    ostiary_store::open(&url).await.unwrap();
    ostiary_store::open(&url).await.unwrap();
}

#[tokio::test]
async fn a_failed_migration_reads_without_driver_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let url = format!("sqlite://{}", path.display());
    {
        use sqlx::Connection as _;
        let mut db = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .unwrap();
        // Another application's table where Ostiary's first migration creates its own.
        sqlx::query("CREATE TABLE users (id INTEGER)")
            .execute(&mut db)
            .await
            .unwrap();
    }

    let text = error_of(ostiary_store::open(&url).await).to_string();

    assert!(text.contains("migration failed: migration 1"), "{text}");
    assert!(text.contains("already exists"), "{text}");
    assert!(!text.contains("(code:"), "{text}");
    assert!(!text.contains("error returned from database"), "{text}");
}

#[tokio::test]
async fn an_unreachable_postgresql_server_fails_within_seconds_with_the_cause() {
    // A loopback port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://ostiary:s3cret@127.0.0.1:{port}/idp");
    let started = Instant::now();

    let text = error_of(ostiary_store::open(&url).await).to_string();

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        text.contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{port}")),
        "{text}"
    );
    assert!(text.to_ascii_lowercase().contains("refused"), "{text}");
    assert!(!text.contains("pool timed out"), "{text}");
    assert!(!text.contains("os error"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[tokio::test]
#[ignore = "needs OSTIARY_TEST_DATABASE_URL"]
async fn a_missing_postgresql_database_is_named_without_the_servers_source_lines() {
    let database = ScratchDatabase::create("the open-error tests").await;
    let mut url = url::Url::parse(database.url()).unwrap();
    url.set_path("ostiary_no_such_database");

    let text = error_of(ostiary_store::open(url.as_str()).await).to_string();

    database.drop_now().await.unwrap();
    assert!(
        text.contains("\"ostiary_no_such_database\" does not exist"),
        "{text}"
    );
    assert!(!text.contains(" at line "), "{text}");
    assert!(!text.contains("error returned from database"), "{text}");
}
