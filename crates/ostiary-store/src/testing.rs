//! Scratch PostgreSQL databases for test suites (feature `testing`): this crate's contract
//! suite and the multi-instance tests of the CLI.
//!
//! Tests that need PostgreSQL read the server from `OSTIARY_TEST_DATABASE_URL` (any existing
//! database on it, e.g. `postgres://postgres@127.0.0.1:5432/test`); each one gets a database
//! of its own, created here and dropped by [`ScratchDatabase::drop_now`]. Such tests are
//! marked `#[ignore = "needs OSTIARY_TEST_DATABASE_URL"]`, so that a run without the variable
//! reports them as ignored rather than passed; `scripts/test` runs them
//! (`-- --include-ignored`) when the variable is set, and one asked to run without it fails.

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

/// The variable naming a PostgreSQL server for the tests.
pub const DATABASE_URL_VAR: &str = "OSTIARY_TEST_DATABASE_URL";

/// A fresh, uniquely named database on the test server.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin: PgConnection,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates one on the server `OSTIARY_TEST_DATABASE_URL` names, for the tests `what`
    /// describes. Panics when the variable is not set (a PostgreSQL test that was asked to run
    /// must not pass without having run) or the server cannot be reached.
    pub async fn create(what: &str) -> Self {
        let Ok(server) = std::env::var(DATABASE_URL_VAR) else {
            panic!(
                "{DATABASE_URL_VAR} is not set, and {what} need a PostgreSQL server: set it \
                 (e.g. postgres://postgres@127.0.0.1:5432/test), or leave these tests ignored \
                 (no --ignored / --include-ignored)"
            );
        };
        let name = format!(
            "ostiary_t_{}",
            ostiary_core::secret::random_bytes::<8>()
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
            .unwrap_or_else(|e| panic!("create the test database: {e}"));
        let mut url = url::Url::parse(&server)
            .unwrap_or_else(|e| panic!("{DATABASE_URL_VAR} is not a URL: {e}"));
        url.set_path(&name);
        Self {
            admin,
            name,
            url: url.to_string(),
        }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database, disconnecting whoever still uses it.
    pub async fn drop_now(mut self) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await
        .map(|_| ())
    }
}
