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
pub mod revocations;
pub mod token;
pub mod userinfo;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use http::request::Parts;

/// The client's IP address as seen on the socket (no proxy headers are trusted yet).
pub fn client_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
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
