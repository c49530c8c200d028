//! The admin API, protected by its own credential: an operator-chosen admin token (setting
//! `admin_token`, only its SHA-256 is kept in memory), sent as `Authorization: Bearer`. Without
//! the setting the admin API is off and answers 404.
//!
//! - `GET /admin/sessions[?user=USERNAME]`: active sessions (JSON).
//! - `POST /admin/sessions/revoke` with `sid=…` or `user=USERNAME`: ends them (published on the
//!   revocation feed, audited as `admin_revoked`).
//! - `GET /admin/audit[?user=USERNAME&session=SID&kind=KIND&since=UNIX&until=UNIX&limit=N]`:
//!   audit events (JSON), oldest first.
//! - `GET /admin/backchannel`: back-channel logouts not delivered yet, pending or given up
//!   (JSON `{"deliveries": [...]}`, oldest first; the fields of `ostiary backchannel list`).
//! - `POST /admin/keys/rotate` with `immediately=true` (and optionally `end_sessions=true`):
//!   rotates the signing keys (`ostiary keys rotate [--immediately [--end-sessions]]`); JSON
//!   `{"keys": [...], "withdrawn": [kid, ...], "sessions_ended": N}`, audited with actor
//!   `admin_api` and the request's origin. An emergency rotation withdraws every existing key
//!   at once (see `ostiary_core::signing`).
//! - `POST /admin/users/unlock` with `user=USERNAME`: clears the user's failed-login counters
//!   (`ostiary user unlock`; JSON `{"cleared": N}`), audited as `login_counters_cleared` by
//!   `admin_api`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use ostiary_core::audit::{AuditFilter, AuditKind};
use ostiary_core::idp::EndWhich;
use ostiary_core::session::EndReason;
use ostiary_core::signing::{KeyRotation, Operator};
use ostiary_core::user::Username;
use serde_json::json;

use crate::AppState;
use crate::endpoints::Caller;
use crate::error::TokenEndpointError;
use crate::params::{FormBody, Params};

/// The response refusing a request without the admin token; `None` when it has it.
fn refusal(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    super::bearer_refusal(state.admin_token.as_ref(), headers)
}

async fn user_id(state: &AppState, name: &str) -> Result<String, TokenEndpointError> {
    let username =
        Username::parse(name).map_err(|e| TokenEndpointError::invalid_request(e.to_string()))?;
    match state
        .idp
        .store()
        .find_user_by_username(&username)
        .await
        .map_err(ostiary_core::IdpError::from)?
    {
        Some(user) => Ok(user.id),
        None => Err(TokenEndpointError::invalid_request(format!(
            "no user {name}"
        ))),
    }
}

/// `GET /admin/sessions`.
pub async fn sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(refusal) = refusal(&state, &headers) {
        return refusal;
    }
    let result = async {
        let params = Params::from_query(query.as_deref())?;
        let user = match params.get("user") {
            Some(name) => Some(user_id(&state, name).await?),
            None => None,
        };
        let sessions: Vec<_> = state
            .idp
            .active_sessions(user.as_deref())
            .await?
            .into_iter()
            .map(|(s, clients)| {
                json!({
                    "sid": s.sid, "user_id": s.user_id, "created_at": s.created_at, "last_used_at": s.last_used_at,
                    "ip": s.ip, "user_agent": s.user_agent, "clients": clients,
                })
            })
            .collect();
        Ok::<_, TokenEndpointError>(Json(json!({"sessions": sessions})).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/sessions/revoke`.
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: FormBody) -> Response {
    if let Some(refusal) = refusal(&state, &headers) {
        return refusal;
    }
    let result = async {
        let params = Params::from_form(&headers, &body)?;
        let ended = match (params.get("sid"), params.get("user")) {
            (Some(sid), None) => match state
                .idp
                .store()
                .find_session(sid)
                .await
                .map_err(ostiary_core::IdpError::from)?
            {
                Some(session) => {
                    state
                        .idp
                        .end_sessions(
                            &session.user_id,
                            EndWhich::One(sid),
                            EndReason::AdminRevoked,
                        )
                        .await?
                }
                None => Vec::new(),
            },
            (None, Some(name)) => {
                let id = user_id(&state, name).await?;
                state
                    .idp
                    .end_sessions(&id, EndWhich::All, EndReason::AdminRevoked)
                    .await?
            }
            (Some(_), Some(_)) => {
                return Err(TokenEndpointError::invalid_request(
                    "send sid or user, not both",
                ));
            }
            (None, None) => {
                return Err(TokenEndpointError::invalid_request(
                    "send sid (one session) or user (all of a user's sessions)",
                ));
            }
        };
        Ok::<_, TokenEndpointError>(Json(json!({"ended": ended})).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/keys/rotate`.
pub async fn rotate_keys(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: FormBody,
) -> Response {
    if let Some(refusal) = refusal(&state, &headers) {
        return refusal;
    }
    let result = async {
        let params = Params::from_form(&headers, &body)?;
        let flag = |name: &str| -> Result<bool, TokenEndpointError> {
            match params.get(name) {
                None | Some("false") => Ok(false),
                Some("true") => Ok(true),
                Some(_) => Err(TokenEndpointError::invalid_request(format!(
                    "{name} must be true or false"
                ))),
            }
        };
        let rotation = KeyRotation {
            immediately: flag("immediately")?,
            end_sessions: flag("end_sessions")?,
        };
        if rotation.end_sessions && !rotation.immediately {
            return Err(TokenEndpointError::invalid_request(
                "end_sessions goes with immediately=true",
            ));
        }
        let outcome = state
            .idp
            .rotate_keys(
                rotation,
                Operator {
                    actor: "admin_api",
                    origin: Some(&caller),
                },
            )
            .await?;
        Ok::<_, TokenEndpointError>(Json(json!(outcome)).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/users/unlock`.
pub async fn unlock(State(state): State<AppState>, headers: HeaderMap, body: FormBody) -> Response {
    if let Some(refusal) = refusal(&state, &headers) {
        return refusal;
    }
    let result = async {
        let params = Params::from_form(&headers, &body)?;
        let name = params
            .get("user")
            .ok_or_else(|| TokenEndpointError::invalid_request("user is required"))?;
        let username = Username::parse(name)
            .map_err(|e| TokenEndpointError::invalid_request(e.to_string()))?;
        let cleared = state.idp.unlock_user(&username, "admin_api").await?;
        Ok::<_, TokenEndpointError>(Json(json!({"cleared": cleared})).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /admin/audit`.
pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(refusal) = refusal(&state, &headers) {
        return refusal;
    }
    let result = async {
        let params = Params::from_query(query.as_deref())?;
        let number = |name: &str| -> Result<Option<i64>, TokenEndpointError> {
            params
                .get(name)
                .map(|v| {
                    v.parse::<i64>().map_err(|_| {
                        TokenEndpointError::invalid_request(format!("{name} must be an integer"))
                    })
                })
                .transpose()
        };
        let kind =
            match params.get("kind") {
                Some(k) => Some(AuditKind::parse(k).ok_or_else(|| {
                    TokenEndpointError::invalid_request(format!("unknown kind {k}"))
                })?),
                None => None,
            };
        let user = match params.get("user") {
            Some(name) => Some(user_id(&state, name).await?),
            None => None,
        };
        let limit = number("limit")?.map(|n| u32::try_from(n.clamp(1, 10_000)).unwrap_or(1000));
        let filter = AuditFilter {
            user_id: user,
            sid: params.get("session").map(str::to_owned),
            kind,
            since: number("since")?,
            until: number("until")?,
            limit,
        };
        let events = state.idp.audit_events(&filter).await?;
        Ok::<_, TokenEndpointError>(Json(json!({"events": events})).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /admin/backchannel`.
pub async fn backchannel(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refusal(&state, &headers) {
        return refusal;
    }
    match state.idp.undelivered_backchannel_logouts().await {
        Ok(deliveries) => Json(json!({"deliveries": deliveries})).into_response(),
        Err(e) => TokenEndpointError::from(e).into_response(),
    }
}
