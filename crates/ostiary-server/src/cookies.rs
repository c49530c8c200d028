//! The IdP's browser cookies.
//!
//! - The **session cookie** holds the opaque browser-session credential (only its hash is
//!   stored). `SameSite=Lax`, so that a top-level navigation from a client's site to the
//!   authorization endpoint carries it (single sign-on needs that); cross-site sub-requests
//!   and POSTs never carry it.
//! - The **CSRF cookie** holds a random token that forms must echo (double-submit), with
//!   `SameSite=Strict`.
//! - A **refresh cookie** per browser client holds that client's refresh token, with
//!   `SameSite=Strict` and a `Max-Age` no longer than the session's remaining absolute
//!   lifetime. Script on the app's origin can never read it: it is `HttpOnly` and it lives on
//!   the IdP's origin.
//!
//! All are `HttpOnly`, `Path=/`, without `Domain`, and `Secure` with the `__Host-` prefix,
//! which pins them to this exact host. Browsers accept `Secure` cookies on `http://localhost`,
//! `http://*.localhost` and `http://127.0.0.1` (potentially trustworthy origins), so local
//! development in a browser needs no relaxation. Only non-browser clients speaking plain HTTP
//! may need the loudly named development setting `dangerous_insecure_cookies`, which drops
//! `Secure` and the prefix ([`CookiePolicy::dangerous_insecure`]).

use cookie::time::Duration;
use cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue, header};

/// How cookies are written, decided once at start-up.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    secure: bool,
}

/// Lifetime of the CSRF cookie, seconds.
const CSRF_MAX_AGE: i64 = 3600;

impl CookiePolicy {
    /// `Secure`, `__Host-`-prefixed cookies: the production setting, and the default.
    pub fn secure() -> Self {
        Self { secure: true }
    }

    /// Cookies without `Secure` and without the `__Host-` prefix. Development with plain-HTTP,
    /// non-browser clients only.
    pub fn dangerous_insecure() -> Self {
        Self { secure: false }
    }

    fn name(&self, base: &str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    /// Name of the browser-session cookie.
    pub fn session_name(&self) -> String {
        self.name("ostiary_session")
    }

    /// Name of the CSRF cookie.
    pub fn csrf_name(&self) -> String {
        self.name("ostiary_csrf")
    }

    /// Name of a browser client's refresh cookie. A hash of the client id keeps the name a
    /// valid cookie token whatever characters the id has.
    pub fn refresh_name(&self, client_id: &str) -> String {
        let hash = ostiary_core::secret::CredentialHash::of(client_id.as_bytes());
        self.name(&format!("ostiary_refresh_{}", &hash.as_str()[..16]))
    }

    fn build(&self, name: String, value: String, same_site: SameSite, max_age: i64) -> HeaderValue {
        let cookie = Cookie::build((name, value))
            .http_only(true)
            .secure(self.secure)
            .same_site(same_site)
            .path("/")
            .max_age(Duration::seconds(max_age.max(0)))
            .build();
        // Names and values we build are base64url tokens: always a valid header value.
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

    /// `Set-Cookie` for a browser client's refresh token, living `max_age` seconds.
    pub fn refresh(&self, client_id: &str, value: &str, max_age: i64) -> HeaderValue {
        self.build(
            self.refresh_name(client_id),
            value.to_owned(),
            SameSite::Strict,
            max_age,
        )
    }

    /// `Set-Cookie` that deletes a browser client's refresh cookie.
    pub fn clear_refresh(&self, client_id: &str) -> HeaderValue {
        self.build(
            self.refresh_name(client_id),
            String::new(),
            SameSite::Strict,
            0,
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
    fn cookies_use_the_host_prefix_and_all_attributes_by_default() {
        let policy = CookiePolicy::secure();
        let text = policy.session("abc", 60).to_str().unwrap().to_owned();
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
        let refresh = policy
            .refresh("my:app", "rt", 30)
            .to_str()
            .unwrap()
            .to_owned();
        assert!(refresh.starts_with("__Host-ostiary_refresh_"), "{refresh}");
        for attribute in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=30",
        ] {
            assert!(refresh.contains(attribute), "{refresh} lacks {attribute}");
        }
        assert_ne!(policy.refresh_name("a"), policy.refresh_name("b"));
    }

    #[test]
    fn the_dangerous_policy_drops_secure_and_the_prefix() {
        let text = CookiePolicy::dangerous_insecure()
            .session("abc", 60)
            .to_str()
            .unwrap()
            .to_owned();
        assert!(text.starts_with("ostiary_session=abc"));
        assert!(!text.contains("Secure"));
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
