//! The token endpoint (RFC 6749 §3.2, §4.1.3, §6) and the revocation endpoint (RFC 7009).
//!
//! Client authentication (RFC 6749 §2.3.1): `client_secret_basic` (HTTP Basic with the
//! form-urlencoded id and secret), `client_secret_post` (`client_id` and `client_secret` in the
//! body), or `none` for public clients (`client_id` only; PKCE protects the code). Using two
//! methods at once is an error.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, StatusCode, header};
use ostiary_core::client::{Client, ClientKind};
use ostiary_core::idp::{CodeExchange, TokenResponse};
use ostiary_core::scope::Scope;
use ostiary_core::secret::Credential;
use serde_json::json;

use crate::AppState;
use crate::endpoints::{Caller, dpop_proof, recorded, with_dpop_nonce};
use crate::error::{TokenEndpointError, no_store_headers};
use crate::params::{FormBody, Params};

/// The client's claimed identity and secret, from whichever method it used.
fn client_credentials(
    headers: &HeaderMap,
    params: &Params,
) -> Result<(String, Option<Credential>), TokenEndpointError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .map(|value| {
            let text = value
                .to_str()
                .map_err(|_| ostiary_core::IdpError::InvalidClient)?;
            let (scheme, encoded) = text
                .split_once(' ')
                .ok_or(ostiary_core::IdpError::InvalidClient)?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(ostiary_core::IdpError::InvalidClient);
            }
            let decoded = STANDARD
                .decode(encoded.trim())
                .map_err(|_| ostiary_core::IdpError::InvalidClient)?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| ostiary_core::IdpError::InvalidClient)?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or(ostiary_core::IdpError::InvalidClient)?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded, with the same strictness as
            // every other parameter (malformed credentials authenticate nobody).
            let unescape = |s: &str| {
                crate::params::decode_component(s)
                    .map_err(|_| ostiary_core::IdpError::InvalidClient)
            };
            Ok((unescape(id)?, unescape(secret)?))
        })
        .transpose()?;
    match basic {
        Some((id, secret)) => {
            if params.has("client_secret") {
                return Err(TokenEndpointError::invalid_request(
                    "use one client authentication method, not two",
                ));
            }
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(TokenEndpointError::invalid_request(
                    "client_id differs from the Authorization header",
                ));
            }
            Ok((id, Some(Credential::from_presented(&secret))))
        }
        None => {
            let id = params
                .get("client_id")
                .ok_or(ostiary_core::IdpError::InvalidClient)?;
            Ok((
                id.to_owned(),
                params.get("client_secret").map(Credential::from_presented),
            ))
        }
    }
}

async fn authenticated_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client, TokenEndpointError> {
    let (client_id, secret) = client_credentials(headers, params)?;
    Ok(state
        .idp
        .authenticate_client(&client_id, secret.as_ref())
        .await?)
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, TokenEndpointError> {
    params
        .get(name)
        .ok_or_else(|| TokenEndpointError::invalid_request(format!("{name} is required")))
}

fn token_response(tokens: TokenResponse) -> Response {
    let mut body = json!({
        "access_token": tokens.access_token,
        "token_type": token_type(&tokens),
        "expires_in": tokens.expires_in,
        "scope": tokens.scope.to_string(),
    });
    if let Some(refresh_token) = &tokens.refresh_token {
        body["refresh_token"] = json!(refresh_token.expose());
    }
    if let Some(id_token) = tokens.id_token {
        body["id_token"] = json!(id_token);
    }
    (StatusCode::OK, no_store_headers(), Json(body)).into_response()
}

/// `DPoP` for a token bound to a key (RFC 9449 §5), `Bearer` otherwise.
pub fn token_type(tokens: &TokenResponse) -> &'static str {
    if tokens.dpop.is_some() {
        "DPoP"
    } else {
        "Bearer"
    }
}

/// `POST /token`. With a `DPoP` header (RFC 9449 §5), the proof is checked first and the
/// tokens are bound to its key; the answer carries the current `DPoP-Nonce` (§8).
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Caller(caller): Caller,
    body: FormBody,
) -> Response {
    let response = match grant(&state, &headers, &caller, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    with_dpop_nonce(&state, &headers, response)
}

async fn grant(
    state: &AppState,
    headers: &HeaderMap,
    caller: &ostiary_core::idp::LoginContext,
    body: &FormBody,
) -> Result<Response, TokenEndpointError> {
    let params = Params::from_form(headers, body)?;
    let client = authenticated_client(state, headers, &params).await?;
    if client.kind == ClientKind::Browser {
        // Its refresh token must never be in a response body: the browser endpoints keep it
        // in a cookie.
        return Err(TokenEndpointError::unauthorized_client(
            "browser clients use the browser token endpoint (/browser/token)",
        ));
    }
    let proof = dpop_proof(state, headers, "POST", "/token", None)?;
    let tokens = match params.get("grant_type") {
        Some("authorization_code") => {
            let dpop = recorded(state, proof).await?;
            let dpop = dpop.as_ref();
            let code = required(&params, "code")?;
            let redirect_uri = required(&params, "redirect_uri")?;
            let verifier = required(&params, "code_verifier")?;
            let request = CodeExchange {
                code,
                redirect_uri,
                code_verifier: verifier,
                resource: params.get("resource"),
                caller,
                dpop,
            };
            state.idp.exchange_code(&client, request).await?
        }
        Some("refresh_token") => {
            let refresh_token = required(&params, "refresh_token")?;
            let scope = params
                .get("scope")
                .map(Scope::parse)
                .transpose()
                .map_err(|e| ostiary_core::IdpError::InvalidScope(e.to_string()))?;
            state
                .idp
                .refresh(
                    &client,
                    refresh_token,
                    scope,
                    params.get("resource"),
                    caller,
                    proof,
                )
                .await?
        }
        Some(_) => return Err(TokenEndpointError::unsupported_grant_type()),
        None => {
            return Err(TokenEndpointError::invalid_request(
                "grant_type is required",
            ));
        }
    };
    Ok(token_response(tokens))
}

/// `POST /revoke` (RFC 7009 §2): answers 200 whether or not the token was known.
pub async fn revoke(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: FormBody,
) -> Result<Response, TokenEndpointError> {
    let params = Params::from_form(&headers, &body)?;
    let client = authenticated_client(&state, &headers, &params).await?;
    let token = required(&params, "token")?;
    // token_type_hint is optional and only a hint (RFC 7009 §2.1): both kinds are tried.
    state.idp.revoke(&client, token, &caller).await?;
    Ok((StatusCode::OK, no_store_headers()).into_response())
}

/// `POST /introspect` (RFC 7662 §2): for confidential clients (resource servers). An active
/// access token gets its claims; anything else gets `{"active": false}` and nothing more.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: FormBody,
) -> Result<Response, TokenEndpointError> {
    let params = Params::from_form(&headers, &body)?;
    let client = authenticated_client(&state, &headers, &params).await?;
    let token = required(&params, "token")?;
    let body = match state.idp.introspect(&client, token).await? {
        Some((claims, user)) => json!({
            "active": true,
            "token_type": if claims.cnf.is_some() { "DPoP" } else { "Bearer" },
            "cnf": claims.cnf,
            "scope": claims.scope,
            "client_id": claims.client_id,
            "username": user.username,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "jti": claims.jti,
            "sid": claims.sid,
        }),
        None => json!({"active": false}),
    };
    Ok((StatusCode::OK, no_store_headers(), Json(body)).into_response())
}
