//! What the server logs about requests: each request's lines carry its request id, and no line
//! ever carries a credential, a cookie or a query string.
//!
//! A test binary of its own, because capturing every log line needs the process-wide
//! subscriber: a thread-local one (`set_default`) misses lines from callsites first reached on
//! other threads, which the parallel tests of `tests/it` would be.

#[allow(dead_code)]
#[path = "it/harness.rs"]
mod harness;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use crate::harness::*;

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn request_logs_carry_the_request_id_and_never_credentials_cookies_or_query_strings() {
    let logs = Captured::default();
    let writer = logs.clone();
    // Everything, at every level, in the JSON format of `log_format = "json"`; only the test's
    // own HTTP client is left out.
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,reqwest=off,hyper_util=off",
        ))
        .with_writer(move || writer.clone())
        .init();
    let app = spawn_app().await;
    // A real session, so that the cookie-held and bearer requests below get past their
    // first checks.
    let browser = browser();
    let tokens = app
        .tokens_for(&browser, PUBLIC_CLIENT, "openid offline_access")
        .await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();

    // Secrets in every place a request carries them.
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{CONFIDENTIAL_CLIENT}:{}", app.client_secret));
    let statuses =
        [
            http()
                .get(app.url(
                    "/authorize?client_id=spa&state=SECRET-STATE&code_challenge=SECRET-CHALLENGE",
                ))
                .header("x-request-id", "corr-authorize-1")
                .header("cookie", "ostiary_session=SECRET-COOKIE")
                .send()
                .await
                .unwrap()
                .status(),
            http()
                .post(app.url("/token"))
                .header("x-request-id", "corr-token-2")
                .header("authorization", format!("Basic {basic}"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "SECRET-REFRESH-TOKEN"),
                ])
                .send()
                .await
                .unwrap()
                .status(),
            http()
                .get(app.url("/userinfo"))
                .header("x-request-id", "corr-userinfo-3")
                .bearer_auth(&access_token)
                .send()
                .await
                .unwrap()
                .status(),
            browser
                .get(app.url("/account?code=SECRET-CODE"))
                .header("x-request-id", "corr-account-4")
                .send()
                .await
                .unwrap()
                .status(),
            app.refresh(&refresh_token).await.status(),
            http()
                .get(app.url("/metrics"))
                .header("x-request-id", "corr-metrics-5")
                .bearer_auth(METRICS_TOKEN)
                .send()
                .await
                .unwrap()
                .status(),
        ];
    assert_eq!(statuses.map(|s| s.as_u16()), [400, 400, 200, 200, 200, 200]);

    let text = logs.text();
    for id in [
        "corr-authorize-1",
        "corr-token-2",
        "corr-userinfo-3",
        "corr-account-4",
        "corr-metrics-5",
    ] {
        assert!(
            text.lines()
                .any(|line| line.contains(&format!("\"request_id\":\"{id}\""))),
            "no log line of request {id}:\n{text}"
        );
    }
    let secrets = [
        "SECRET-",
        basic.as_str(),
        app.client_secret.as_str(),
        refresh_token.as_str(),
        access_token.as_str(),
        METRICS_TOKEN,
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} was logged:\n{text}");
    }
    // The browser's session cookie: whatever its value, it is a 43-character credential that
    // must not appear either; its name would come with it.
    assert!(!text.contains("ostiary_session="), "{text}");
}
