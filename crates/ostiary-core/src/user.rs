//! Users and their password hashes (hashed and verified by [`crate::hashing`]).

use std::fmt;

use serde::Serialize;

use crate::clock::UnixTime;

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
}
