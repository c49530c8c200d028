//! One module per subcommand.

pub mod audit;
pub mod backchannel;
pub mod clients;
pub mod demo;
pub mod keys;
pub mod serve;
pub mod sessions;
pub mod token;
pub mod users;

use std::sync::Arc;

use ostiary_core::clock::SystemClock;
use ostiary_core::{Idp, Store};

use crate::settings::Settings;

/// Opens the configured database (creating and migrating it if needed, unless
/// `migrate_on_start` is off).
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(ostiary_store::open_with(&settings.database_url, settings.migrate_on_start).await?)
}

/// `ostiary migrate`: applies pending migrations to the configured database.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = ostiary_store::open_with(&settings.database_url, true).await?;
    store.check_ready().await?;
    out!("database schema is up to date")?;
    Ok(())
}

/// The IdP on the configured database, for administrative commands: its signing keys are not
/// loaded, so no key-encryption key is needed (see [`Idp::for_administration`]).
pub async fn open_idp(settings: &Settings) -> anyhow::Result<Idp> {
    let config = ostiary_core::IdpConfig {
        issuer: settings.issuer(),
        ..settings.idp_config()?
    };
    let store = open_store(settings).await?;
    Ok(Idp::for_administration(
        store,
        Arc::new(SystemClock),
        config,
    )?)
}

/// The IdP on the configured database for a command that makes signing keys (`keys rotate`):
/// like [`open_idp`], with the key-encryption key that seals them ([`crate::kek::resolve`]).
pub async fn open_idp_with_kek(settings: &Settings) -> anyhow::Result<Idp> {
    crate::kek::precheck(settings)?;
    let store = open_store(settings).await?;
    let config = ostiary_core::IdpConfig {
        issuer: settings.issuer(),
        key_encryption_key: crate::kek::resolve(settings, store.as_ref()).await?,
        ..settings.idp_config()?
    };
    Ok(Idp::for_administration(
        store,
        Arc::new(SystemClock),
        config,
    )?)
}

/// The audit log's name for whoever runs this command: `cli:` and the login name of the
/// operating-system user (`USER`, or `LOGNAME`), or `cli` if neither is set.
pub fn operator_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .map(|name| {
            name.chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                .take(64)
                .collect::<String>()
        })
        .filter(|name| !name.is_empty());
    match user {
        Some(name) => format!("cli:{name}"),
        None => "cli".to_owned(),
    }
}

/// Resolves when the process receives Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
