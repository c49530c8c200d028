//! Sending back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.5): the HTTP
//! side of [`ostiary_core::idp::LogoutSender`], and the background task that delivers what is
//! due whenever a session ends (and every few seconds, for retries and for sessions ended by
//! other processes).

use std::time::Duration;

use ostiary_core::Idp;
use ostiary_core::idp::LogoutSender;

/// How long one delivery may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the worker looks for due deliveries without being woken.
const POLL: Duration = Duration::from_secs(5);

/// POSTs `logout_token=…` (form-encoded) with reqwest; a 2xx answer is success.
#[derive(Debug, Clone)]
pub struct HttpLogoutSender {
    http: reqwest::Client,
}

impl HttpLogoutSender {
    /// A sender with a 5 s timeout that follows no redirects.
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http })
    }
}

#[async_trait::async_trait]
impl LogoutSender for HttpLogoutSender {
    async fn send(&self, uri: &str, logout_token: &str) -> Result<(), String> {
        let response = self
            .http
            .post(uri)
            .header(http::header::CACHE_CONTROL, "no-store")
            .form(&[("logout_token", logout_token)])
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status()))
        }
    }
}

/// Delivers due logout tokens until `stop` resolves.
pub async fn run_worker(
    idp: Idp,
    sender: HttpLogoutSender,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let notifier = idp.revocation_notifier();
    let mut stop = stop;
    loop {
        let woken = notifier.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        loop {
            match idp.deliver_backchannel_logouts(&sender, 100).await {
                Ok(100) => continue, // more may be due
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "back-channel logout delivery failed");
                    break;
                }
            }
        }
        tokio::select! {
            () = &mut woken => {}
            () = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
    }
}
