//! Storage for Ostiary: implementations of [`ostiary_core::Store`].
//!
//! SQLite is the embedded default: one file, created with its schema on first start, in WAL
//! mode with `synchronous=FULL` (a committed rotation survives power loss). PostgreSQL is for
//! several IdP instances sharing one database: what must be atomic holds across processes
//! (row locks, conditional updates, an ordered revocation feed). The domain never sees SQL;
//! both sit behind the same trait, and one contract suite (`tests/contract/`) runs against
//! both.
//!
//! # Layout
//! - [`sqlite`]: [`SqliteStore`], the SQLite implementation, and its migrations
//!   (`migrations/sqlite/*.sql`, embedded at compile time).
//! - [`postgres`]: [`PostgresStore`], the PostgreSQL implementation, and its migrations
//!   (`migrations/postgres/*.sql`, embedded at compile time).
//! - [`guard`]: [`TextGuard`], the text every store accepts (no NUL), the same on every
//!   backend.
//! - [`open`]: picks the implementation from a database URL, behind the guard.

#[cfg(feature = "testing")]
pub mod counting;
pub mod guard;
mod methods;
pub mod postgres;
mod rows;
mod shared;
mod sql;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

pub use guard::TextGuard;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A database URL that no implementation handles, or a database that cannot be opened.
///
/// The messages are for operators: they never carry a password from the URL, nor the
/// driver's internals (source files, line numbers); those go to debug logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL's scheme is not supported.
    #[error(
        "unsupported database URL scheme {0:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE"
    )]
    UnsupportedScheme(String),
    /// The URL does not parse (what is wrong with it; never the URL itself, which may hold a
    /// password).
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The directory a SQLite database file is to be created in does not exist. Ostiary
    /// creates the file, never its directory: a mistyped path must not become a fresh, empty
    /// identity provider.
    #[error(
        "the directory {} of the SQLite database does not exist: create it, or correct the \
         database URL",
        .0.display()
    )]
    MissingDirectory(std::path::PathBuf),
    /// The database could not be opened or migrated.
    #[error("cannot open database: {0}")]
    Database(String),
}

/// The implementation a database URL names.
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(database_url: &str) -> Result<Self, OpenError> {
        let Some((scheme, _)) = database_url.split_once(':') else {
            return Err(OpenError::InvalidUrl(
                "no scheme: use sqlite://PATH or postgres://USER@HOST/DATABASE".into(),
            ));
        };
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(OpenError::UnsupportedScheme(other.to_owned())),
        }
    }
}

/// Checks a database URL without opening anything: a supported scheme, and a URL its
/// implementation accepts. [`open`] makes the same checks; this is for reporting a wrong URL
/// before any other setting is looked at.
pub fn check_url(database_url: &str) -> Result<(), OpenError> {
    match Backend::of(database_url)? {
        Backend::Sqlite => sqlite::connect_options(database_url).map(drop),
        Backend::Postgres => postgres::connect_options(database_url).map(drop),
    }
}

/// Opens the store a database URL names, creating and migrating it if needed, behind the
/// [`TextGuard`].
///
/// - `sqlite://PATH` (relative or absolute; `sqlite:///abs/path`), `sqlite::memory:`. The
///   file is created if missing, in a directory that must exist
///   ([`OpenError::MissingDirectory`]).
/// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgresql://`): the database
///   must exist; its schema is created on first start. A server that cannot be reached is an
///   error within seconds, naming the address and the cause.
///
/// Logs (info) which database is in use, without its password, and whether it was empty.
pub async fn open(database_url: &str) -> Result<Arc<dyn ostiary_core::Store>, OpenError> {
    open_with(database_url, true).await
}

/// Opens the store a database URL names. With `migrate`, pending migrations are applied
/// first; without, a database whose schema is not the one this build expects is refused
/// ([`OpenError::Database`], saying to run `ostiary migrate`), for deployments that migrate
/// as a separate step.
pub async fn open_with(
    database_url: &str,
    migrate: bool,
) -> Result<Arc<dyn ostiary_core::Store>, OpenError> {
    let store: Arc<dyn ostiary_core::Store> = match Backend::of(database_url)? {
        Backend::Sqlite => Arc::new(SqliteStore::connect_with(database_url, migrate).await?),
        Backend::Postgres => Arc::new(PostgresStore::connect_with(database_url, migrate).await?),
    };
    if !migrate {
        store
            .check_ready()
            .await
            .map_err(|e| OpenError::Database(e.to_string()))?;
    }
    Ok(Arc::new(TextGuard::new(store)))
}
