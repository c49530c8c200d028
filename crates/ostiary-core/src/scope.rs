//! Scopes (RFC 6749 §3.3) and resource indicators (RFC 8707).

use std::fmt;

/// The scope that makes a request an OpenID Connect request (OIDC Core §3.1.2.1).
pub const OPENID: &str = "openid";
/// The scope that asks for a refresh token (OIDC Core §11). Ostiary's refresh tokens are
/// bound to the IdP session: they end with it.
pub const OFFLINE_ACCESS: &str = "offline_access";
/// The scope that releases `preferred_username` (OIDC Core §5.4).
pub const PROFILE: &str = "profile";

/// Scopes every client may request.
pub const BUILT_IN: [&str; 3] = [OPENID, PROFILE, OFFLINE_ACCESS];

/// A set of scope tokens, kept in request order without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(Vec<String>);

/// Why a scope string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope must be space-separated tokens of printable ASCII without quotes or backslashes")]
pub struct InvalidScope;

impl Scope {
    /// Parses a space-separated scope string. An empty string is the empty scope.
    pub fn parse(value: &str) -> Result<Self, InvalidScope> {
        if value.len() > 2048 {
            return Err(InvalidScope);
        }
        let mut tokens: Vec<String> = Vec::new();
        for token in value.split(' ').filter(|t| !t.is_empty()) {
            // NQCHAR = %x21 / %x23-5B / %x5D-7E
            let valid = token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid {
                return Err(InvalidScope);
            }
            if !tokens.iter().any(|t| t == token) {
                tokens.push(token.to_owned());
            }
        }
        Ok(Self(tokens))
    }

    /// Whether the scope contains `token`.
    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.iter().all(|t| other.contains(t))
    }

    /// The tokens.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// Checks a resource indicator (RFC 8707 §2): an absolute URI without a fragment.
pub fn is_valid_resource(value: &str) -> bool {
    value.len() <= 2048
        && !value.contains('#')
        && !crate::client::has_bad_uri_characters(value)
        && url::Url::parse(value).is_ok_and(|u| !u.cannot_be_a_base() || u.scheme() == "urn")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parsing_dedupes_and_rejects_bad_characters() {
        let scope = Scope::parse("openid  profile openid").unwrap();
        assert_eq!(scope.to_string(), "openid profile");
        assert!(Scope::parse("open\"id").is_err());
        assert!(Scope::parse("a\\b").is_err());
        assert!(Scope::parse("").unwrap().is_empty());
        assert!(Scope::parse("openid").unwrap().is_subset_of(&scope));
        assert!(!Scope::parse("email").unwrap().is_subset_of(&scope));
    }

    #[test]
    fn resources_are_absolute_uris_without_fragment() {
        assert!(is_valid_resource("https://api.example.com"));
        assert!(is_valid_resource("urn:example:api"));
        assert!(!is_valid_resource("api"));
        assert!(!is_valid_resource("https://api.example.com/#x"));
    }
}
