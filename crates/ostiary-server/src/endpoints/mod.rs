//! One module per endpoint.

pub mod account;
pub mod admin;
pub mod authorize;
pub mod browser;
pub mod discovery;
pub mod health;
pub mod home;
pub mod login;
pub mod logout;
pub mod metrics;
pub mod revocations;
pub mod token;
pub mod userinfo;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use ostiary_core::secret::{Credential, CredentialHash};

use crate::error::BearerError;
use crate::proxy::ClientAddr;

/// The client's IP address: the one [`crate::proxy::resolve_client`] decided (the TCP peer,
/// or the address a trusted proxy forwarded), else the TCP peer.
pub fn client_ip(parts: &Parts) -> Option<String> {
    let ip = match parts.extensions.get::<ClientAddr>() {
        Some(client) => client.0,
        None => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()?
            .0
            .ip()
            .to_canonical(),
    };
    Some(ip.to_string())
}

/// The response refusing a request to an API protected by an operator-chosen bearer token
/// (the admin API, the metrics): 404 when the API is off (`expected` is `None`), 401 without
/// the right `Authorization: Bearer` token (compared by SHA-256, in constant time); `None`
/// when the request has it.
pub(crate) fn bearer_refusal(
    expected: Option<&CredentialHash>,
    headers: &HeaderMap,
) -> Option<Response> {
    let Some(expected) = expected else {
        return Some(StatusCode::NOT_FOUND.into_response());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| Credential::from_presented(token.trim()));
    match presented {
        Some(token) if token.hash().matches(expected) => None,
        Some(_) => Some(BearerError::from(ostiary_core::IdpError::InvalidToken).into_response()),
        None => Some(BearerError::missing().into_response()),
    }
}

/// The `User-Agent` header, if it is text.
pub fn user_agent(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Who is calling (client IP and `User-Agent`), for the session record and the audit log.
#[derive(Debug, Clone, Default)]
pub struct Caller(pub ostiary_core::idp::LoginContext);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(ostiary_core::idp::LoginContext {
            user_agent: user_agent(parts),
            ip: client_ip(parts),
        }))
    }
}
