//! Connections of their own for the refresh grant's two calls (its read and its rotation),
//! each a single statement in its own implicit transaction.
//!
//! Why not sqlx's pool: it pings a connection when it is returned (and, unless told not to,
//! when it is taken), so a statement through it costs two or three round trips to the
//! server instead of one; for the refresh grant, every app's every page load, that was most
//! of the round trips. Here a connection is taken from the idle ones (or opened), runs its
//! statement, and goes back only if the statement's future ran to its end and the server
//! answered it (a database error, such as a refused value, leaves the connection usable; an
//! I/O or protocol error does not). A caller that goes away mid-statement drops the
//! connection with it: it is closed, never reused in an unknown state. At most
//! [`MAX_CONNECTIONS`] are open at once; more callers wait for one.

use std::sync::Mutex;
use std::time::Duration;

use ostiary_core::StoreError;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::shared::{describe, unavailable};

/// How many of these connections an instance opens at most (besides sqlx's pool).
pub(crate) const MAX_CONNECTIONS: usize = 8;

/// How long opening one may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The refresh grant's connections: idle ones, and a bound on how many are open.
pub(crate) struct HotConnections {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
    open: Semaphore,
}

impl std::fmt::Debug for HotConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HotConnections")
    }
}

/// A connection taken for one statement, and its place among the open ones.
pub(crate) struct Taken<'a> {
    pub(crate) connection: PgConnection,
    _permit: SemaphorePermit<'a>,
}

impl HotConnections {
    pub(crate) fn new(options: PgConnectOptions) -> Self {
        Self {
            options,
            idle: Mutex::default(),
            open: Semaphore::new(MAX_CONNECTIONS),
        }
    }

    /// An idle connection, or a new one once fewer than [`MAX_CONNECTIONS`] are open.
    pub(crate) async fn take(&self) -> Result<Taken<'_>, StoreError> {
        let permit = self
            .open
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => {
                tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&self.options))
                    .await
                    .map_err(|_| {
                        StoreError::Unavailable(format!(
                            "no connection to PostgreSQL within {} s",
                            CONNECT_TIMEOUT.as_secs()
                        ))
                    })?
                    .map_err(unavailable)?
            }
        };
        Ok(Taken {
            connection,
            _permit: permit,
        })
    }

    /// Ends a statement run on `taken`: the connection goes back to the idle ones if the
    /// server answered (`outcome` is a value or a database error), and is closed otherwise.
    /// The outcome is passed on, its error as a [`StoreError`].
    pub(crate) fn give_back<T>(
        &self,
        taken: Taken<'_>,
        outcome: Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        let usable = match &outcome {
            Ok(_) => true,
            Err(sqlx::Error::Database(_)) => true,
            Err(e) => {
                tracing::debug!(error = %describe(e), "closing a refresh-grant connection");
                false
            }
        };
        if usable {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(taken.connection);
        }
        outcome.map_err(unavailable)
    }
}
