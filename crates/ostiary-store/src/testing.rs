//! Scratch PostgreSQL databases for test suites (feature `testing`): this crate's contract
//! suite and the multi-instance tests of the CLI.
//!
//! Tests that need PostgreSQL read the server from `OSTIARY_TEST_DATABASE_URL` (any existing
//! database on it, e.g. `postgres://postgres@127.0.0.1:5432/test`); each one gets a database
//! of its own, created here and dropped by [`ScratchDatabase::drop_now`]. Without the variable
//! they say that they were skipped.

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
    /// Creates one on the server `OSTIARY_TEST_DATABASE_URL` names; `None` (after printing
    /// `skipped: … (what)` to stderr) when the variable is not set. Panics if the server cannot
    /// be reached: a set variable means the tests are expected to run.
    pub async fn create(what: &str) -> Option<Self> {
        let Ok(server) = std::env::var(DATABASE_URL_VAR) else {
            eprintln!("skipped: {DATABASE_URL_VAR} is not set ({what})");
            return None;
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
        Some(Self {
            admin,
            name,
            url: url.to_string(),
        })
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
