//! The login page: a plain HTML form (`username`, `password`) that works without JavaScript.
//!
//! CSRF protection is layered: a double-submit token (a `SameSite=Strict` cookie that the form
//! must echo), plus a check that `Origin` (when sent) is the issuer's own origin and that
//! `Sec-Fetch-Site` (when sent) is not `cross-site`. A successful login always creates a new
//! session with a new cookie value (no session fixation).

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use ostiary_core::IdpError;
use ostiary_core::idp::LoginContext;
use ostiary_core::secret::{Credential, Password, constant_time_eq};

use crate::error::PageError;
use crate::params::{FormBody, Params};
use crate::{AppState, cookies, html};

/// Where the browser may be sent after login: only back into the authorization endpoint or to
/// the account page, so the login form cannot be used as an open redirector.
fn safe_return_to(value: Option<&str>) -> Option<&str> {
    value.filter(|v| {
        (v.starts_with("/authorize?") || *v == "/account")
            && v.len() <= 8192
            && !v.chars().any(char::is_control)
    })
}

/// Checks that a form post comes from a page of the IdP itself (`Origin` and `Sec-Fetch-Site`
/// where the browser sends them) and echoes the CSRF cookie.
pub fn check_form_origin(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(), PageError> {
    let forbidden = || {
        PageError::new(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form was submitted from another site or an old page. Reload the page and try again.",
        )
    };
    if let Some(origin) = headers.get(header::ORIGIN)
        && origin.to_str().ok() != Some(&*state.origin)
    {
        return Err(forbidden());
    }
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return Err(forbidden());
    }
    let cookie = cookies::read(headers, &state.cookies.csrf_name());
    let field = params.get("csrf_token");
    match (cookie, field) {
        (Some(cookie), Some(field)) if constant_time_eq(cookie.as_bytes(), field.as_bytes()) => {
            Ok(())
        }
        _ => Err(forbidden()),
    }
}

/// A fresh CSRF token and its `Set-Cookie`, or the one the browser already holds.
pub fn csrf_token(state: &AppState, headers: &HeaderMap) -> (String, Option<http::HeaderValue>) {
    match cookies::read(headers, &state.cookies.csrf_name()) {
        Some(existing) => (existing, None),
        None => {
            let token = Credential::generate().expose().to_owned();
            let set = state.cookies.csrf(&token);
            (token, Some(set))
        }
    }
}

/// The registered client a login was started for (the `client_id` of the authorization
/// request in `return_to`), to name it on the page. `None` when there is no such parameter or
/// no such client: the link is anyone's to craft, so the page must not name whatever text it
/// carries ("to continue to <your bank>").
async fn asking_client(state: &AppState, return_to: Option<&str>) -> Option<String> {
    let client_id = return_to
        .and_then(|r| r.split_once('?'))
        .and_then(|(_, query)| Params::parse(query.as_bytes()).ok())
        .and_then(|p| p.get("client_id").map(str::to_owned))?;
    match state.idp.find_client(&client_id).await {
        Ok(client) => client.map(|c| c.id.as_str().to_owned()),
        Err(error) => {
            // The page still works without the name.
            tracing::warn!(%error, "could not look up the client named by a login page");
            None
        }
    }
}

/// The login form. `asking` is the registered client the user is signing in for
/// ([`asking_client`]).
fn login_page(
    status: StatusCode,
    csrf: &str,
    return_to: Option<&str>,
    asking: Option<&str>,
    username: &str,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", html::escape(e)))
        .unwrap_or_default();
    // Which application asked, so the user knows what they are signing in to.
    let asking = asking
        .map(|client| {
            format!(
                "<p class=\"muted\">to continue to <code>{}</code></p>",
                html::escape(client)
            )
        })
        .unwrap_or_default();
    let return_to = return_to
        .map(|r| {
            format!(
                "<input type=\"hidden\" name=\"return_to\" value=\"{}\">",
                html::escape(r)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>{asking}{error}<form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">{return_to}\
         <label for=\"username\">Username</label><input type=\"text\" id=\"username\" name=\"username\" value=\"{}\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>",
        html::escape(csrf),
        html::escape(username),
    );
    html::page(status, "Sign in", &body)
}

/// `GET /login`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match Params::from_query(query.as_deref()) {
        Ok(params) => params,
        Err(e) => return PageError::from(e).into_response(),
    };
    let (csrf, set_cookie) = csrf_token(&state, &headers);
    let return_to = safe_return_to(params.get("return_to"));
    let asking = asking_client(&state, return_to).await;
    let mut response = login_page(
        StatusCode::OK,
        &csrf,
        return_to,
        asking.as_deref(),
        "",
        None,
    );
    if let Some(set_cookie) = set_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie);
    }
    response
}

/// Most failed sign-ins held back at once ([`hold_back`]); beyond, they are answered at once,
/// so that a flood of slow answers cannot tie up the server.
pub const MAX_HELD_ANSWERS: usize = 512;

/// Waits `delay` before a failed sign-in is answered: the failed-login throttle slows guessing
/// from an address, or against a username, that failed too often (a correct password is
/// never held back). At most [`MAX_HELD_ANSWERS`] wait at once.
async fn hold_back(state: &AppState, delay: std::time::Duration) {
    if delay.is_zero() {
        return;
    }
    if let Ok(_permit) = state.held_answers.try_acquire() {
        // A held-back answer is no work: password hashing need not give way to it.
        let _waiting = state.idp.hashing_demand().waiting();
        tokio::time::sleep(delay).await;
    }
}

/// `POST /login`.
pub async fn submit(State(state): State<AppState>, parts: Parts, body: FormBody) -> Response {
    let params = match Params::from_form(&parts.headers, &body) {
        Ok(params) => params,
        Err(e) => return PageError::from(e).into_response(),
    };
    if let Err(e) = check_form_origin(&state, &parts.headers, &params) {
        return e.into_response();
    }
    let return_to = safe_return_to(params.get("return_to"));
    let username = params.get("username").unwrap_or("");
    let csrf = params.get("csrf_token").unwrap_or("");
    let password = Password::new(params.get("password").unwrap_or(""));
    let context = LoginContext {
        user_agent: super::user_agent(&parts),
        ip: super::client_ip(&parts),
    };
    match state.idp.login(username, password, context).await {
        Ok((_session, cookie)) => {
            let max_age = state.idp.config().session.absolute_lifetime;
            let mut response = Redirect::to(return_to.unwrap_or("/")).into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                state.cookies.session(cookie.expose(), max_age),
            );
            response
        }
        Err(IdpError::InvalidCredentials { delay }) => {
            hold_back(&state, delay).await;
            let asking = asking_client(&state, return_to).await;
            let shown_username = if username.len() <= 64 { username } else { "" };
            login_page(
                StatusCode::UNAUTHORIZED,
                csrf,
                return_to,
                asking.as_deref(),
                shown_username,
                Some("Wrong username or password."),
            )
        }
        Err(e @ IdpError::TooManyAttempts(retry_after)) => {
            let asking = asking_client(&state, return_to).await;
            let mut page = login_page(
                StatusCode::TOO_MANY_REQUESTS,
                csrf,
                return_to,
                asking.as_deref(),
                "",
                Some(&e.to_string()),
            );
            // RFC 6585 §4 / RFC 9110 §10.2.3: seconds until the window ends.
            if let Ok(value) = http::HeaderValue::from_str(&retry_after.to_string()) {
                page.headers_mut().insert(header::RETRY_AFTER, value);
            }
            page
        }
        Err(e @ IdpError::SessionLimit(_)) => {
            let asking = asking_client(&state, return_to).await;
            login_page(
                StatusCode::FORBIDDEN,
                csrf,
                return_to,
                asking.as_deref(),
                "",
                Some(&e.to_string()),
            )
        }
        Err(e) => PageError::from(e).into_response(),
    }
}
