//! Bad input on every endpoint gets the endpoint's normal error, never a 5xx and never a
//! storage outage, on every backend: NUL (which PostgreSQL cannot store) and malformed
//! percent-encoding, in every parameter that reaches the database.

use reqwest::StatusCode;

use crate::harness::*;

/// Values that must be refused wherever they appear: NUL, alone and inside text, and
/// percent-encoding that is not `%` and two hex digits (also at the very end).
const BAD: [&str; 5] = ["%00", "a%00b", "%zz", "x%4", "%"];

/// Where the bad value goes (`{}`), with the rest of a request that would otherwise reach the
/// store.
struct Probe {
    method: &'static str,
    path: &'static str,
    /// A form body, for POST.
    body: Option<&'static str>,
    /// Sent by a signed-in browser (with its CSRF token as `csrf_token`, replacing `{csrf}`).
    signed_in: bool,
    /// With the admin token.
    admin: bool,
}

const fn get(path: &'static str) -> Probe {
    Probe {
        method: "GET",
        path,
        body: None,
        signed_in: false,
        admin: false,
    }
}

const fn post(path: &'static str, body: &'static str) -> Probe {
    Probe {
        method: "POST",
        path,
        body: Some(body),
        signed_in: false,
        admin: false,
    }
}

const fn signed_in(probe: Probe) -> Probe {
    Probe {
        signed_in: true,
        ..probe
    }
}

const fn admin(probe: Probe) -> Probe {
    Probe {
        admin: true,
        ..probe
    }
}

fn probes() -> Vec<Probe> {
    const AUTHORIZE: &str = "/authorize?response_type=code&client_id=spa&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcallback&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&nonce={}";
    vec![
        signed_in(get(AUTHORIZE)),
        signed_in(get(
            "/authorize?response_type=code&client_id={}&redirect_uri=x",
        )),
        signed_in(get(
            "/authorize?response_type=code&client_id=spa&redirect_uri={}",
        )),
        signed_in(get("/authorize?state={}&client_id=spa")),
        get("/login?return_to={}"),
        signed_in(post("/login", "csrf_token={csrf}&username={}&password=x")),
        signed_in(post(
            "/login",
            "csrf_token={csrf}&username=alice&password={}",
        )),
        signed_in(post("/login", "csrf_token={}&username=alice&password=x")),
        post(
            "/token",
            "grant_type=authorization_code&client_id=spa&code={}&redirect_uri=x&code_verifier=x",
        ),
        post(
            "/token",
            "grant_type=refresh_token&client_id=spa&refresh_token={}",
        ),
        post(
            "/token",
            "grant_type=refresh_token&client_id={}&refresh_token=x",
        ),
        post("/token", "grant_type={}"),
        post(
            "/token",
            "grant_type=refresh_token&client_id=spa&refresh_token=x&scope={}",
        ),
        post(
            "/token",
            "grant_type=refresh_token&client_id=spa&refresh_token=x&resource={}",
        ),
        post("/revoke", "client_id=spa&token={}"),
        post("/introspect", "client_id={}&token=x"),
        post("/browser/token?client_id={}", "grant_type=refresh_token"),
        post("/browser/logout?client_id={}", ""),
        get("/logout?id_token_hint={}"),
        get("/logout?post_logout_redirect_uri={}&client_id=spa"),
        signed_in(post(
            "/logout/confirm",
            "csrf_token={csrf}&post_logout_redirect_uri={}",
        )),
        signed_in(get("/account?{}=1")),
        signed_in(post("/account/sessions/end", "csrf_token={csrf}&sid={}")),
        get("/revocations?after={}"),
        admin(get("/admin/sessions?user={}")),
        admin(get("/admin/audit?session={}")),
        admin(get("/admin/audit?user={}")),
        admin(get("/admin/audit?kind={}")),
        admin(get("/admin/audit?since={}")),
        admin(post("/admin/sessions/revoke", "sid={}")),
        admin(post("/admin/sessions/revoke", "user={}")),
        admin(post("/admin/users/unlock", "user={}")),
    ]
}

/// Sends every probe with every bad value; returns what was answered with a 5xx.
async fn sweep(app: &TestApp) -> Vec<String> {
    let browser = browser();
    let signed_in = app.login(&browser, USERNAME, PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let page = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "csrf_token");
    let anonymous = http();
    let mut server_errors = Vec::new();
    for probe in probes() {
        for bad in BAD {
            let path = probe.path.replace("{}", bad);
            let client = if probe.signed_in {
                &browser
            } else {
                &anonymous
            };
            let mut request = match probe.method {
                "GET" => client.get(app.url(&path)),
                _ => client.post(app.url(&path)),
            };
            if let Some(body) = probe.body {
                let body = body.replace("{}", bad).replace("{csrf}", &csrf);
                request = request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body);
            }
            if probe.admin {
                request = request.bearer_auth(ADMIN_TOKEN);
            }
            if path.starts_with("/browser/") {
                request = request
                    .header("origin", "http://127.0.0.1:9999")
                    .header("x-ostiary-csrf", "1");
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            if status.is_server_error() {
                server_errors.push(format!(
                    "{} {path} {:?} -> {status}",
                    probe.method, probe.body
                ));
            }
        }
    }
    // Basic credentials carry form-urlencoded parts too.
    for bad in BAD {
        let response = anonymous
            .post(app.url("/token"))
            .basic_auth(format!("web{bad}"), Some(format!("s{bad}")))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
            .send()
            .await
            .unwrap();
        if response.status().is_server_error() {
            server_errors.push(format!("basic auth {bad} -> {}", response.status()));
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // And none of it looked like an outage to the metrics.
    let metrics = anonymous
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in metrics.lines() {
        if line.starts_with("ostiary_http_requests_total{") && line.contains("status=\"5") {
            server_errors.push(line.to_owned());
        }
    }
    server_errors
}

#[tokio::test]
async fn no_bad_input_gets_a_server_error_on_sqlite() {
    let app = spawn_app().await;
    assert_eq!(sweep(&app).await, Vec::<String>::new());
}

#[tokio::test]
#[ignore = "needs OSTIARY_TEST_DATABASE_URL"]
async fn no_bad_input_gets_a_server_error_on_postgres() {
    let app = spawn_app_on_postgres().await;
    let errors = sweep(&app).await;
    app.close().await;
    assert_eq!(errors, Vec::<String>::new());
}

#[tokio::test]
async fn bad_input_gets_the_endpoints_normal_error() {
    let app = spawn_app().await;
    // The token endpoint: RFC 6749 §5.2 JSON.
    let token = http()
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token&client_id=spa&refresh_token=%zz")
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = token.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("percent-encoding")
    );
    // The login form: a readable page, and the throttle never saw it.
    let browser = browser();
    let page = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "csrf_token");
    let login = browser
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={csrf}&username=al%00ice&password=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::BAD_REQUEST);
    assert!(
        login.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(login.text().await.unwrap().contains("NUL"));
    // The admin API: JSON invalid_request.
    let admin = http()
        .get(app.url("/admin/audit?session=a%00b"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = admin.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}
