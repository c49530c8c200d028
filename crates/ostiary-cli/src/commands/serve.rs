//! `ostiary serve`.

use std::sync::Arc;

use ostiary_core::clock::SystemClock;
use ostiary_server::{Application, ServerConfig};

use crate::settings::Settings;

/// Runs the IdP until Ctrl-C or SIGTERM.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    // A missing key-encryption key is named before the database is touched.
    crate::kek::precheck(&settings)?;
    let store = super::open_store(&settings).await?;
    let idp = ostiary_core::IdpConfig {
        key_encryption_key: crate::kek::resolve(&settings, store.as_ref()).await?,
        ..settings.idp_config()?
    };
    let config = ServerConfig {
        listen: settings.listen,
        idp,
        dangerous_insecure_cookies: settings.dangerous_insecure_cookies,
        admin_token: settings
            .admin_token
            .as_ref()
            .map(|t| ostiary_core::secret::Credential::from_presented(t.expose())),
        metrics_token: settings
            .metrics_token
            .as_ref()
            .map(|t| ostiary_core::secret::Credential::from_presented(t.expose())),
        trusted_proxies: settings.trusted_proxies()?,
        http: settings.http.timeouts(),
        ..ServerConfig::default()
    };
    let app = Application::build(config, store, Arc::new(SystemClock))
        .await
        .map_err(|e| match e {
            ostiary_server::StartError::Bind(..) => {
                anyhow::anyhow!("{e} (pick another address with --listen, e.g. 127.0.0.1:8090)")
            }
            other => other.into(),
        })?;
    let issuer = app.idp().config().issuer.clone();
    if issuer.starts_with("http://") && !is_loopback_issuer(&issuer) {
        tracing::warn!(%issuer, "the issuer is plain http on a non-loopback host: browsers will refuse its Secure cookies; use https");
    }
    tracing::info!(%issuer, listen = %app.local_addr(), "ostiary is serving");
    // One line on standard output for scripts (port 0 picks a free port). A reader that has
    // gone is no reason to stop serving: stopping would look like a clean shutdown to a
    // supervisor, and the line is all that serve writes there.
    if let Err(e) = out!(
        "ostiary listening on http://{} (issuer {issuer})",
        app.local_addr()
    ) {
        tracing::warn!(error = %e, "the listening line was not written");
    }
    app.run_until(super::shutdown_signal()).await?;
    Ok(())
}

fn is_loopback_issuer(issuer: &str) -> bool {
    url::Url::parse(issuer).is_ok_and(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        None => false,
    })
}
