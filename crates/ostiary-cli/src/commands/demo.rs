//! `ostiary demo`: everything on loopback, on a fresh temporary database.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ostiary_core::client::{ClientId, ClientKind, RedirectUri};
use ostiary_core::clock::SystemClock;
use ostiary_core::idp::NewClient;
use ostiary_core::secret::{Credential, Password};
use ostiary_core::user::Username;
use ostiary_demo::DemoApi;
use ostiary_server::{Application, ServerConfig};
use ostiary_verify::{Algorithm, JwksSource, Validator};

use crate::settings::Settings;

/// Ports of the demo. Everything binds 127.0.0.1.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Port of the identity provider.
    #[arg(long, default_value_t = 8080)]
    idp_port: u16,
    /// Port of the demo API (a resource server using ostiary-verify).
    #[arg(long, default_value_t = 8081)]
    api_port: u16,
    /// Port of the demo web app (an OAuth client).
    #[arg(long, default_value_t = 8082)]
    app_port: u16,
}

/// Runs the demo until Ctrl-C.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}", dir.path().join("ostiary-demo.db").display());
    let idp_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.idp_port));
    let api_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.api_port));
    let app_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.app_port));
    let issuer = format!("http://{idp_addr}");
    let api_url = format!("http://{api_addr}");
    let app_url = format!("http://{app_addr}");

    let settings = Settings {
        listen: idp_addr,
        issuer: Some(issuer.clone()),
        database_url,
        ..Settings::default()
    };
    let store = ostiary_store::open(&settings.database_url).await?;
    let app = Application::build(
        ServerConfig {
            listen: idp_addr,
            idp: settings.idp_config(),
            dangerous_insecure_cookies: false,
        },
        store,
        Arc::new(SystemClock),
    )
    .await?;
    let idp = app.idp().clone();

    let password = Credential::generate().expose()[..16].to_owned();
    idp.add_user(Username::parse("demo")?, Password::new(password.clone()))
        .await?;
    idp.add_client(NewClient {
        id: ClientId::parse("demo-app")?,
        kind: ClientKind::Public,
        redirect_uris: vec![RedirectUri::parse(&format!("{app_url}/callback"))?],
        post_logout_redirect_uris: vec![RedirectUri::parse(&format!("{app_url}/"))?],
        resources: vec![api_url.clone()],
        extra_scopes: vec![],
        web_origins: vec![],
    })
    .await?;

    let validator = Validator::new(
        issuer.clone(),
        api_url.clone(),
        &[Algorithm::ES256],
        JwksSource::remote(format!("{issuer}/jwks.json")),
    )?;
    let api = DemoApi::bind(api_addr, validator).await?;
    let web = ostiary_demo::DemoApp::bind(
        app_addr,
        ostiary_demo::DemoAppConfig {
            issuer: issuer.clone(),
            client_id: "demo-app".into(),
            app_url: app_url.clone(),
            api_url: api_url.clone(),
        },
    )
    .await?;

    println!();
    println!(
        "Ostiary demo is running (fresh database in {}):",
        dir.path().display()
    );
    println!(
        "  identity provider  {issuer}   (discovery: {issuer}/.well-known/openid-configuration)"
    );
    println!(
        "  demo API           {api_url}   (GET /api/hello needs an access token for audience {api_url})"
    );
    println!("  demo web app       {app_url}   (client_id demo-app, public, PKCE)");
    println!();
    println!("Open {app_url}/ in a browser and sign in as:");
    println!("  username: demo");
    println!("  password: {password}");
    println!();
    println!("Press Ctrl-C to stop.");

    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let wait = |tx: &tokio::sync::broadcast::Sender<()>| {
        let mut rx = tx.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };
    let servers = tokio::spawn({
        let (a, b, c) = (wait(&stop_tx), wait(&stop_tx), wait(&stop_tx));
        async move { tokio::join!(app.run_until(a), api.run_until(b), web.run_until(c)) }
    });
    super::shutdown_signal().await;
    let _ = stop_tx.send(());
    let _ = servers.await;
    drop(dir);
    Ok(())
}
