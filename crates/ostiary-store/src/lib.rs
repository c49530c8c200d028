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
//! - [`open`]: picks the implementation from a database URL.

pub mod postgres;
mod shared;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A database URL that no implementation handles, or a database that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL's scheme is not supported.
    #[error(
        "unsupported database URL scheme {0:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE"
    )]
    UnsupportedScheme(String),
    /// The database could not be opened or migrated.
    #[error("cannot open database: {0}")]
    Database(String),
}

/// Opens the store a database URL names, creating and migrating it if needed.
///
/// - `sqlite://PATH` (relative or absolute; `sqlite:///abs/path`), `sqlite::memory:`.
/// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgresql://`): the database
///   must exist; its schema is created on first start.
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
    let scheme = database_url.split(':').next().unwrap_or_default();
    let store: Arc<dyn ostiary_core::Store> = match scheme {
        "sqlite" => Arc::new(SqliteStore::connect_with(database_url, migrate).await?),
        "postgres" | "postgresql" => {
            Arc::new(PostgresStore::connect_with(database_url, migrate).await?)
        }
        other => return Err(OpenError::UnsupportedScheme(other.to_owned())),
    };
    if !migrate {
        store
            .check_ready()
            .await
            .map_err(|e| OpenError::Database(e.to_string()))?;
    }
    Ok(store)
}
