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

use crate::AppState;
use crate::error::BearerError;
use crate::proxy::ClientAddr;
use ostiary_core::IdpError;
use ostiary_core::dpop::{DpopKey, UnrecordedProof};

/// The request's `DPoP` header (RFC 9449 §4.1): none, or exactly one proof.
fn dpop_header(headers: &HeaderMap) -> Result<Option<&str>, IdpError> {
    let mut values = headers.get_all("dpop").iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value.to_str().map(Some).map_err(|_| {
            IdpError::InvalidDpopProof("the DPoP header must be a JWT in ASCII".into())
        }),
        (Some(_), Some(_)) => Err(IdpError::InvalidDpopProof(
            "send one DPoP header, not several".into(),
        )),
    }
}

/// The key of the request's DPoP proof, if it sent one: the proof accepted
/// ([`ostiary_core::Idp::accept_dpop_proof`]) for `method` on this IdP's public URL of
/// `path`, with `access_token` when one is presented with it.
pub async fn dpop_key(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    access_token: Option<&str>,
) -> Result<Option<DpopKey>, IdpError> {
    recorded(
        state,
        dpop_proof(state, headers, method, path, access_token)?,
    )
    .await
}

/// The key of a checked proof, once its `jti` is recorded ([`ostiary_core::Idp::record_dpop_proof`]).
pub async fn recorded(
    state: &AppState,
    proof: Option<UnrecordedProof>,
) -> Result<Option<DpopKey>, IdpError> {
    match proof {
        None => Ok(None),
        Some(proof) => state.idp.record_dpop_proof(proof).await.map(Some),
    }
}

/// The request's DPoP proof, if it sent one, checked ([`ostiary_core::Idp::check_dpop_proof`])
/// but not recorded yet: for the refresh grant, which records it with its rotation.
pub fn dpop_proof(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    access_token: Option<&str>,
) -> Result<Option<UnrecordedProof>, IdpError> {
    dpop_header(headers)?
        .map(|proof| {
            state
                .idp
                .check_dpop_proof(proof, method, &state.url(path), access_token)
        })
        .transpose()
}

/// Adds the current DPoP nonce (RFC 9449 §8.1 `DPoP-Nonce`) to the answer of a request that
/// sent a proof, so that a client whose policy requires nonces always holds a fresh one.
pub fn with_dpop_nonce(state: &AppState, request: &HeaderMap, mut response: Response) -> Response {
    if request.contains_key("dpop")
        && let Some(value) = state
            .idp
            .dpop_nonce()
            .and_then(|n| http::HeaderValue::from_str(&n).ok())
    {
        response
            .headers_mut()
            .insert(crate::error::DPOP_NONCE, value);
    }
    response
}

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
