//! Strict parsing of `application/x-www-form-urlencoded` bodies and query strings.
//!
//! OAuth parameters must not be repeated (RFC 6749 §3.1, §3.2), so a repeated name is an
//! error rather than "first wins" or "last wins". Sizes are bounded: the body by the router's
//! limit, each value by [`MAX_VALUE_BYTES`], the number of parameters by [`MAX_PARAMS`].
//!
//! Only text that can be kept is accepted, for every endpoint at once: percent-encoding must
//! be well formed (`%` and two hex digits; `%zz` or a truncated `%4` is an error, not literal
//! text, as the WHATWG URL standard's lenient decoder would have it), the decoded text must be
//! UTF-8, and it must not contain NUL, which no database text column holds (PostgreSQL refuses
//! it). Every parameter that reaches storage passes through here.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode};

/// Most parameters accepted in one request.
pub const MAX_PARAMS: usize = 64;
/// Longest accepted parameter value, in bytes.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// Why parameters could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// The body is not `application/x-www-form-urlencoded`.
    #[error("the request body must be application/x-www-form-urlencoded")]
    WrongContentType,
    /// A parameter appears more than once.
    #[error("parameter {0} is repeated")]
    Repeated(String),
    /// Too many parameters, or a value too long.
    #[error("too many or too large parameters")]
    TooLarge,
    /// Not valid UTF-8 after percent-decoding.
    #[error("parameters must be UTF-8")]
    NotUtf8,
    /// A `%` not followed by two hexadecimal digits.
    #[error("malformed percent-encoding: every % must be followed by two hexadecimal digits")]
    BadPercentEncoding,
    /// A NUL character (`%00`) in a name or value.
    #[error("parameters must not contain NUL characters")]
    Nul,
    /// The body is larger than the server accepts ([`crate::MAX_BODY_BYTES`]).
    #[error("the request body is too large")]
    BodyTooLarge,
    /// The body could not be read.
    #[error("the request body could not be read")]
    BadBody,
}

/// A request body read up to the size limit, or why it could not be. As an extractor it never
/// rejects, so each endpoint answers an oversized body in its own error format.
#[derive(Debug)]
pub struct FormBody(Result<Bytes, ParamsError>);

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(Bytes::from_request(request, state).await.map_err(
            |rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ParamsError::BodyTooLarge
                } else {
                    ParamsError::BadBody
                }
            },
        )))
    }
}

/// Checks that every `%` in `input` begins a `%XX` escape with two hexadecimal digits.
pub fn check_percent_encoding(input: &[u8]) -> Result<(), ParamsError> {
    let mut rest = input;
    while let Some(at) = rest.iter().position(|&b| b == b'%') {
        match rest.get(at + 1..at + 3) {
            Some([a, b]) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => {
                rest = &rest[at + 3..]
            }
            _ => return Err(ParamsError::BadPercentEncoding),
        }
    }
    Ok(())
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space) with the rules
/// of [`Params::parse`]: well-formed percent-encoding, UTF-8, no NUL. For the parts of HTTP
/// Basic credentials, which RFC 6749 §2.3.1 encodes this way.
pub fn decode_component(input: &str) -> Result<String, ParamsError> {
    check_percent_encoding(input.as_bytes())?;
    let decoded: String = form_urlencoded::parse(format!("v={input}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if decoded.contains('\u{FFFD}') && !input.contains('\u{FFFD}') {
        return Err(ParamsError::NotUtf8);
    }
    if decoded.contains('\0') {
        return Err(ParamsError::Nul);
    }
    Ok(decoded)
}

/// Parameters by name, each present at most once.
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses a urlencoded string (a query string or a form body).
    pub fn parse(input: &[u8]) -> Result<Self, ParamsError> {
        if std::str::from_utf8(input).is_err() {
            return Err(ParamsError::NotUtf8);
        }
        check_percent_encoding(input)?;
        let mut map = HashMap::new();
        for (name, value) in form_urlencoded::parse(input) {
            if value.contains('\u{FFFD}') || name.contains('\u{FFFD}') {
                return Err(ParamsError::NotUtf8);
            }
            if value.contains('\0') || name.contains('\0') {
                return Err(ParamsError::Nul);
            }
            if map.len() >= MAX_PARAMS || value.len() > MAX_VALUE_BYTES {
                return Err(ParamsError::TooLarge);
            }
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(ParamsError::Repeated(name.into_owned()));
            }
        }
        Ok(Self(map))
    }

    /// Parses a form body after checking its `Content-Type`. An empty body is no parameters,
    /// whatever its type (a client that sends none often sends no `Content-Type` either).
    pub fn from_form(headers: &HeaderMap, body: &FormBody) -> Result<Self, ParamsError> {
        let body = body.0.as_ref().map_err(Clone::clone)?;
        if body.is_empty() {
            return Ok(Self::default());
        }
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(ParamsError::WrongContentType);
        }
        Self::parse(body)
    }

    /// Parses an optional raw query string.
    pub fn from_query(query: Option<&str>) -> Result<Self, ParamsError> {
        Self::parse(query.unwrap_or("").as_bytes())
    }

    /// A parameter's value; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether a parameter is present with a non-empty value.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// All parameters, for rebuilding a query string.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_rejected() {
        assert_eq!(
            Params::parse(b"a=1&b=2&a=3").unwrap_err(),
            ParamsError::Repeated("a".into())
        );
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
    }

    #[test]
    fn content_type_must_be_urlencoded() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            Params::from_form(&headers, &FormBody(Ok(Bytes::from_static(b"a=1")))).unwrap_err(),
            ParamsError::WrongContentType
        );
        headers.insert(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=UTF-8"
                .parse()
                .unwrap(),
        );
        assert!(Params::from_form(&headers, &FormBody(Ok(Bytes::from_static(b"a=1")))).is_ok());
        headers.insert(CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(Params::from_form(&headers, &FormBody(Ok(Bytes::from_static(b"{}")))).is_err());
        // Nothing sent is no parameters, whatever the type says.
        let empty = Params::from_form(&HeaderMap::new(), &FormBody(Ok(Bytes::new()))).unwrap();
        assert!(!empty.has("a"));
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        assert_eq!(Params::parse(b"a=%ff").unwrap_err(), ParamsError::NotUtf8);
    }

    #[test]
    fn malformed_percent_encoding_is_an_error_not_literal_text() {
        for bad in [
            &b"a=%zz"[..],
            b"a=%4",
            b"a=%",
            b"a=x%g1",
            b"%zz=1",
            b"a=1&b=%%41",
        ] {
            assert_eq!(
                Params::parse(bad).unwrap_err(),
                ParamsError::BadPercentEncoding,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let good = Params::parse(b"a=%41%2b+b&c=%e2%82%ac").unwrap();
        assert_eq!(good.get("a"), Some("A+ b"));
        assert_eq!(good.get("c"), Some("\u{20ac}"));
        assert_eq!(decode_component("a%3Ab+c").unwrap(), "a:b c");
        assert_eq!(
            decode_component("a%zz"),
            Err(ParamsError::BadPercentEncoding)
        );
        assert_eq!(decode_component("%ff"), Err(ParamsError::NotUtf8));
        assert_eq!(decode_component("a%00"), Err(ParamsError::Nul));
    }

    #[test]
    fn nul_characters_are_rejected_in_names_and_values() {
        for bad in [&b"username=a%00b"[..], b"a%00=1", b"nonce=%00"] {
            assert_eq!(Params::parse(bad).unwrap_err(), ParamsError::Nul);
        }
        // Other control characters are text like any other here (the newtypes decide).
        assert_eq!(Params::parse(b"a=%01").unwrap().get("a"), Some("\u{1}"));
    }
}
