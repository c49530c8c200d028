//! The IdP's own home page: who is signed in here, and a way to sign out.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use ostiary_core::secret::Credential;

use crate::endpoints::login::csrf_token;
use crate::error::PageError;
use crate::{AppState, cookies, html};

/// `GET /`.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match cookies::read(&headers, &state.cookies.session_name()) {
        Some(cookie) => match state
            .idp
            .find_browser_session(&Credential::from_presented(&cookie))
            .await
        {
            Ok(found) => found,
            Err(e) => return PageError::from(e).into_response(),
        },
        None => None,
    };
    let Some((_session, user)) = session else {
        return html::page(
            StatusCode::OK,
            "Ostiary",
            "<h1>Ostiary</h1><p>You are not signed in.</p><p><a href=\"/login\">Sign in</a></p>\
             <p class=\"muted\">OpenID Provider metadata: <a href=\"/.well-known/openid-configuration\">/.well-known/openid-configuration</a></p>",
        );
    };
    let (csrf, set_cookie) = csrf_token(&state, &headers);
    let body = format!(
        "<h1>Ostiary</h1><p>You are signed in as <strong>{}</strong>.</p>\
         <form method=\"post\" action=\"/logout/confirm\"><input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
         <button type=\"submit\">Sign out</button></form>\
         <p><a href=\"/account\">Your sessions and security events</a></p>",
        html::escape(user.username.as_str()),
        html::escape(&csrf)
    );
    let mut response = html::page(StatusCode::OK, "Ostiary", &body);
    if let Some(set_cookie) = set_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie);
    }
    response
}

/// Any other path.
pub async fn not_found() -> Response {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing at this address.",
    )
    .into_response()
}
