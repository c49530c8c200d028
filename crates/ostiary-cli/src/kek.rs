//! Which key-encryption key seals the signing keys, for the commands that use them (`serve`,
//! `demo`, `keys rotate`); every other command needs none.
//!
//! - A key given by the settings (`key_encryption_key`, `key_encryption_key_file`) is used.
//! - PostgreSQL (a database several instances and their backups share) requires one.
//! - A SQLite file gets one of its own by default: `PATH.kek` beside the database file
//!   (`ostiary.db` → `ostiary.db.kek`), created on first start with mode 0600 and logged. A
//!   stolen copy of the database alone then yields no signing keys; keep backups of the two
//!   apart.
//! - An in-memory SQLite database keeps its keys in the clear: they live as long as the
//!   process.
//!
//! The key is checked against the stored keys before anything is done with it: keys sealed
//! under another key, or sealed keys without their key, stop the command with what to do.

use std::path::{Path, PathBuf};

use ostiary_core::Store;
use ostiary_core::keys::{KeyEncryptionKey, LoadedKey};

use crate::settings::Settings;

/// Refuses, before the database is opened, a shared database without a configured key (the
/// one case where no key can be found or made).
pub fn precheck(settings: &Settings) -> anyhow::Result<()> {
    if settings.configured_key_encryption_key()?.is_none()
        && let Backing::Shared(scheme) = default_file(&settings.database_url)
    {
        anyhow::bail!(required(&scheme));
    }
    Ok(())
}

fn required(scheme: &str) -> String {
    format!(
        "a key-encryption key is required with {scheme}: set OSTIARY_KEY_ENCRYPTION_KEY (or \
         key_encryption_key_file) to base64 of 32 random bytes, for example the output of \
         `ostiary keys generate-kek`; it seals the signing keys in the database"
    )
}

/// The key-encryption key the signing keys in `store` are (or will be) sealed under.
pub async fn resolve(
    settings: &Settings,
    store: &dyn Store,
) -> anyhow::Result<Option<KeyEncryptionKey>> {
    let kek = match settings.configured_key_encryption_key()? {
        Some(kek) => Some(kek),
        None => match default_file(&settings.database_url) {
            Backing::Shared(scheme) => anyhow::bail!(required(&scheme)),
            Backing::Memory => None,
            Backing::File(path) => Some(beside_the_database(&path, store).await?),
        },
    };
    check_opens(kek.as_ref(), store).await?;
    Ok(kek)
}

/// Where a database's own key-encryption key would be.
enum Backing {
    /// A database shared by instances (PostgreSQL): the key must be configured.
    Shared(String),
    /// An in-memory SQLite database.
    Memory,
    /// A SQLite file: its key-encryption key file.
    File(PathBuf),
}

fn default_file(database_url: &str) -> Backing {
    let Some(rest) = database_url.strip_prefix("sqlite:") else {
        let scheme = database_url.split(':').next().unwrap_or("this database");
        return Backing::Shared(scheme.to_owned());
    };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.contains(":memory:") || database_url.contains("mode=memory") {
        return Backing::Memory;
    }
    let mut file = PathBuf::from(path).into_os_string();
    file.push(".kek");
    Backing::File(file.into())
}

/// Reads the database's own key-encryption key, creating it if this is its first start.
async fn beside_the_database(path: &Path, store: &dyn Store) -> anyhow::Result<KeyEncryptionKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            return KeyEncryptionKey::parse(&text)
                .map_err(|e| anyhow::anyhow!("the key-encryption key in {}: {e}", path.display()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read the key-encryption key {}: {e}", path.display()),
    }
    let stored = store.list_signing_keys().await?;
    if stored.iter().any(|key| LoadedKey::load(key, None).is_err()) {
        anyhow::bail!(
            "the signing keys in this database are sealed, but their key-encryption key is not at \
             {}: restore that file, or set key_encryption_key to the key they were sealed with",
            path.display()
        );
    }
    let encoded = KeyEncryptionKey::generate_encoded();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the key-encryption key {}: {e}",
            path.display()
        )
    })?;
    std::io::Write::write_all(&mut file, format!("{encoded}\n").as_bytes())?;
    file.sync_all()?;
    tracing::info!(
        file = %path.display(),
        "generated the key-encryption key that seals this database's signing keys (mode 0600); \
         back it up apart from the database: a copy of the database alone cannot sign"
    );
    Ok(KeyEncryptionKey::parse(&encoded)?)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "the key-encryption key file is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Refuses a key that does not open the stored keys, and sealed keys without a key.
async fn check_opens(kek: Option<&KeyEncryptionKey>, store: &dyn Store) -> anyhow::Result<()> {
    for key in store.list_signing_keys().await? {
        LoadedKey::load(&key, kek)?;
    }
    Ok(())
}
