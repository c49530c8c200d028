//! The userinfo endpoint (OIDC Core §5.3), protected by an access token: a bearer token
//! (RFC 6750 §2.1), or a DPoP-bound one with `Authorization: DPoP` and a proof whose `ath` is
//! the token's hash (RFC 9449 §7). A bound token is never accepted as a bearer token.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};

use ostiary_core::IdpError;

use crate::AppState;
use crate::endpoints::dpop_key;
use crate::error::{BearerError, no_store_headers};

/// The access token and whether it came with the `DPoP` scheme (RFC 9449 §7.1) rather than
/// `Bearer` (RFC 6750 §2.1).
fn access_token(headers: &HeaderMap) -> Result<(&str, bool), BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(BearerError::missing());
    };
    let text = value
        .to_str()
        .map_err(|_| ostiary_core::IdpError::InvalidToken)?;
    match text.split_once(' ') {
        Some((scheme, token)) if !token.trim().is_empty() => {
            if scheme.eq_ignore_ascii_case("bearer") {
                Ok((token.trim(), false))
            } else if scheme.eq_ignore_ascii_case("dpop") {
                Ok((token.trim(), true))
            } else {
                Err(BearerError::missing())
            }
        }
        _ => Err(BearerError::missing()),
    }
}

/// Answers the request, or its error with the `DPoP` challenge naming the algorithms this
/// IdP's proof policy accepts (RFC 9449 §7.1).
async fn userinfo(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
) -> Result<Response, BearerError> {
    answer(state, headers, method)
        .await
        .map_err(|e| e.with_dpop_policy(&state.idp.dpop_policy()))
}

async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
) -> Result<Response, BearerError> {
    let (token, dpop_scheme) = access_token(headers)?;
    let info = if dpop_scheme {
        let key = dpop_key(state, headers, method, "/userinfo", Some(token))
            .await
            .map_err(BearerError::dpop)?
            .ok_or_else(|| {
                BearerError::dpop(IdpError::InvalidDpopProof(
                    "the DPoP scheme needs a DPoP proof header".into(),
                ))
            })?;
        state
            .idp
            .userinfo(token, Some(&key))
            .await
            .map_err(BearerError::dpop)?
    } else {
        state.idp.userinfo(token, None).await?
    };
    Ok((no_store_headers(), Json(info)).into_response())
}

/// `GET /userinfo`.
pub async fn userinfo_get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, BearerError> {
    userinfo(&state, &headers, "GET").await
}

/// `POST /userinfo` (OIDC Core §5.3.1 allows both methods).
pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, BearerError> {
    userinfo(&state, &headers, "POST").await
}
