//! The authorization endpoint (RFC 6749 §3.1, §4.1; OIDC Core §3.1.2): authorization code
//! flow with PKCE only.
//!
//! Errors about the client or the redirect URI are shown on a page and never redirected
//! (RFC 6749 §4.1.2.1, so that the endpoint cannot be used as an open redirector); every other
//! error goes back to the client's redirect URI with `error`, `state` and `iss` (RFC 9207).

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::HeaderMap;
use ostiary_core::IdpError;
use ostiary_core::idp::AuthorizationParams;
use ostiary_core::secret::Credential;

use crate::AppState;
use crate::cookies;
use crate::error::{PageError, no_store_headers, oauth_error};
use crate::params::{FormBody, Params, ParamsError};

/// `GET /authorize`.
pub async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    authorize(&state, &headers, Params::from_query(query.as_deref())).await
}

/// `POST /authorize` (OIDC Core §3.1.2.1: form-encoded parameters are allowed too).
pub async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: FormBody,
) -> Response {
    authorize(&state, &headers, Params::from_form(&headers, &body)).await
}

/// The query string that brings the browser back here after login, without `prompt` (the
/// login itself satisfies `prompt=login`).
fn return_to(params: &Params) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params.iter().filter(|(name, _)| *name != "prompt") {
        query.append_pair(name, value);
    }
    format!("/authorize?{}", query.finish())
}

struct ClientRedirect {
    redirect_uri: String,
    state: Option<String>,
    issuer: String,
}

impl ClientRedirect {
    fn to(&self, pairs: &[(&str, &str)]) -> Response {
        let Ok(mut url) = url::Url::parse(&self.redirect_uri) else {
            return PageError::bad_request(
                "Invalid request",
                "The redirect URI is not a valid URL.",
            )
            .into_response();
        };
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in pairs {
                query.append_pair(name, value);
            }
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", &self.issuer);
        }
        // The Location carries a code: no cache may keep it (RFC 6749 §10.5, RFC 9700 §4.2.4).
        (no_store_headers(), Redirect::to(url.as_str())).into_response()
    }

    fn error(&self, code: &str, description: &str) -> Response {
        self.to(&[("error", code), ("error_description", description)])
    }

    fn idp_error(&self, e: &IdpError) -> Response {
        let (status, code) = oauth_error(e);
        if status.is_server_error() {
            tracing::error!(error = %e, "authorization failed");
            return self.error("server_error", "the server could not complete the request");
        }
        self.error(code, &e.to_string())
    }
}

async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    params: Result<Params, ParamsError>,
) -> Response {
    let params = match params {
        Ok(params) => params,
        Err(e) => return PageError::from(e).into_response(),
    };
    let Some(client_id) = params.get("client_id") else {
        return PageError::bad_request("Invalid request", "client_id is missing.").into_response();
    };
    let (client, redirect_uri) = match state
        .idp
        .authorization_client(client_id, params.get("redirect_uri"))
        .await
    {
        Ok(found) => found,
        Err(e) => return PageError::from(e).into_response(),
    };
    let redirect = ClientRedirect {
        redirect_uri: redirect_uri.clone(),
        state: params.get("state").map(str::to_owned),
        issuer: state.idp.config().issuer.clone(),
    };
    if params.has("request") {
        return redirect.error("request_not_supported", "request objects are not supported");
    }
    if params.has("request_uri") {
        return redirect.error("request_uri_not_supported", "request_uri is not supported");
    }
    let prompts: Vec<&str> = params
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if prompts.contains(&"none") && prompts.len() > 1 {
        return redirect.error(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        );
    }
    if params
        .get("response_mode")
        .is_some_and(|mode| mode != "query")
    {
        return redirect.error("invalid_request", "only response_mode=query is supported");
    }
    // OIDC Core §3.1.2.1: an older authentication than max_age seconds means log in again.
    let max_age = match params.get("max_age").map(str::parse::<u32>) {
        None => None,
        Some(Ok(seconds)) => Some(i64::from(seconds)),
        Some(Err(_)) => {
            return redirect.error("invalid_request", "max_age must be a number of seconds");
        }
    };
    let request = AuthorizationParams {
        response_type: params.get("response_type").map(str::to_owned),
        scope: params.get("scope").map(str::to_owned),
        code_challenge: params.get("code_challenge").map(str::to_owned),
        code_challenge_method: params.get("code_challenge_method").map(str::to_owned),
        resource: params.get("resource").map(str::to_owned),
        nonce: params.get("nonce").map(str::to_owned),
        dpop_jkt: params.get("dpop_jkt").map(str::to_owned),
    };
    let grant = match state
        .idp
        .validate_authorization(&client, redirect_uri, request)
    {
        Ok(grant) => grant,
        Err(e) => return redirect.idp_error(&e),
    };

    let session = match cookies::read(headers, &state.cookies.session_name()) {
        Some(cookie) => match state
            .idp
            .find_browser_session(&Credential::from_presented(&cookie))
            .await
        {
            Ok(found) => found,
            Err(e) => return redirect.idp_error(&e),
        },
        None => None,
    };
    let now = state.idp.now();
    let session = session
        .filter(|_| !prompts.contains(&"login"))
        .filter(|(s, _)| max_age.is_none_or(|max| now - s.auth_time <= max));
    let Some((session, _user)) = session else {
        if prompts.contains(&"none") {
            return redirect.error("login_required", "the user is not signed in");
        }
        let login = format!(
            "/login?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &return_to(&params))
                .finish()
        );
        return Redirect::to(&login).into_response();
    };
    match state.idp.issue_authorization_code(grant, &session).await {
        Ok(code) => redirect.to(&[("code", code.expose())]),
        Err(e) => redirect.idp_error(&e),
    }
}
