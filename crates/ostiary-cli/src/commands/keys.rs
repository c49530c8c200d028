//! `ostiary keys …`: the signing keys' lifecycle (see `ostiary_core::keys`).

use clap::Subcommand;
use ostiary_core::keys::KeyEncryptionKey;

use crate::settings::Settings;

/// Signing-key administration.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the signing keys as JSON lines: kid, alg, state (next, current, retired, removed),
    /// created_at (published), activates_at (signs from), retired_at, removed_at (no longer
    /// published), encrypted (sealed under the key-encryption key). Times in Unix seconds.
    List,
    /// Publish a new key for each algorithm in use. It starts signing keys.publish_ahead
    /// seconds from now (default one hour), after every instance and every verifier's JWKS
    /// cache has it. Running instances pick it up within a minute.
    Rotate {
        /// Sign with the new key at once and retire the current one (a compromised key).
        /// Verifiers fetch the new key when they first see its kid; the old key stays
        /// published until the tokens it signed have expired. Running instances switch at
        /// their next key reload (within a minute). A key that was waiting to sign is deleted
        /// (it was made before the compromise).
        #[arg(long)]
        immediately: bool,
    },
    /// Print a new random key-encryption key (URL-safe base64 of 32 bytes) for
    /// key_encryption_key. Needs no database.
    GenerateKek,
}

/// Runs a key command.
pub async fn run(command: KeyCommand, settings: &Settings) -> anyhow::Result<()> {
    if let KeyCommand::GenerateKek = command {
        out!("{}", KeyEncryptionKey::generate_encoded())?;
        return Ok(());
    }
    let idp = super::open_idp(settings).await?;
    let statuses = match command {
        KeyCommand::List => idp.key_statuses().await?,
        KeyCommand::Rotate { immediately } => idp.rotate_keys(immediately).await?,
        KeyCommand::GenerateKek => Vec::new(),
    };
    for status in statuses {
        out!("{}", serde_json::to_string(&status)?)?;
    }
    Ok(())
}
