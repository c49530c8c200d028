//! The userinfo endpoint (OIDC Core §5.3), protected by a bearer access token (RFC 6750 §2.1).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};

use crate::AppState;
use crate::error::{BearerError, no_store_headers};

fn bearer(headers: &HeaderMap) -> Result<&str, BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(BearerError::missing());
    };
    let text = value
        .to_str()
        .map_err(|_| ostiary_core::IdpError::InvalidToken)?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(BearerError::missing()),
    }
}

async fn userinfo(state: &AppState, headers: &HeaderMap) -> Result<Response, BearerError> {
    let token = bearer(headers)?;
    let info = state.idp.userinfo(token).await?;
    Ok((no_store_headers(), Json(info)).into_response())
}

/// `GET /userinfo`.
pub async fn userinfo_get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, BearerError> {
    userinfo(&state, &headers).await
}

/// `POST /userinfo` (OIDC Core §5.3.1 allows both methods).
pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, BearerError> {
    userinfo(&state, &headers).await
}
