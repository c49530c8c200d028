//! The behavioural contract of [`ostiary_core::Store`], run against every implementation.
//!
//! Each test is written once, against `Arc<dyn Store>`, and [`contract!`] instantiates it for
//! SQLite (a fresh database file per test) and PostgreSQL (a fresh database per test, created
//! through `OSTIARY_TEST_DATABASE_URL` and dropped afterwards). The PostgreSQL variants are
//! `#[ignore]`d, so that a run without a server reports them as ignored, not passed; run them
//! with the variable set and `-- --include-ignored` (as `scripts/test` does), or one backend
//! alone with a filter: `cargo test -p ostiary-store --test contract postgres:: -- --ignored`.
//!
//! # Layout
//! - `backend`: opening a fresh store of each kind, and running a test body on it.
//! - `fixtures`: test data built from the domain types.
//! - `registry`: users, clients, signing keys.
//! - `sessions`: sessions, session limits, endings, the active-session list.
//! - `tokens`: authorization codes, refresh families and rotation, revoked access tokens.
//! - `feed`: the revocation feed (cursor, since, limit, prune, latest seq).
//! - `backchannel`: back-channel logout deliveries (claim, lease, outcomes).
//! - `audit`: the audit log and its filters.
//! - `concurrency`: many tasks at once against one store.
//! - `operations`: failed-login counters, the next signing key, revocation notifications,
//!   readiness.
//! - `retention`: the job lease, expired sessions, deletion in batches, row counts.
//! - `text`: text no database can keep (NUL) through every method that takes text.

/// Instantiates each named `async fn(Arc<dyn Store>)` of the calling module as one test per
/// backend: `<module>::sqlite::<name>` and `<module>::postgres::<name>` (ignored unless asked
/// for: it needs `OSTIARY_TEST_DATABASE_URL`).
macro_rules! contract {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::backend::on_sqlite(super::$name).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[ignore = "needs OSTIARY_TEST_DATABASE_URL"]
                async fn $name() {
                    crate::backend::on_postgres(super::$name).await;
                }
            )+
        }
    };
}

mod audit;
mod backchannel;
mod backend;
mod concurrency;
mod feed;
mod fixtures;
mod operations;
mod registry;
mod retention;
mod sessions;
mod text;
mod tokens;
