//! OAuth clients (RFC 6749 §2) and their registered redirect URIs.

use std::fmt;

use serde::Serialize;
use url::Url;

use crate::clock::UnixTime;
use crate::secret::{Credential, CredentialHash};
use crate::session::ClientPolicy;

/// A client identifier: 1 to 128 characters from `A-Z a-z 0-9 . _ : -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

/// Why a client id was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a client id is 1 to 128 characters of letters, digits and . _ : -")]
pub struct InvalidClientId;

impl ClientId {
    /// Checks the rules above.
    pub fn parse(value: &str) -> Result<Self, InvalidClientId> {
        let ok = !value.is_empty()
            && value.len() <= 128
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidClientId)
        }
    }

    /// The client id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registered redirect URI (or post-logout redirect URI): absolute, no fragment, and
/// `https` unless the host is a loopback address or `localhost` (RFC 8252 §7.3, RFC 9700 §2.1)
/// or the scheme is a private-use scheme of a native app (`com.example.app:/callback`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

/// Why a redirect URI was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRedirectUri {
    /// Not an absolute URI.
    #[error("not an absolute URI")]
    NotAbsolute,
    /// Contains a fragment (RFC 6749 §3.1.2).
    #[error("a redirect URI must not contain a fragment")]
    HasFragment,
    /// Plain `http` to a host other than loopback.
    #[error("http is only allowed for loopback hosts; use https")]
    InsecureHttp,
    /// Longer than 2048 bytes.
    #[error("longer than 2048 bytes")]
    TooLong,
    /// Contains a space or a control character (NUL included), which no URI has (RFC 3986 §2)
    /// and which could not be stored.
    #[error("a URI must not contain spaces or control characters")]
    BadCharacters,
}

/// Whether `value` has a character no URI has: whitespace or a control character. The URL
/// parser would quietly drop or percent-encode some of them, but the text as given is what is
/// stored and compared.
pub fn has_bad_uri_characters(value: &str) -> bool {
    value.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        None => false,
    }
}

fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

impl RedirectUri {
    /// Longest accepted URI, in bytes.
    pub const MAX_LEN: usize = 2048;

    /// Checks the rules above. The stored form is the string as registered; matching is
    /// by exact string comparison (see [`RedirectUri::matches`]).
    pub fn parse(value: &str) -> Result<Self, InvalidRedirectUri> {
        if value.len() > Self::MAX_LEN {
            return Err(InvalidRedirectUri::TooLong);
        }
        if has_bad_uri_characters(value) {
            return Err(InvalidRedirectUri::BadCharacters);
        }
        let url = Url::parse(value).map_err(|_| InvalidRedirectUri::NotAbsolute)?;
        if url.fragment().is_some() || value.contains('#') {
            return Err(InvalidRedirectUri::HasFragment);
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&url) => {}
            "http" => return Err(InvalidRedirectUri::InsecureHttp),
            // Private-use URI schemes of native apps (RFC 8252 §7.1) contain a dot.
            scheme if scheme.contains('.') => {}
            _ => return Err(InvalidRedirectUri::InsecureHttp),
        }
        Ok(Self(value.to_owned()))
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a URI sent in a request matches this registered one: exact string match,
    /// except that for a loopback IP literal with `http` the port may differ (RFC 8252 §7.3:
    /// native apps listen on an ephemeral port). `localhost` gets no port exception, as
    /// RFC 8252 §8.3 recommends the IP literal.
    pub fn matches(&self, requested: &str) -> bool {
        if self.0 == requested {
            return true;
        }
        // The loopback exception compares strings too, never normalised URLs: the request must
        // be the registered text with only `:PORT` inserted after the host.
        let Some((prefix, rest)) = self.loopback_parts() else {
            return false;
        };
        let Some(after_host) = requested.strip_prefix(prefix) else {
            return false;
        };
        let Some(after_colon) = after_host.strip_prefix(':') else {
            return false;
        };
        let digits = after_colon.bytes().take_while(u8::is_ascii_digit).count();
        let port = &after_colon[..digits];
        let port_ok = !port.is_empty() && !port.starts_with('0') && port.parse::<u16>().is_ok();
        port_ok && &after_colon[digits..] == rest
    }

    /// For a registered `http://127.0.0.1/…` or `http://[::1]/…` *without a port* (RFC 8252
    /// §7.3: the app picks its port when it runs), the text before and after the port's place.
    fn loopback_parts(&self) -> Option<(&str, &str)> {
        let url = Url::parse(&self.0).ok()?;
        if url.scheme() != "http" || !is_loopback_ip(&url) || url.port().is_some() {
            return None;
        }
        let host = match url.host()? {
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => format!("[{ip}]"),
            url::Host::Domain(_) => return None,
        };
        let prefix_len = format!("http://{host}").len();
        // Only when the registered text spells the host in its canonical form.
        (self.0.get(..prefix_len)? == format!("http://{host}")).then(|| self.0.split_at(prefix_len))
    }
}

/// How a client authenticates, and where its refresh token lives (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// Has a secret (`client_secret_basic` or `client_secret_post`).
    Confidential,
    /// Has no secret; proves possession of the authorization request with PKCE only.
    Public,
    /// A public client running in a browser (a single-page app). Its refresh token is never
    /// put in a response body: the IdP keeps it in an `HttpOnly` cookie on the IdP's own
    /// origin, and the app calls the IdP's browser endpoints with `credentials: 'include'`
    /// from one of its registered web origins.
    Browser,
}

impl ClientKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
            Self::Browser => "browser",
        }
    }

    /// Parses the stored form.
    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "confidential" => Some(Self::Confidential),
            "public" => Some(Self::Public),
            "browser" => Some(Self::Browser),
            _ => None,
        }
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    /// The `client_id`.
    pub id: ClientId,
    /// Confidential or public.
    pub kind: ClientKind,
    /// SHA-256 of the client secret (confidential clients only).
    pub secret_hash: Option<CredentialHash>,
    /// Redirect URIs for the authorization endpoint, matched exactly.
    pub redirect_uris: Vec<RedirectUri>,
    /// Where the end-session endpoint may send the browser after logout, matched exactly.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Resource indicators (RFC 8707) this client may request access tokens for (the access
    /// token's `aud`). The first is used when a request names none; with none registered, the
    /// client gets tokens for the IdP's userinfo endpoint only.
    pub allowed_resources: Vec<String>,
    /// Scopes this client may request beyond the built-in `openid`, `profile`, `offline_access`.
    pub extra_scopes: Vec<String>,
    /// Web origins (`scheme://host[:port]`) allowed to call the IdP's browser endpoints and the
    /// userinfo endpoint from script (CORS). Browser clients only.
    pub web_origins: Vec<WebOrigin>,
    /// Where the IdP sends a logout token when a session the client had tokens in ends
    /// (OpenID Connect Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_uri: Option<RedirectUri>,
    /// This client's overrides of the global session policy (see [`ClientPolicy`]).
    pub policy: ClientPolicy,
    /// When the client was registered (Unix seconds).
    pub created_at: UnixTime,
}

/// A web origin (RFC 6454): `https://host[:port]`, or `http://` for loopback hosts and
/// `*.localhost` (local development). Stored in its ASCII serialization, compared exactly with
/// the `Origin` request header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct WebOrigin(String);

impl WebOrigin {
    /// Parses an origin; a path, query or fragment is an error.
    pub fn parse(value: &str) -> Result<Self, InvalidRedirectUri> {
        let url = Url::parse(value).map_err(|_| InvalidRedirectUri::NotAbsolute)?;
        let bare = (url.path() == "/" || url.path().is_empty())
            && url.query().is_none()
            && url.fragment().is_none();
        if !bare || !value.starts_with(url.scheme()) || value.ends_with('/') {
            return Err(InvalidRedirectUri::NotAbsolute);
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&url) => {}
            _ => return Err(InvalidRedirectUri::InsecureHttp),
        }
        Ok(Self(url.origin().ascii_serialization()))
    }

    /// The origin of a redirect URI (for clients that register no origins explicitly).
    pub fn of(uri: &RedirectUri) -> Option<Self> {
        let url = Url::parse(uri.as_str()).ok()?;
        match url.origin() {
            url::Origin::Tuple(..) => Self::parse(&url.origin().ascii_serialization()).ok(),
            url::Origin::Opaque(_) => None,
        }
    }

    /// The serialized origin.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Client {
    /// Whether script on `origin` may call the IdP for this client.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.web_origins.iter().any(|o| o.as_str() == origin)
    }

    /// Finds the registered redirect URI that `requested` matches.
    pub fn redirect_uri_matching(&self, requested: &str) -> Option<&RedirectUri> {
        self.redirect_uris.iter().find(|r| r.matches(requested))
    }

    /// Whether `requested` is a registered post-logout redirect URI (exact match).
    pub fn allows_post_logout_redirect(&self, requested: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|r| r.as_str() == requested)
    }

    /// Checks a presented client secret in constant time. Public clients never match.
    pub fn secret_matches(&self, presented: &Credential) -> bool {
        self.secret_hash
            .as_ref()
            .is_some_and(|stored| stored.matches(&presented.hash()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_https_or_loopback_without_fragment() {
        assert!(RedirectUri::parse("https://app.example/cb").is_ok());
        assert!(RedirectUri::parse("http://127.0.0.1:9000/cb").is_ok());
        assert!(RedirectUri::parse("http://localhost/cb").is_ok());
        assert!(RedirectUri::parse("com.example.app:/cb").is_ok());
        assert_eq!(
            RedirectUri::parse("http://app.example/cb"),
            Err(InvalidRedirectUri::InsecureHttp)
        );
        assert_eq!(
            RedirectUri::parse("https://app.example/cb#x"),
            Err(InvalidRedirectUri::HasFragment)
        );
        assert_eq!(
            RedirectUri::parse("/relative"),
            Err(InvalidRedirectUri::NotAbsolute)
        );
        assert_eq!(
            RedirectUri::parse("javascript:alert(1)"),
            Err(InvalidRedirectUri::InsecureHttp)
        );
        // The URL parser would drop or escape these; the text as given is what is stored.
        for bad in [
            "https://app.example/c\0b",
            "https://app.example/c b",
            "\thttps://app.example/cb",
            "https://app.example/cb\n",
            "https://app.example/\u{7f}",
        ] {
            assert_eq!(
                RedirectUri::parse(bad),
                Err(InvalidRedirectUri::BadCharacters),
                "{bad:?}"
            );
        }
        assert!(!crate::scope::is_valid_resource("https://api.example/\0"));
        assert!(crate::scope::is_valid_resource("https://api.example/v1"));
    }

    #[test]
    fn matching_is_exact_except_the_loopback_port() {
        let https = RedirectUri::parse("https://app.example/cb").unwrap();
        assert!(https.matches("https://app.example/cb"));
        assert!(!https.matches("https://app.example/cb/"));
        assert!(!https.matches("https://app.example/cb?x=1"));
        assert!(!https.matches("https://APP.example/cb"));
        assert!(!https.matches("https://app.example:443/cb"));

        // Registered without a port: a native app's loopback redirect, any port (RFC 8252 §7.3).
        let loopback = RedirectUri::parse("http://127.0.0.1/cb").unwrap();
        assert!(loopback.matches("http://127.0.0.1:51234/cb"));
        assert!(loopback.matches("http://127.0.0.1/cb"));
        for near_miss in [
            "http://127.0.0.1:51234/other",
            "http://127.0.0.2:51234/cb",
            "https://127.0.0.1:51234/cb",
            "HTTP://127.0.0.1:51234/cb",
            "http://127.1:51234/cb",
            "http://0x7f000001:51234/cb",
            "http://127.0.0.1.:51234/cb",
            "http://127.0.0.1:051234/cb",
            "http://127.0.0.1:99999/cb",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:51234/x/../cb",
            " http://127.0.0.1:51234/cb",
            "http://127.0.0.1:51234/cb#f",
        ] {
            assert!(!loopback.matches(near_miss), "{near_miss}");
        }
        let ipv6 = RedirectUri::parse("http://[::1]/cb").unwrap();
        assert!(ipv6.matches("http://[::1]:4000/cb"));

        // Registered with a port: exact, like any other URI.
        let with_port = RedirectUri::parse("http://127.0.0.1:9000/cb").unwrap();
        assert!(!with_port.matches("http://127.0.0.1:9001/cb"));
        let localhost = RedirectUri::parse("http://localhost:8000/cb").unwrap();
        assert!(!localhost.matches("http://localhost:8001/cb"));
    }
}
