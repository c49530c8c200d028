//! `ostiary demo`: the identity provider, a demo API and a demo single-page app, each on its own
//! origin, on a fresh temporary database.
//!
//! The three origins are `auth.ostiary.localhost`, `api.ostiary.localhost` and
//! `app.ostiary.localhost`, all served on 127.0.0.1. Browsers resolve `*.localhost` to loopback
//! and treat it as a secure context, so the IdP's `Secure`, `__Host-` cookies work over plain
//! http with no relaxation. Separate host names (not ports: cookies ignore ports) keep each
//! origin's cookies its own, and all three are one *site* (`ostiary.localhost`), as
//! `auth.example.com` and `app.example.com` would be in production: that is what lets the
//! IdP's `SameSite=Strict` refresh cookie reach it from the app's `fetch`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ostiary_core::client::{ClientId, ClientKind, RedirectUri};
use ostiary_core::clock::SystemClock;
use ostiary_core::idp::NewClient;
use ostiary_core::secret::{Credential, Password};
use ostiary_core::session::ClientPolicy;
use ostiary_core::user::Username;
use ostiary_demo::{DemoApi, DemoApp, DemoAppConfig};
use ostiary_server::{Application, ServerConfig};
use ostiary_verify::{Algorithm, JwksSource, RevocationFeed, Validator};

use crate::settings::Settings;

/// Ports and knobs of the demo. Everything binds 127.0.0.1.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Port of the identity provider, http://auth.ostiary.localhost:PORT.
    #[arg(long, default_value_t = 8080)]
    idp_port: u16,
    /// Port of the demo API (a resource server using ostiary-verify),
    /// http://api.ostiary.localhost:PORT.
    #[arg(long, default_value_t = 8081)]
    api_port: u16,
    /// Port of the demo single-page app, http://app.ostiary.localhost:PORT.
    #[arg(long, default_value_t = 8082)]
    app_port: u16,
    /// Access-token lifetime, seconds (short values show silent renewal).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    access_token_ttl: i64,
    /// Clock skew the demo API allows on exp/nbf/iat, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    api_leeway: u64,
    /// Password of the demo user [default: random, printed at start].
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "OSTIARY_DEMO_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}", dir.path().join("ostiary-demo.db").display());
    let bind = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let issuer = format!("http://auth.ostiary.localhost:{}", args.idp_port);
    let api_url = format!("http://api.ostiary.localhost:{}", args.api_port);
    let app_url = format!("http://app.ostiary.localhost:{}", args.app_port);

    let settings = Settings {
        listen: bind(args.idp_port),
        issuer: Some(issuer.clone()),
        database_url,
        access_token_ttl: args.access_token_ttl,
        ..Settings::default()
    };
    let store = ostiary_store::open(&settings.database_url).await?;
    let config = ServerConfig {
        listen: settings.listen,
        idp: ostiary_core::IdpConfig {
            key_encryption_key: crate::kek::resolve(&settings, store.as_ref()).await?,
            ..settings.idp_config()?
        },
        http: settings.http.timeouts(),
        ..ServerConfig::default()
    };
    let busy = "pick other ports with --idp-port, --api-port and --app-port";
    let app = Application::build(config, store, Arc::new(SystemClock))
        .await
        .map_err(|e| anyhow::anyhow!("{e} ({busy})"))?;
    let idp = app.idp().clone();

    let password = args
        .password
        .unwrap_or_else(|| Credential::generate().expose()[..16].to_owned());
    idp.add_user(Username::parse("demo")?, Password::new(password.clone()))
        .await?;
    idp.add_client(NewClient {
        id: ClientId::parse("demo-spa")?,
        kind: ClientKind::Browser,
        redirect_uris: vec![RedirectUri::parse(&format!("{app_url}/"))?],
        post_logout_redirect_uris: vec![RedirectUri::parse(&format!("{app_url}/"))?],
        resources: vec![api_url.clone()],
        extra_scopes: vec![],
        web_origins: vec![],
        backchannel_logout_uri: None,
        // Its tokens are DPoP-bound (RFC 9449) to a key the page keeps in IndexedDB.
        policy: ClientPolicy {
            require_dpop: Some(true),
            ..ClientPolicy::default()
        },
    })
    .await?;

    // The API fetches the JWKS server-side, where `*.localhost` may not resolve: it asks the
    // IdP's socket directly. Browsers use the host names.
    let jwks = JwksSource::remote(format!("http://127.0.0.1:{}/jwks.json", args.idp_port));
    // It follows the revocation feed too: a logout reaches it within about a second.
    let feed = RevocationFeed::new(&format!("http://127.0.0.1:{}/revocations", args.idp_port))?;
    let _follower = feed.spawn(ostiary_verify::revocation::DEFAULT_POLL_INTERVAL);
    let validator = Validator::new(issuer.clone(), api_url.clone(), &[Algorithm::ES256], jwks)?
        .with_leeway(std::time::Duration::from_secs(args.api_leeway))
        .with_revocation_feed(feed)
        // Proofs name the API's public URL; bearer tokens are refused.
        .with_public_url(api_url.clone())
        .with_dpop_required();
    let api = DemoApi::bind(
        bind(args.api_port),
        validator,
        std::slice::from_ref(&app_url),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot listen on port {}: {e} ({busy})", args.api_port))?;
    let spa = DemoApp::bind(
        bind(args.app_port),
        DemoAppConfig {
            issuer: issuer.clone(),
            client_id: "demo-spa".into(),
            app_url: app_url.clone(),
            api_url: api_url.clone(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot listen on port {}: {e} ({busy})", args.app_port))?;

    out!()?;
    out!(
        "Ostiary demo is running (fresh database in {}):",
        dir.path().display()
    )?;
    out!("  identity provider  {issuer}   (discovery: {issuer}/.well-known/openid-configuration)")?;
    out!(
        "  demo API           {api_url}   (GET /api/hello needs a DPoP-bound access token for {api_url})"
    )?;
    out!("  demo app           {app_url}   (a single-page app; client_id demo-spa)")?;
    out!()?;
    out!("Open {app_url}/ in a browser (Chromium, Chrome, Firefox and Edge resolve *.localhost")?;
    out!("to this machine) and sign in as:")?;
    out!("  username: demo")?;
    out!("  password: {password}")?;
    out!()?;
    out!("Press Ctrl-C to stop.")?;

    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let wait = |tx: &tokio::sync::broadcast::Sender<()>| {
        let mut rx = tx.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };
    let servers = tokio::spawn({
        let (a, b, c) = (wait(&stop_tx), wait(&stop_tx), wait(&stop_tx));
        async move { tokio::join!(app.run_until(a), api.run_until(b), spa.run_until(c)) }
    });
    super::shutdown_signal().await;
    let _ = stop_tx.send(());
    let _ = servers.await;
    drop(dir);
    Ok(())
}
