//! Users and their passwords.
//!
//! Passwords are hashed with Argon2id (m = 19 MiB, t = 2, p = 1: the OWASP baseline, about
//! 14 ms per hash on one core in a release build). Hashing runs on tokio's blocking pool
//! behind a semaphore ([`PasswordHasher`]), so a flood of logins queues up instead of
//! starving token refreshes of CPU.

use std::fmt;
use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version};
use serde::Serialize;

use crate::clock::UnixTime;
use crate::secret::Password;

/// A login name: 1 to 64 characters from `A-Z a-z 0-9 . _ @ + -`. Unique and matched without
/// regard to ASCII case (`Alice` and `alice` are one account), kept as first written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

/// Why a username was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a username is 1 to 64 characters of letters, digits and . _ @ + -")]
pub struct InvalidUsername;

impl Username {
    /// Longest accepted username, in characters.
    pub const MAX_LEN: usize = 64;

    /// Checks the rules above.
    pub fn parse(value: &str) -> Result<Self, InvalidUsername> {
        let ok = !value.is_empty()
            && value.len() <= Self::MAX_LEN
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidUsername)
        }
    }

    /// The username as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Argon2id hash in PHC string format (`$argon2id$v=19$m=...`). Not secret in the sense
/// of a credential, but never logged either.
#[derive(Clone)]
pub struct PasswordHashString(String);

impl PasswordHashString {
    /// Restores a hash read from storage.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The PHC string, for storage.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHashString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHashString(..)")
    }
}

/// A user account.
#[derive(Debug, Clone)]
pub struct User {
    /// Stable, opaque identifier; the `sub` claim of every token issued for this user.
    pub id: String,
    /// Login name.
    pub username: Username,
    /// Argon2id hash of the password.
    pub password_hash: PasswordHashString,
    /// A disabled user can neither log in nor refresh.
    pub disabled: bool,
    /// When the account was created (Unix seconds).
    pub created_at: UnixTime,
}

/// Failure of the password hasher itself (not a wrong password).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingError(String);

/// Hashes and verifies passwords on threads of their own: as many as the hasher may run at
/// once, each at a lower scheduling priority than the rest of the process (nice 10 on
/// Linux), so that a flood of sign-ins takes the CPU that refreshes, logouts and everything
/// else leave over, and not the other way round. Requests beyond the threads wait in turn.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    threads: Arc<HashingThreads>,
    dummy_hash: Arc<PasswordHashString>,
}

type HashJob = Box<dyn FnOnce() + Send>;

/// The hashing threads and the queue they take work from.
struct HashingThreads {
    jobs: std::sync::mpsc::Sender<HashJob>,
}

impl std::fmt::Debug for HashingThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashingThreads")
    }
}

impl HashingThreads {
    fn start(count: usize) -> Result<Self, HashingError> {
        let (jobs, queue) = std::sync::mpsc::channel::<HashJob>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for _ in 0..count {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name("ostiary-argon2".into())
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // the hasher is gone
                        }
                    }
                })
                .map_err(|e| HashingError(e.to_string()))?;
        }
        Ok(Self { jobs })
    }

    /// Runs `work` on a hashing thread.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = answer.send(work());
            }))
            .map_err(|_| HashingError("the hashing threads have stopped".into()))?;
        answered
            .await
            .map_err(|_| HashingError("a hashing thread stopped".into()))
    }
}

/// Makes the calling thread yield to the process's other threads (nice 10; on Linux the
/// niceness is per thread). Best effort: a refusal leaves it at normal priority.
fn lower_priority() {
    #[cfg(unix)]
    if let Err(e) = rustix::process::setpriority_process(None, 10) {
        tracing::debug!(error = %e, "could not lower the priority of a hashing thread");
    }
}

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet baseline for Argon2id.
    #[allow(clippy::expect_used)]
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &Password) -> Result<PasswordHashString, HashingError> {
    use argon2::PasswordHasher as _;
    let salt = crate::secret::random_bytes::<16>();
    argon2()
        .hash_password_with_salt(password.expose().as_bytes(), &salt)
        .map(|hash| PasswordHashString(hash.to_string()))
        .map_err(|e| HashingError(e.to_string()))
}

fn verify_blocking(password: &Password, hash: &PasswordHashString) -> bool {
    match PasswordHash::new(hash.as_str()) {
        Ok(parsed) => argon2()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

impl PasswordHasher {
    /// A hasher running at most `max_concurrent` hashes at once (at least 1), each on a
    /// thread of its own.
    pub fn new(max_concurrent: usize) -> Result<Self, HashingError> {
        let dummy = hash_blocking(&Password::new(crate::secret::random_id()))?;
        Ok(Self {
            threads: Arc::new(HashingThreads::start(max_concurrent.max(1))?),
            dummy_hash: Arc::new(dummy),
        })
    }

    /// How many hashes an IdP runs at once on this machine: one fewer than the cores the
    /// process may use (at least one), so that sign-ins never take every core.
    pub fn default_concurrency() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1))
            .unwrap_or(1)
            .max(1)
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: Password) -> Result<PasswordHashString, HashingError> {
        self.threads.run(move || hash_blocking(&password)).await?
    }

    /// Verifies a password against a stored hash. With `None` (unknown user) it verifies
    /// against a dummy hash and returns `false`, so that response time does not reveal
    /// whether a username exists.
    pub async fn verify(&self, password: Password, hash: Option<PasswordHashString>) -> bool {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| (*self.dummy_hash).clone());
        let verified = self
            .threads
            .run(move || verify_blocking(&password, &hash))
            .await
            .unwrap_or(false);
        known && verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_documented_rules() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("a.b_c+d@example-1").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse("<script>").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
    }

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hasher = PasswordHasher::new(2).unwrap();
        let hash = hasher.hash(Password::new("s3cret-pass")).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert!(
            hasher
                .verify(Password::new("s3cret-pass"), Some(hash.clone()))
                .await
        );
        assert!(!hasher.verify(Password::new("wrong"), Some(hash)).await);
        assert!(!hasher.verify(Password::new("s3cret-pass"), None).await);
    }
}
