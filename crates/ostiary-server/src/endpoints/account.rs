//! The signed-in user's own account page: their active sessions (device, IP, when, which
//! apps), which one is this browser, a way to end one, all others, or all, and the recent
//! security events of the account ("signed out on … because …").
//!
//! - `GET /account`: the page (sign-in first if needed).
//! - `GET /account/sessions`: the same sessions as JSON, for the signed-in browser.
//! - `POST /account/sessions/end`: `which=one&sid=…`, `which=others` or `which=all`, with the
//!   CSRF token of the page (the login page's double-submit cookie and `Origin` checks).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode, header};
use ostiary_core::audit::AuditFilter;
use ostiary_core::idp::EndWhich;
use ostiary_core::secret::Credential;
use ostiary_core::session::{EndReason, Session};
use ostiary_core::user::User;
use serde_json::json;

use crate::endpoints::login::{check_form_origin, csrf_token};
use crate::error::PageError;
use crate::params::{FormBody, Params};
use crate::{AppState, cookies, html};

const LOGIN_FIRST: &str = "/login?return_to=%2Faccount";

async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(Session, User)>, PageError> {
    let Some(cookie) = cookies::read(headers, &state.cookies.session_name()) else {
        return Ok(None);
    };
    Ok(state
        .idp
        .find_browser_session(&Credential::from_presented(&cookie))
        .await?)
}

fn when(unix: i64) -> String {
    let time =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    httpdate::fmt_http_date(time)
}

/// `GET /account`.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let result = async {
        let Some((current, user)) = signed_in(&state, &headers).await? else {
            return Ok(Redirect::to(LOGIN_FIRST).into_response());
        };
        let (csrf, set_cookie) = csrf_token(&state, &headers);
        let csrf_field = format!("<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">", html::escape(&csrf));
        let mut rows = String::new();
        for (session, clients) in state.idp.active_sessions(Some(&user.id)).await? {
            let this = session.sid == current.sid;
            rows.push_str(&format!(
                "<tr{}><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td><form method=\"post\" action=\"/account/sessions/end\">{csrf_field}\
                 <input type=\"hidden\" name=\"which\" value=\"one\"><input type=\"hidden\" name=\"sid\" value=\"{}\">\
                 <button type=\"submit\">Sign out</button></form></td></tr>",
                if this { " class=\"current\"" } else { "" },
                html::escape(session.user_agent.as_deref().unwrap_or("unknown device")),
                if this { " <strong>(this browser)</strong>" } else { "" },
                html::escape(session.ip.as_deref().unwrap_or("-")),
                html::escape(&when(session.created_at)),
                html::escape(&when(session.last_used_at)),
                html::escape(&if clients.is_empty() { "-".to_owned() } else { clients.join(", ") }),
                html::escape(&session.sid),
            ));
        }
        let filter = AuditFilter { user_id: Some(user.id.clone()), limit: Some(20), ..AuditFilter::default() };
        let mut events = String::new();
        for event in state.idp.audit_events(&filter).await?.iter().rev() {
            let reason = event.details.get("reason").and_then(|r| r.as_str()).map(|r| format!(" ({r})")).unwrap_or_default();
            events.push_str(&format!(
                "<li>{}: {}{}{}</li>",
                html::escape(&when(event.at)),
                html::escape(&event.kind.as_str().replace('_', " ")),
                html::escape(&reason),
                event.ip.as_deref().map(|ip| format!(", from {}", html::escape(ip))).unwrap_or_default(),
            ));
        }
        let body = format!(
            "<h1>Your account</h1><p>Signed in as <strong>{}</strong>.</p>\
             <h2>Where you are signed in</h2>\
             <table><tr><th>Device</th><th>IP</th><th>Signed in</th><th>Last used</th><th>Apps</th><th></th></tr>{rows}</table>\
             <form method=\"post\" action=\"/account/sessions/end\">{csrf_field}<input type=\"hidden\" name=\"which\" value=\"others\">\
             <button type=\"submit\">Sign out all other sessions</button></form>\
             <form method=\"post\" action=\"/account/sessions/end\">{csrf_field}<input type=\"hidden\" name=\"which\" value=\"all\">\
             <button type=\"submit\">Sign out everywhere</button></form>\
             <h2>Recent security events</h2><ul>{events}</ul>",
            html::escape(user.username.as_str()),
        );
        let mut response = html::page(StatusCode::OK, "Your account", &body);
        if let Some(set_cookie) = set_cookie {
            response.headers_mut().append(header::SET_COOKIE, set_cookie);
        }
        Ok::<_, PageError>(response)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /account/sessions`: the signed-in user's active sessions as JSON.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let result = async {
        let Some((current, user)) = signed_in(&state, &headers).await? else {
            let body = Json(json!({"error": "login_required"}));
            return Ok((StatusCode::UNAUTHORIZED, body).into_response());
        };
        let sessions: Vec<_> = state
            .idp
            .active_sessions(Some(&user.id))
            .await?
            .into_iter()
            .map(|(s, clients)| {
                json!({
                    "sid": s.sid, "current": s.sid == current.sid, "created_at": s.created_at,
                    "last_used_at": s.last_used_at, "ip": s.ip, "user_agent": s.user_agent, "clients": clients,
                })
            })
            .collect();
        Ok::<_, PageError>(([(header::CACHE_CONTROL, "no-store")], Json(json!({"sessions": sessions}))).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /account/sessions/end`.
pub async fn end(State(state): State<AppState>, headers: HeaderMap, body: FormBody) -> Response {
    let result = async {
        let params = Params::from_form(&headers, &body)?;
        check_form_origin(&state, &headers, &params)?;
        let Some((current, user)) = signed_in(&state, &headers).await? else {
            return Ok(Redirect::to(LOGIN_FIRST).into_response());
        };
        let which = match (params.get("which"), params.get("sid")) {
            (Some("one"), Some(sid)) => EndWhich::One(sid),
            (Some("others"), _) => EndWhich::AllBut(&current.sid),
            (Some("all"), _) => EndWhich::All,
            _ => {
                return Err(PageError::bad_request(
                    "Invalid request",
                    "which must be one (with sid), others or all.",
                ));
            }
        };
        let ended = state
            .idp
            .end_sessions(&user.id, which, EndReason::Logout)
            .await?;
        let mut response = Redirect::to("/account").into_response();
        if ended.contains(&current.sid) {
            response
                .headers_mut()
                .append(header::SET_COOKIE, state.cookies.clear_session());
        }
        Ok::<_, PageError>(response)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
