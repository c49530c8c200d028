//! The one place where domain errors become HTTP responses.
//!
//! - [`TokenEndpointError`]: JSON per RFC 6749 §5.2 (token and revocation endpoints).
//! - [`BearerError`]: `WWW-Authenticate: Bearer` per RFC 6750 §3 (userinfo).
//! - [`PageError`]: a readable HTML page, for browsers (authorization, login, logout).
//!
//! Internal failures are logged with their cause and answered with a generic body.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use ostiary_core::IdpError;

use crate::html;
use crate::params::ParamsError;

/// The OAuth error code and HTTP status for a domain error (RFC 6749 §4.1.2.1, §5.2; RFC 6750
/// §3.1; RFC 8707 §2).
pub fn oauth_error(e: &IdpError) -> (StatusCode, &'static str) {
    match e {
        IdpError::InvalidClient => (StatusCode::UNAUTHORIZED, "invalid_client"),
        IdpError::InvalidGrant(_) => (StatusCode::BAD_REQUEST, "invalid_grant"),
        IdpError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        // RFC 9449 §5 at the token endpoint; a resource (userinfo) answers 401 (§7.1).
        IdpError::InvalidDpopProof(_) => (StatusCode::BAD_REQUEST, "invalid_dpop_proof"),
        IdpError::UseDpopNonce { .. } => (StatusCode::BAD_REQUEST, "use_dpop_nonce"),
        IdpError::InvalidScope(_) => (StatusCode::BAD_REQUEST, "invalid_scope"),
        IdpError::InvalidTarget(_) => (StatusCode::BAD_REQUEST, "invalid_target"),
        IdpError::UnsupportedResponseType => (StatusCode::BAD_REQUEST, "unsupported_response_type"),
        IdpError::InvalidCredentials { .. } => (StatusCode::UNAUTHORIZED, "access_denied"),
        IdpError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable"),
        IdpError::SessionLimit(_) => (StatusCode::FORBIDDEN, "access_denied"),
        IdpError::ClientSessionLimit(_) => (StatusCode::BAD_REQUEST, "invalid_grant"),
        IdpError::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
        IdpError::InsufficientScope(_) => (StatusCode::FORBIDDEN, "insufficient_scope"),
        IdpError::Rejected(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        // Text that cannot be stored is the request's fault.
        IdpError::Store(ostiary_core::StoreError::InvalidInput(_)) => {
            (StatusCode::BAD_REQUEST, "invalid_request")
        }
        // The database is down or overloaded: try again later (the cause is logged).
        IdpError::Store(ostiary_core::StoreError::Unavailable(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    }
}

/// A description that is safe to send: the error's own text for client errors, a generic one
/// for internal failures (whose cause is logged instead).
fn public_description(e: &IdpError, status: StatusCode) -> String {
    if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(error = %e, "storage unavailable");
        "the service is temporarily unavailable; try again later".to_owned()
    } else if status.is_server_error() {
        tracing::error!(error = %e, "internal error");
        "the server could not complete the request".to_owned()
    } else {
        e.to_string()
    }
}

/// An error at the token or revocation endpoint (RFC 6749 §5.2).
#[derive(Debug)]
pub struct TokenEndpointError {
    status: StatusCode,
    code: &'static str,
    description: String,
    /// The `DPoP-Nonce` to send with a `use_dpop_nonce` error (RFC 9449 §8).
    dpop_nonce: Option<String>,
}

impl TokenEndpointError {
    /// `unauthorized_client` (RFC 6749 §5.2): this client may not use this endpoint or grant.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "unauthorized_client",
            description: description.into(),
            dpop_nonce: None,
        }
    }

    /// `unsupported_grant_type` (RFC 6749 §5.2).
    pub fn unsupported_grant_type() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "unsupported_grant_type",
            description: "grant_type must be authorization_code or refresh_token".into(),
            dpop_nonce: None,
        }
    }

    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            description: description.into(),
            dpop_nonce: None,
        }
    }
}

impl From<IdpError> for TokenEndpointError {
    fn from(e: IdpError) -> Self {
        let (status, code) = oauth_error(&e);
        let dpop_nonce = match &e {
            IdpError::UseDpopNonce { nonce } => nonce.clone(),
            _ => None,
        };
        Self {
            status,
            code,
            description: public_description(&e, status),
            dpop_nonce,
        }
    }
}

impl From<ParamsError> for TokenEndpointError {
    fn from(e: ParamsError) -> Self {
        let status = params_status(&e);
        Self {
            status,
            ..Self::invalid_request(e.to_string())
        }
    }
}

/// 413 for an oversized body, 400 for every other malformed request.
fn params_status(e: &ParamsError) -> StatusCode {
    match e {
        ParamsError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for TokenEndpointError {
    fn into_response(self) -> Response {
        let body =
            Json(serde_json::json!({"error": self.code, "error_description": self.description}));
        let mut response = (self.status, no_store_headers(), body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2: a 401 for invalid_client carries the scheme the client may use.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"ostiary\""),
            );
        }
        if let Some(value) = self.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            response.headers_mut().insert(DPOP_NONCE, value);
        }
        response
    }
}

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
pub const DPOP_NONCE: header::HeaderName = header::HeaderName::from_static("dpop-nonce");

/// `Cache-Control: no-store` and `Pragma: no-cache`, required on responses carrying tokens
/// (RFC 6749 §5.1) and sensible on their errors.
pub fn no_store_headers() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// An error for an endpoint protected by an access token (RFC 6750 §3), presented as a
/// bearer token or DPoP-bound (RFC 9449 §7.1). The response challenges with both schemes
/// (`Bearer` and `DPoP` with its `algs`), the error on the one the request used.
#[derive(Debug)]
pub struct BearerError {
    status: StatusCode,
    code: Option<&'static str>,
    description: String,
    /// Whether the request used the `DPoP` scheme (then the error goes on its challenge).
    dpop: bool,
    /// The `algs` of the `DPoP` challenge; `None`: `ostiary_jose::dpop::DEFAULT_ALGORITHMS`.
    algs: Option<String>,
}

impl BearerError {
    /// No credentials were sent (RFC 6750 §3.1: no error code).
    pub fn missing() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: None,
            description: "a bearer access token is required".into(),
            dpop: false,
            algs: None,
        }
    }

    /// `e`, for a request that used the `DPoP` scheme.
    pub fn dpop(e: IdpError) -> Self {
        Self {
            dpop: true,
            ..Self::from(e)
        }
    }

    /// The same error, its `DPoP` challenge naming the algorithms `policy` accepts.
    #[must_use]
    pub fn with_dpop_policy(self, policy: &ostiary_jose::dpop::ProofPolicy) -> Self {
        Self {
            algs: Some(ostiary_jose::dpop::algs_parameter(&policy.algorithms)),
            ..self
        }
    }
}

impl From<IdpError> for BearerError {
    fn from(e: IdpError) -> Self {
        let (status, code) = oauth_error(&e);
        let (status, code) = match code {
            "insufficient_scope" | "invalid_token" | "server_error" => (status, code),
            // RFC 9449 §7.1: a resource answers a bad proof with 401.
            "invalid_dpop_proof" => (StatusCode::UNAUTHORIZED, code),
            _ => (status, "invalid_request"),
        };
        Self {
            status,
            code: Some(code),
            description: public_description(&e, status),
            dpop: false,
            algs: None,
        }
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let algs = self.algs.unwrap_or_else(|| {
            ostiary_jose::dpop::algs_parameter(&ostiary_jose::dpop::DEFAULT_ALGORITHMS)
        });
        let error = match self.code {
            Some(code) if code != "server_error" => format!(
                ", error=\"{code}\", error_description=\"{}\"",
                self.description.replace(['"', '\\'], "'")
            ),
            _ => String::new(),
        };
        let (bearer_error, dpop_error) = if self.dpop {
            ("", error.as_str())
        } else {
            (error.as_str(), "")
        };
        let challenge =
            format!("Bearer realm=\"ostiary\"{bearer_error}, DPoP algs=\"{algs}\"{dpop_error}");
        let mut response = (
            self.status,
            Json(serde_json::json!({"error": self.code.unwrap_or("invalid_request"), "error_description": self.description})),
        )
            .into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// An error shown to a person in the browser.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: &'static str,
    message: String,
}

impl PageError {
    /// A page with a status, a title and a message (HTML-escaped when rendered).
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
        }
    }

    /// 400 with a title and message.
    pub fn bad_request(title: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, title, message)
    }
}

impl From<IdpError> for PageError {
    fn from(e: IdpError) -> Self {
        let (status, code) = oauth_error(&e);
        let status = if status == StatusCode::UNAUTHORIZED {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        let title = match code {
            "invalid_client" => "Unknown application",
            "server_error" => "Something went wrong",
            _ => "Invalid request",
        };
        let message = match &e {
            IdpError::InvalidClient => {
                "The application that sent you here is not registered.".to_owned()
            }
            _ => public_description(&e, status),
        };
        Self {
            status,
            title,
            message,
        }
    }
}

impl From<ParamsError> for PageError {
    fn from(e: ParamsError) -> Self {
        Self::new(params_status(&e), "Invalid request", e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = format!(
            "<h1>{}</h1><p class=\"error\">{}</p><p>Go back to the application and try again.</p>",
            html::escape(self.title),
            html::escape(&self.message)
        );
        html::page(self.status, self.title, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_a_503_and_corrupt_data_a_500_both_without_details() {
        let down = IdpError::Store(ostiary_core::StoreError::Unavailable(
            "connection refused to db.internal:5432".into(),
        ));
        let (status, code) = oauth_error(&down);
        assert_eq!(
            (status, code),
            (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        );
        assert!(!public_description(&down, status).contains("db.internal"));
        let corrupt = IdpError::Store(ostiary_core::StoreError::Corrupt("row 7".into()));
        let (status, code) = oauth_error(&corrupt);
        assert_eq!(
            (status, code),
            (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
        );
        assert!(!public_description(&corrupt, status).contains("row 7"));
    }
}
