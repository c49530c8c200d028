//! `ostiary keys …`: the signing keys' lifecycle (see `ostiary_core::keys`).

use clap::Subcommand;
use ostiary_core::keys::KeyEncryptionKey;
use ostiary_core::signing::{KeyRotation, Operator};

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
    /// cache has it. Running instances pick it up within a minute. Needs the key-encryption
    /// key (the SQLite database's own PATH.kek by default).
    Rotate {
        /// A compromised key: sign with the new keys at once and withdraw every existing key.
        /// Withdrawn keys are deleted and announced on the revocation feed: running instances
        /// stop publishing and accepting them within seconds, verifiers following the feed
        /// drop them from their JWKS cache at once, and tokens they signed are refused
        /// everywhere, whatever their expiry (clients get new ones by refreshing).
        #[arg(long)]
        immediately: bool,
        /// With --immediately: also end every active session (users sign in again).
        #[arg(long, requires = "immediately")]
        end_sessions: bool,
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
    let statuses = match command {
        KeyCommand::List => super::open_idp(settings).await?.key_statuses().await?,
        KeyCommand::Rotate {
            immediately,
            end_sessions,
        } => {
            let idp = super::open_idp_with_kek(settings).await?;
            let actor = super::operator_name();
            let outcome = idp
                .rotate_keys(
                    KeyRotation {
                        immediately,
                        end_sessions,
                    },
                    Operator {
                        actor: &actor,
                        origin: None,
                    },
                )
                .await?;
            if !outcome.withdrawn.is_empty() {
                tracing::warn!(withdrawn = ?outcome.withdrawn, sessions_ended = outcome.sessions_ended, "signing keys withdrawn");
            }
            outcome.keys
        }
        KeyCommand::GenerateKek => Vec::new(),
    };
    for status in statuses {
        out!("{}", serde_json::to_string(&status)?)?;
    }
    Ok(())
}
