//! Connections of their own for the refresh grant's two calls (its read and its rotation),
//! each a single statement in its own implicit transaction.
//!
//! Why not sqlx's pool: it pings a connection when it is returned (and, unless told not to,
//! when it is taken), so a statement through it costs two or three round trips to the
//! server instead of one; for the refresh grant, every app's every page load, that was most
//! of the round trips. Here a connection is taken from the idle ones (or opened), runs its
//! statement, and goes back only if the statement's future ran to its end and the server
//! answered it (a database error, such as a refused value, leaves the connection usable; an
//! I/O or protocol error does not, nor one that says the server is ending the connection,
//! and then the idle ones are closed too: they are as likely broken). A caller that goes away mid-statement drops the
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

/// Whether a connection can be used again after this outcome: the server answered, with a
/// value or with an error about the statement (a refused value, a conflict), but not an error
/// about the connection itself (SQLSTATE class 08, connection exception; 57P, the server
/// shutting down or ending the session).
fn usable<T>(outcome: &Result<T, sqlx::Error>) -> bool {
    match outcome {
        Ok(_) => true,
        Err(sqlx::Error::Database(db)) => !db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        Err(e) => {
            tracing::debug!(error = %describe(e), "a refresh grant's connection failed");
            false
        }
    }
}

impl HotConnections {
    pub(crate) fn new(options: PgConnectOptions) -> Self {
        Self {
            options,
            idle: Mutex::default(),
            open: Semaphore::new(MAX_CONNECTIONS),
        }
    }

    /// An idle connection, or a new one once fewer than [`MAX_CONNECTIONS`] are open; always a
    /// new one if `fresh`.
    pub(crate) async fn take(&self, fresh: bool) -> Result<Taken<'_>, StoreError> {
        let permit = self
            .open
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        let idle = if fresh {
            None
        } else {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
        };
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
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if usable(&outcome) {
            idle.push(taken.connection);
        } else {
            // The server went away (a restart, a failover) or is shutting down: the idle
            // connections are as likely broken as this one, and opening new ones is cheap.
            tracing::debug!(idle = idle.len(), "closing the refresh grant's connections");
            idle.clear();
        }
        drop(idle);
        outcome.map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// A database error with a SQLSTATE, as PostgreSQL sends them.
    #[derive(Debug)]
    struct Refused(&'static str);

    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Refused {}

    impl sqlx::error::DatabaseError for Refused {
        fn message(&self) -> &str {
            "refused"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn refused(code: &'static str) -> Result<(), sqlx::Error> {
        Err(sqlx::Error::Database(Box::new(Refused(code))))
    }

    #[test]
    fn a_connection_is_kept_only_while_the_server_answers_about_the_statement() {
        assert!(usable(&Ok(())));
        // A unique violation, a value out of range: the statement's fault.
        assert!(usable(&refused("23505")));
        assert!(usable(&refused("22003")));
        // The server ending the session (admin shutdown, idle session timeout) or a
        // connection exception: the connection is done.
        assert!(!usable(&refused("57P01")));
        assert!(!usable(&refused("57P05")));
        assert!(!usable(&refused("08006")));
        let broken: Result<(), sqlx::Error> = Err(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(!usable(&broken));
        assert!(!usable::<()>(&Err(sqlx::Error::Protocol("garbled".into()))));
    }

    fn idle(hot: &HotConnections) -> usize {
        hot.idle.lock().unwrap().len()
    }

    #[cfg(feature = "testing")]
    #[tokio::test]
    #[ignore = "needs OSTIARY_TEST_DATABASE_URL"]
    async fn a_broken_connection_closes_the_idle_ones_and_a_fresh_take_opens_one() {
        let scratch = crate::testing::ScratchDatabase::create("hot_connections").await;
        let options = crate::postgres::connect_options(scratch.url()).unwrap();
        let hot = HotConnections::new(options);
        let first = hot.take(false).await.unwrap();
        let second = hot.take(false).await.unwrap();
        hot.give_back(first, Ok(())).unwrap();
        hot.give_back(second, Ok(())).unwrap();
        assert_eq!(
            idle(&hot),
            2,
            "answered statements give their connections back"
        );

        let fresh = hot.take(true).await.unwrap();
        assert_eq!(idle(&hot), 2, "a fresh take leaves the idle ones alone");
        let lost: Result<(), sqlx::Error> = Err(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(hot.give_back(fresh, lost).is_err());
        assert_eq!(
            idle(&hot),
            0,
            "a broken connection closes the idle ones too"
        );

        let mut again = hot.take(false).await.unwrap();
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut again.connection)
            .await
            .unwrap();
        assert_eq!(one, 1, "a new connection is opened");
        hot.give_back(again, Ok(())).unwrap();
        drop(hot);
        scratch.drop_now().await.unwrap();
    }
}
