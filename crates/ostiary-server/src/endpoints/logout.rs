//! The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0).
//!
//! - With a valid `id_token_hint`, the session named by its `sid` ends at once, even when the
//!   browser sends no cookie (the client may call from a browser that lost it). Expired ID
//!   tokens are accepted as hints.
//! - Without one, a signed-in user is asked to confirm (a CSRF-protected form), so that a
//!   cross-site link cannot sign anyone out.
//! - `post_logout_redirect_uri` must be registered for the client (taken from the hint's `aud`
//!   or `client_id`), otherwise an error page is shown; `state` is passed back.
//!
//! Ending a session ends every refresh family in it.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use ostiary_core::secret::Credential;
use ostiary_core::session::EndReason;

use crate::endpoints::login::{check_form_origin, csrf_token};
use crate::error::PageError;
use crate::params::{FormBody, Params};
use crate::{AppState, cookies, html};

/// `GET /logout`.
pub async fn end_session_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match Params::from_query(query.as_deref()) {
        Ok(params) => end_session(&state, &headers, &params)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// `POST /logout` (form-encoded, as RP-Initiated Logout §2 allows).
pub async fn end_session_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: FormBody,
) -> Response {
    match Params::from_form(&headers, &body) {
        Ok(params) => end_session(&state, &headers, &params)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// Where to send the browser afterwards, if the request named a valid, registered place.
struct AfterLogout {
    redirect: Option<String>,
    state: Option<String>,
}

impl AfterLogout {
    fn respond(&self, clear_cookie: Option<http::HeaderValue>) -> Response {
        let mut response = match &self.redirect {
            Some(uri) => match url::Url::parse(uri) {
                Ok(mut url) => {
                    if let Some(state) = &self.state {
                        url.query_pairs_mut().append_pair("state", state);
                    }
                    Redirect::to(url.as_str()).into_response()
                }
                Err(_) => signed_out_page(),
            },
            None => signed_out_page(),
        };
        if let Some(clear) = clear_cookie {
            response.headers_mut().append(header::SET_COOKIE, clear);
        }
        response
    }
}

fn signed_out_page() -> Response {
    html::page(
        StatusCode::OK,
        "Signed out",
        "<h1>You are signed out</h1><p>You can close this window.</p>",
    )
}

/// Validates `post_logout_redirect_uri` against the client named by the hint or `client_id`.
async fn after_logout(
    state: &AppState,
    params: &Params,
    hinted_client: Option<&str>,
) -> Result<AfterLogout, PageError> {
    if let (Some(hinted), Some(sent)) = (hinted_client, params.get("client_id"))
        && hinted != sent
    {
        return Err(PageError::bad_request(
            "Invalid logout request",
            "client_id does not match the id_token_hint.",
        ));
    }
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let client_id = hinted_client.or(params.get("client_id")).ok_or_else(|| {
                PageError::bad_request(
                    "Invalid logout request",
                    "post_logout_redirect_uri needs id_token_hint or client_id.",
                )
            })?;
            let client = state.idp.find_client(client_id).await?;
            if !client.is_some_and(|c| c.allows_post_logout_redirect(uri)) {
                return Err(PageError::bad_request(
                    "Invalid logout request",
                    "post_logout_redirect_uri is not registered for this client.",
                ));
            }
            Some(uri.to_owned())
        }
    };
    Ok(AfterLogout {
        redirect,
        state: params.get("state").map(str::to_owned),
    })
}

async fn end_session(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, PageError> {
    let hint = params
        .get("id_token_hint")
        .map(|t| state.idp.verify_id_token_hint(t))
        .transpose()?;
    let after = after_logout(state, params, hint.as_ref().map(|h| h.aud.as_str())).await?;
    let cookie_session = match cookies::read(headers, &state.cookies.session_name()) {
        Some(cookie) => {
            state
                .idp
                .find_browser_session(&Credential::from_presented(&cookie))
                .await?
        }
        None => None,
    };

    if let Some(hint) = hint {
        state.idp.end_session(&hint.sid, EndReason::Logout).await?;
        let clear = cookie_session
            .filter(|(s, _)| s.sid == hint.sid)
            .map(|_| state.cookies.clear_session());
        let mut response = after.respond(clear);
        // A browser client's refresh cookie (if this is one) is dead now: let it go too.
        response
            .headers_mut()
            .append(header::SET_COOKIE, state.cookies.clear_refresh(&hint.aud));
        return Ok(response);
    }
    if cookie_session.is_none() {
        return Ok(after.respond(None));
    }
    // A signed-in browser without a hint: ask, so a cross-site link cannot log the user out.
    let (csrf, set_cookie) = csrf_token(state, headers);
    let mut hidden = format!(
        "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">",
        html::escape(&csrf)
    );
    for name in ["post_logout_redirect_uri", "state", "client_id"] {
        if let Some(value) = params.get(name) {
            hidden.push_str(&format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                html::escape(value)
            ));
        }
    }
    let body = format!(
        "<h1>Sign out?</h1><p>Do you want to sign out? This ends your session and signs you out of the applications that use it.</p>\
         <form method=\"post\" action=\"/logout/confirm\">{hidden}<button type=\"submit\">Sign out</button></form>"
    );
    let mut response = html::page(StatusCode::OK, "Sign out", &body);
    if let Some(set_cookie) = set_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie);
    }
    Ok(response)
}

/// `POST /logout/confirm`: the user confirmed on the IdP's own page.
pub async fn confirm(State(state): State<AppState>, parts: Parts, body: FormBody) -> Response {
    let result = async {
        let params = Params::from_form(&parts.headers, &body)?;
        check_form_origin(&state, &parts.headers, &params)?;
        let after = after_logout(&state, &params, None).await?;
        if let Some(cookie) = cookies::read(&parts.headers, &state.cookies.session_name())
            && let Some((session, _)) = state
                .idp
                .find_browser_session(&Credential::from_presented(&cookie))
                .await?
        {
            state
                .idp
                .end_session(&session.sid, EndReason::Logout)
                .await?;
        }
        Ok::<_, PageError>(after.respond(Some(state.cookies.clear_session())))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
