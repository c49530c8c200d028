//! The IdP's browser cookies.
//!
//! - The **session cookie** holds the opaque browser-session credential (only its hash is
//!   stored). `HttpOnly`, `Path=/`, no `Domain`, `SameSite=Lax` (so that a top-level
//!   navigation from a client's site to the authorization endpoint carries it: single sign-on
//!   needs that; cross-site sub-requests and POSTs never carry it).
//! - The **CSRF cookie** holds a random token that forms must echo (double-submit), with
//!   `SameSite=Strict`.
//!
//! Over HTTPS both get `Secure` and the `__Host-` prefix, which pins them to this exact host.
//! A `__Host-` cookie without `Secure` is rejected by browsers and plain-HTTP clients do not
//! send `Secure` cookies, so when the issuer is `http://` (local development only) both are
//! dropped and the names lose the prefix.

use cookie::time::Duration;
use cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue, header};

/// How cookies are written, decided once from the issuer's scheme.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    secure: bool,
}

/// Lifetime of the CSRF cookie, seconds.
const CSRF_MAX_AGE: i64 = 3600;

impl CookiePolicy {
    /// `secure` when the issuer is served over HTTPS.
    pub fn new(secure: bool) -> Self {
        Self { secure }
    }

    /// Name of the browser-session cookie.
    pub fn session_name(&self) -> &'static str {
        if self.secure {
            "__Host-ostiary_session"
        } else {
            "ostiary_session"
        }
    }

    /// Name of the CSRF cookie.
    pub fn csrf_name(&self) -> &'static str {
        if self.secure {
            "__Host-ostiary_csrf"
        } else {
            "ostiary_csrf"
        }
    }

    fn build(
        &self,
        name: &'static str,
        value: String,
        same_site: SameSite,
        max_age: i64,
    ) -> HeaderValue {
        let cookie = Cookie::build((name, value))
            .http_only(true)
            .secure(self.secure)
            .same_site(same_site)
            .path("/")
            .max_age(Duration::seconds(max_age.max(0)))
            .build();
        // Cookie values we build are base64url: always a valid header value.
        HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// `Set-Cookie` for a new browser session, living at most `max_age` seconds.
    pub fn session(&self, value: &str, max_age: i64) -> HeaderValue {
        self.build(
            self.session_name(),
            value.to_owned(),
            SameSite::Lax,
            max_age,
        )
    }

    /// `Set-Cookie` that deletes the browser-session cookie.
    pub fn clear_session(&self) -> HeaderValue {
        self.build(self.session_name(), String::new(), SameSite::Lax, 0)
    }

    /// `Set-Cookie` for a CSRF token.
    pub fn csrf(&self, value: &str) -> HeaderValue {
        self.build(
            self.csrf_name(),
            value.to_owned(),
            SameSite::Strict,
            CSRF_MAX_AGE,
        )
    }
}

/// The value of the first cookie called `name` in the request's `Cookie` headers.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()))
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_cookies_use_the_host_prefix_and_all_attributes() {
        let policy = CookiePolicy::new(true);
        let set = policy.session("abc", 60);
        let text = set.to_str().unwrap();
        assert!(text.starts_with("__Host-ostiary_session=abc"));
        for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(text.contains(attribute), "{text} lacks {attribute}");
        }
        assert!(!text.contains("Domain"));
        assert!(
            policy
                .csrf("x")
                .to_str()
                .unwrap()
                .contains("SameSite=Strict")
        );
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; ostiary_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(read(&headers, "ostiary_session").as_deref(), Some("xyz"));
        assert_eq!(read(&headers, "ostiary"), None);
    }
}
