//! The login page, cookies and CSRF defences.

use reqwest::StatusCode;

use crate::harness::*;

async fn login_page(app: &TestApp, browser: &reqwest::Client) -> String {
    let page = browser.get(app.url("/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
    assert!(
        !html.contains("<script"),
        "the login page works without JavaScript"
    );
    hidden_field(&html, "csrf_token")
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.contains("ostiary_session="))
}

#[tokio::test]
async fn a_successful_login_sets_a_fresh_http_only_session_cookie_each_time() {
    let app = spawn_app().await;
    let browser = browser();
    let mut values = Vec::new();
    for _ in 0..2 {
        let csrf = login_page(&app, &browser).await;
        let response = browser
            .post(app.url("/login"))
            .form(&[
                ("username", USERNAME),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/");
        let cookie = session_cookie(&response).expect("session cookie");
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
        values.push(cookie.split(';').next().unwrap().to_owned());
    }
    assert_ne!(
        values[0], values[1],
        "every login gets a new session id (no fixation)"
    );
    let home = browser
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("signed in as <strong>alice</strong>"));
}

#[tokio::test]
async fn over_https_the_cookies_are_secure_and_host_prefixed() {
    // An https issuer, as behind a TLS-terminating proxy; the test talks to the socket.
    let app = spawn_app_with(|c| c.issuer = "https://idp.ostiary.test".into()).await;
    let client = http();
    let page = client.get(app.url("/login")).send().await.unwrap();
    let csrf_cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        csrf_cookie.starts_with("__Host-ostiary_csrf="),
        "{csrf_cookie}"
    );
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            csrf_cookie.contains(attribute),
            "{csrf_cookie} lacks {attribute}"
        );
    }
    let csrf = hidden_field(&page.text().await.unwrap(), "csrf_token");
    let response = client
        .post(app.url("/login"))
        .header("Cookie", format!("__Host-ostiary_csrf={csrf}"))
        .header("Origin", "https://idp.ostiary.test")
        .form(&[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&response).expect("session cookie");
    assert!(cookie.starts_with("__Host-ostiary_session="), "{cookie}");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Domain"));
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_shows_the_same_error_and_sets_no_session() {
    let app = spawn_app().await;
    let browser = browser();
    for (username, password) in [
        (USERNAME, "wrong"),
        ("nobody", PASSWORD),
        ("<script>x</script>", "p"),
    ] {
        let csrf = login_page(&app, &browser).await;
        let response = browser
            .post(app.url("/login"))
            .form(&[
                ("username", username),
                ("password", password),
                ("csrf_token", &csrf),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(session_cookie(&response).is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("Wrong username or password."));
        assert!(!html.contains("<script>x"), "reflected input is escaped");
    }
}

#[tokio::test]
async fn a_login_post_without_the_csrf_token_or_from_another_origin_is_refused() {
    let app = spawn_app().await;
    let browser = browser();
    let csrf = login_page(&app, &browser).await;
    let no_token = browser
        .post(app.url("/login"))
        .form(&[("username", USERNAME), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let foreign = browser
        .post(app.url("/login"))
        .header("Origin", "https://evil.example")
        .form(&[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let cross_site = browser
        .post(app.url("/login"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    // A token that does not match the cookie (another browser's) is refused too.
    let other = crate::harness::browser();
    let stolen = other
        .post(app.url("/login"))
        .form(&[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn login_only_returns_into_the_authorization_endpoint() {
    let app = spawn_app().await;
    let browser = browser();
    let csrf = login_page(&app, &browser).await;
    let response = browser
        .post(app.url("/login"))
        .form(&[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("return_to", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
}

#[tokio::test]
async fn health_discovery_and_unknown_paths() {
    let app = spawn_app().await;
    let health = http().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = http().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let rfc8414 = http()
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(rfc8414.status(), StatusCode::OK);
    let jwks = http().get(app.url("/jwks.json")).send().await.unwrap();
    assert!(
        jwks.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let missing = http().get(app.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// The login page for a `return_to` into the authorization endpoint for `client_id`.
async fn login_page_for(app: &TestApp, browser: &reqwest::Client, client_id: &str) -> String {
    let mut authorize = reqwest::Url::parse("http://x/authorize").unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", client_id);
    let return_to = format!("/authorize?{}", authorize.query().unwrap());
    let page = browser
        .get(app.url("/login"))
        .query(&[("return_to", return_to.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

#[tokio::test]
async fn the_login_page_names_a_registered_client_and_no_other_text() {
    let app = spawn_app().await;
    let browser = browser();

    let registered = login_page_for(&app, &browser, PUBLIC_CLIENT).await;
    assert!(
        registered.contains(&format!("to continue to <code>{PUBLIC_CLIENT}</code>")),
        "{registered}"
    );

    for crafted in [
        "Your Bank: confirm your password",
        "unknown-client",
        "<b>x</b>",
    ] {
        let page = login_page_for(&app, &browser, crafted).await;
        assert!(!page.contains("to continue to"), "{crafted}: {page}");
        assert!(
            !page.contains("Your Bank") && !page.contains("<b>x"),
            "{page}"
        );
    }

    // The page shown again after a wrong password follows the same rule.
    let page = login_page_for(&app, &browser, "Your Bank").await;
    let wrong = browser
        .post(app.url("/login"))
        .form(&[
            ("username", USERNAME),
            ("password", "wrong"),
            ("csrf_token", hidden_field(&page, "csrf_token").as_str()),
            ("return_to", hidden_field(&page, "return_to").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong = wrong.text().await.unwrap();
    assert!(wrong.contains("Wrong username or password."));
    assert!(!wrong.contains("to continue to"), "{wrong}");
}
