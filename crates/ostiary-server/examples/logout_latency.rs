//! Measures how long a logout takes to reach a resource server: from the end-session
//! response to the demo API (following the revocation feed's event stream) answering
//! 401 to the old access token. Everything runs in this process on 127.0.0.1.
//!
//! Run: `cargo run --release -p ostiary-server --example logout_latency [ROUNDS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use ostiary_core::client::{ClientId, ClientKind, RedirectUri};
use ostiary_core::clock::SystemClock;
use ostiary_core::idp::{IdpConfig, NewClient};
use ostiary_core::secret::Password;
use ostiary_core::user::Username;
use ostiary_server::{Application, ServerConfig};
use ostiary_verify::revocation::DEFAULT_POLL_INTERVAL;
use ostiary_verify::{Algorithm, JwksSource, RevocationFeed, Validator};

#[path = "support/sign_in.rs"]
mod support;
use support::{SignIn, sign_in};

const API: &str = "https://api.latency.test";
const REDIRECT: &str = "http://127.0.0.1/cb";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir()?;
    let store = ostiary_store::open(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await?;
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse()?,
        idp: IdpConfig {
            issuer: String::new(),
            ..IdpConfig::default()
        },
        ..ServerConfig::default()
    };
    let app = Application::build(config, store, Arc::new(SystemClock)).await?;
    let base = format!("http://{}", app.local_addr());
    let idp = app.idp().clone();
    idp.add_user(Username::parse("bench")?, Password::new("bench-passw0rd"))
        .await?;
    idp.add_client(NewClient {
        id: ClientId::parse("bench")?,
        kind: ClientKind::Public,
        redirect_uris: vec![RedirectUri::parse(REDIRECT)?],
        post_logout_redirect_uris: vec![],
        resources: vec![API.into()],
        extra_scopes: vec![],
        web_origins: vec![],
        backchannel_logout_uri: None,
        policy: Default::default(),
    })
    .await?;
    tokio::spawn(app.run());

    let feed = RevocationFeed::new(&format!("{base}/revocations"))?;
    let _follower = feed.spawn(DEFAULT_POLL_INTERVAL);
    let validator = Validator::new(
        base.clone(),
        API,
        &[Algorithm::ES256],
        JwksSource::remote(format!("{base}/jwks.json")),
    )?
    .with_revocation_feed(feed);
    let api = ostiary_demo::DemoApi::bind("127.0.0.1:0".parse()?, validator, &[]).await?;
    let api_url = format!("http://{}/api/hello", api.local_addr()?);
    tokio::spawn(api.run_until(std::future::pending()));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        // Sign in through the login form and the authorization endpoint, then redeem the code.
        let tokens = sign_in(&SignIn {
            base: &base,
            client_id: "bench",
            redirect_uri: REDIRECT,
            scope: "openid",
            username: "bench",
            password: "bench-passw0rd",
        })
        .await?;
        let access_token = tokens["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let id_token = tokens["id_token"].as_str().unwrap_or_default().to_owned();
        anyhow::ensure!(
            http.get(&api_url)
                .bearer_auth(&access_token)
                .send()
                .await?
                .status()
                == 200,
            "API refused a fresh token"
        );

        // Log out, then ask the API until it refuses the old token.
        http.get(format!("{base}/logout"))
            .query(&[("id_token_hint", &id_token)])
            .send()
            .await?;
        let logged_out = Instant::now();
        loop {
            if http
                .get(&api_url)
                .bearer_auth(&access_token)
                .send()
                .await?
                .status()
                == 401
            {
                break;
            }
            anyhow::ensure!(
                logged_out.elapsed() < Duration::from_secs(10),
                "the API still accepts the token after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(logged_out.elapsed());
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "logout -> API rejects the old access token, {rounds} rounds: min {:.0} ms, median {:.0} ms, max {:.0} ms",
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1])
    );
    Ok(())
}
