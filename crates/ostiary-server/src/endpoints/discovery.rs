//! OpenID Connect Discovery 1.0 §4, OAuth 2.0 Authorization Server Metadata (RFC 8414), and
//! the JWK Set (RFC 7517 §5).

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::{HeaderValue, header};
use ostiary_core::idp::ID_TOKEN_ALG;
use ostiary_core::scope;
use serde_json::{Value, json};

use crate::AppState;

/// How long clients and resource servers may cache the JWKS and metadata, seconds. A new
/// signing key is published longer than this before it signs (see `ostiary_core::keys`).
pub const JWKS_MAX_AGE: i64 = ostiary_core::keys::JWKS_MAX_AGE;

fn metadata(state: &AppState) -> Value {
    let config = state.idp.config();
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    json!({
        "issuer": config.issuer,
        "authorization_endpoint": state.url("/authorize"),
        "token_endpoint": state.url("/token"),
        "userinfo_endpoint": state.url("/userinfo"),
        "jwks_uri": state.url("/jwks.json"),
        "revocation_endpoint": state.url("/revoke"),
        "introspection_endpoint": state.url("/introspect"),
        "end_session_endpoint": state.url("/logout"),
        "scopes_supported": scope::BUILT_IN,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ID_TOKEN_ALG.as_str()],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": ostiary_jose::dpop::algorithm_names(&state.idp.dpop_policy().algorithms),
        "prompt_values_supported": ["none", "login"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "preferred_username"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        // Not registered metadata names. The browser endpoints keep a browser client's refresh
        // token in an IdP cookie; and what the access tokens look like, for resource servers.
        "ostiary_browser_token_endpoint": state.url("/browser/token"),
        "ostiary_browser_logout_endpoint": state.url("/browser/logout"),
        // The revocation feed (polling and Server-Sent Events); see endpoints/revocations.rs.
        "ostiary_revocation_feed_endpoint": state.url("/revocations"),
        "ostiary_revocation_stream_endpoint": state.url("/revocations/stream"),
        "access_token_signing_alg_values_supported": [config.access_token_alg.as_str()],
    })
}

fn cached_json(value: Value) -> impl IntoResponse {
    let cache = HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE}"))
        .unwrap_or(HeaderValue::from_static("no-cache"));
    ([(header::CACHE_CONTROL, cache)], Json(value))
}

/// `GET /.well-known/openid-configuration`.
pub async fn openid_configuration(State(state): State<AppState>) -> impl IntoResponse {
    cached_json(metadata(&state))
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
pub async fn oauth_authorization_server(State(state): State<AppState>) -> impl IntoResponse {
    cached_json(metadata(&state))
}

/// `GET /jwks.json`: every published public key, with `Cache-Control: max-age`.
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let mut response = cached_json(state.idp.keys().jwks().clone()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    response
}
