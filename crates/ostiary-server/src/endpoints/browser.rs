//! The browser endpoints: cookie-held refresh for browser clients (single-page apps).
//!
//! A browser client's refresh token never appears in a response body. The IdP keeps it in an
//! `HttpOnly`, `Secure`, `SameSite=Strict`, `__Host-` cookie on its own origin
//! ([`crate::cookies`]), and the app, running on another origin of the same site, calls:
//!
//! - `POST /browser/token?client_id=…` with `grant_type=authorization_code` (after the
//!   redirect: `code`, `redirect_uri`, `code_verifier`) or `grant_type=refresh_token` (no
//!   token: the cookie is it). The answer is the usual token response without
//!   `refresh_token`, and a new cookie. Rotation, the grace window and reuse detection are the
//!   same state machine as for every client.
//! - `POST /browser/logout?client_id=…`: ends the session the cookie belongs to and clears the
//!   refresh and session cookies.
//!
//! Both need `fetch(url, {method: 'POST', credentials: 'include', headers: {'X-Ostiary-CSRF':
//! '1'}})` from one of the client's registered web origins. Against cross-site request
//! forgery: POST only; the custom header makes every call a CORS "non-simple" request, so a
//! browser asks first (preflight) and an HTML form can never send it; the `Origin` header must
//! be a registered origin of the client; CORS headers are only ever sent to those origins. A
//! request failing any check changes nothing and gets no CORS headers, so the calling page can
//! read nothing of the answer. The `client_id` is in the query so that the preflight, which
//! has no body, can be answered for the right client.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use ostiary_core::IdpError;
use ostiary_core::client::{Client, ClientKind};
use ostiary_core::idp::{CodeExchange, TokenResponse};
use ostiary_core::scope::Scope;
use serde_json::json;

use crate::AppState;
use crate::cookies;
use crate::endpoints::Caller;
use crate::error::{TokenEndpointError, no_store_headers};
use crate::params::{FormBody, Params};

/// The header every browser-endpoint call must carry (any value).
pub const CSRF_HEADER: &str = "x-ostiary-csrf";
/// How long a browser may cache a successful preflight, seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// A refusal that carries no CORS headers: the calling page learns nothing.
fn refused(status: StatusCode, description: &str) -> Response {
    let body = Json(json!({"error": "access_denied", "error_description": description}));
    (status, no_store_headers(), body).into_response()
}

/// The browser client named in the query, and the request's `Origin` if it is one of the
/// client's web origins. Anything else is refused without CORS headers.
async fn client_and_origin(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(Client, HeaderValue), Response> {
    let params =
        Params::from_query(query).map_err(|e| refused(StatusCode::BAD_REQUEST, &e.to_string()))?;
    let Some(client_id) = params.get("client_id") else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "client_id is required in the query",
        ));
    };
    let client = match state.idp.find_client(client_id).await {
        Ok(Some(client)) if client.kind == ClientKind::Browser => client,
        Ok(_) => return Err(refused(StatusCode::UNAUTHORIZED, "not a browser client")),
        Err(e) => return Err(TokenEndpointError::from(e).into_response()),
    };
    let origin = headers.get(header::ORIGIN).cloned();
    match origin {
        Some(origin) if origin.to_str().is_ok_and(|o| client.allows_origin(o)) => {
            Ok((client, origin))
        }
        _ => Err(refused(
            StatusCode::FORBIDDEN,
            "this origin may not call the IdP for this client",
        )),
    }
}

/// Adds the CORS headers that let the registered origin read the answer, with credentials.
fn with_cors(mut response: Response, origin: HeaderValue) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("dpop-nonce"),
    );
    response
}

/// `OPTIONS /browser/token` and `/browser/logout`: the CORS preflight.
pub async fn preflight(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (_, origin) = match client_and_origin(&state, &headers, query.as_deref()).await {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, x-ostiary-csrf, dpop"),
    );
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    with_cors(response, origin)
}

/// The checks every cookie-using call passes before anything else happens.
async fn checked(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(Client, HeaderValue), Response> {
    let (client, origin) = client_and_origin(state, headers, query).await?;
    if !headers.contains_key(CSRF_HEADER) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "the X-Ostiary-CSRF header is required",
        ));
    }
    Ok((client, origin))
}

fn token_response(state: &AppState, client: &Client, tokens: TokenResponse) -> Response {
    let mut body = json!({
        "access_token": tokens.access_token,
        "token_type": crate::endpoints::token::token_type(&tokens),
        "expires_in": tokens.expires_in,
        "scope": tokens.scope.to_string(),
    });
    if let Some(id_token) = &tokens.id_token {
        body["id_token"] = json!(id_token);
    }
    let mut response = (StatusCode::OK, no_store_headers(), Json(body)).into_response();
    if let Some(refresh_token) = &tokens.refresh_token {
        let max_age = tokens.session_expires_at - state.idp.now();
        let cookie = state
            .cookies
            .refresh(client.id.as_str(), refresh_token.expose(), max_age);
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /browser/token?client_id=…`.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Caller(caller): Caller,
    RawQuery(query): RawQuery,
    body: FormBody,
) -> Response {
    let (client, origin) = match checked(&state, &headers, query.as_deref()).await {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    let response = match grant(&state, &client, &headers, &caller, &body).await {
        Ok(tokens) => token_response(&state, &client, tokens),
        Err((error, clear_cookie)) => {
            let mut response = error.into_response();
            if clear_cookie {
                response.headers_mut().append(
                    header::SET_COOKIE,
                    state.cookies.clear_refresh(client.id.as_str()),
                );
            }
            response
        }
    };
    let response = crate::endpoints::with_dpop_nonce(&state, &headers, response);
    with_cors(response, origin)
}

/// Runs the grant; on failure, also says whether the refresh cookie is dead and should go.
async fn grant(
    state: &AppState,
    client: &Client,
    headers: &HeaderMap,
    caller: &ostiary_core::idp::LoginContext,
    body: &FormBody,
) -> Result<TokenResponse, (TokenEndpointError, bool)> {
    let params = Params::from_form(headers, body).map_err(|e| (e.into(), false))?;
    let proof = crate::endpoints::dpop_proof(state, headers, "POST", "/browser/token", None)
        .map_err(|e| (e.into(), false))?;
    if params.has("refresh_token") || params.has("client_secret") {
        let error = TokenEndpointError::invalid_request(
            "a browser client's refresh token is the IdP's cookie; send none",
        );
        return Err((error, false));
    }
    if params
        .get("client_id")
        .is_some_and(|id| id != client.id.as_str())
    {
        return Err((
            TokenEndpointError::invalid_request("client_id differs from the query"),
            false,
        ));
    }
    let required = |name: &str| {
        params.get(name).ok_or_else(|| {
            (
                TokenEndpointError::invalid_request(format!("{name} is required")),
                false,
            )
        })
    };
    match params.get("grant_type") {
        Some("authorization_code") => {
            let dpop = crate::endpoints::recorded(state, proof)
                .await
                .map_err(|e| (e.into(), false))?;
            let request = CodeExchange {
                code: required("code")?,
                redirect_uri: required("redirect_uri")?,
                code_verifier: required("code_verifier")?,
                resource: params.get("resource"),
                caller,
                dpop: dpop.as_ref(),
            };
            state
                .idp
                .exchange_code(client, request)
                .await
                .map_err(|e| (e.into(), false))
        }
        Some("refresh_token") => {
            let Some(refresh_token) =
                cookies::read(headers, &state.cookies.refresh_name(client.id.as_str()))
            else {
                return Err((IdpError::InvalidGrant("no refresh cookie").into(), false));
            };
            let scope = params
                .get("scope")
                .map(Scope::parse)
                .transpose()
                .map_err(|e| (IdpError::InvalidScope(e.to_string()).into(), false))?;
            state
                .idp
                .refresh(
                    client,
                    &refresh_token,
                    scope,
                    params.get("resource"),
                    caller,
                    proof,
                )
                .await
                .map_err(|e| {
                    // A cookie refused for want of its key's proof stays: its owner, who
                    // holds the key, can still use it.
                    let dead = matches!(e, IdpError::InvalidGrant(reason) if reason != ostiary_core::dpop::PROOF_REQUIRED);
                    (e.into(), dead)
                })
        }
        Some(_) => Err((TokenEndpointError::unsupported_grant_type(), false)),
        None => Err((
            TokenEndpointError::invalid_request("grant_type is required"),
            false,
        )),
    }
}

/// `POST /browser/logout?client_id=…`: ends the session of the refresh cookie (and of the
/// browser-session cookie) and clears both cookies.
pub async fn logout(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (client, origin) = match checked(&state, &headers, query.as_deref()).await {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    let result = async {
        if let Some(token) =
            cookies::read(&headers, &state.cookies.refresh_name(client.id.as_str()))
        {
            state
                .idp
                .end_session_of_refresh_token(&client, &token, &caller)
                .await?;
        }
        if let Some(cookie) = cookies::read(&headers, &state.cookies.session_name()) {
            let presented = ostiary_core::secret::Credential::from_presented(&cookie);
            if let Some((session, _)) = state.idp.find_browser_session(&presented).await? {
                state
                    .idp
                    .end_session(&session.sid, ostiary_core::session::EndReason::Logout)
                    .await?;
            }
        }
        Ok::<_, IdpError>(())
    }
    .await;
    let mut response = match result {
        Ok(()) => (StatusCode::NO_CONTENT, no_store_headers()).into_response(),
        Err(e) => TokenEndpointError::from(e).into_response(),
    };
    let out = response.headers_mut();
    out.append(
        header::SET_COOKIE,
        state.cookies.clear_refresh(client.id.as_str()),
    );
    out.append(header::SET_COOKIE, state.cookies.clear_session());
    with_cors(response, origin)
}
