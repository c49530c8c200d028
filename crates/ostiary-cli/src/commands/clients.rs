//! `ostiary client …`.

use clap::Subcommand;
use ostiary_core::client::{Client, ClientId, ClientKind, RedirectUri, WebOrigin};
use ostiary_core::idp::NewClient;
use ostiary_core::session::{ClientPolicy, SessionLimitAction};
use serde_json::json;

use crate::settings::Settings;

/// Client administration.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. A confidential client (the default) gets a generated secret, shown
    /// once: only its hash is stored.
    Add {
        /// The client_id: 1 to 128 characters of letters, digits and . _ : -.
        client_id: String,
        /// A redirect URI (repeatable). https, or http on a loopback host; matched exactly as
        /// text. Registered as http://127.0.0.1/PATH or http://[::1]/PATH without a port, any
        /// port is accepted (native apps, RFC 8252 §7.3).
        #[arg(long = "redirect-uri", value_name = "URI", required = true)]
        redirect_uris: Vec<String>,
        /// Where the end-session endpoint may send the browser after logout (repeatable).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// A resource (RFC 8707) the client may get access tokens for: the tokens' `aud`
        /// (repeatable; the first is the default). [default: none; the client then gets tokens only for the IdP's
        /// userinfo endpoint, wherever the IdP is served]
        #[arg(long = "resource", value_name = "URI")]
        resources: Vec<String>,
        /// An extra scope the client may request besides openid, profile, offline_access
        /// (repeatable).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// A public client (native app, or a browser app that keeps its own refresh token): no
        /// secret, PKCE only.
        #[arg(long, conflicts_with = "browser")]
        public: bool,
        /// A browser client (single-page app): public, PKCE, and its refresh token is kept by
        /// the IdP in an HttpOnly cookie on the IdP's origin, never given to the app's script.
        /// The app calls the IdP's browser endpoints from its web origins (CORS).
        #[arg(long)]
        browser: bool,
        /// A web origin (scheme://host[:port]) allowed to call the IdP from script (repeatable;
        /// browser clients only). [default: the origins of the redirect URIs]
        #[arg(long = "web-origin", value_name = "ORIGIN", requires = "browser")]
        web_origins: Vec<String>,
        /// OpenID Connect Back-Channel Logout endpoint: when a session in which this client got
        /// tokens ends, the IdP POSTs a logout token there (retried with backoff until it is
        /// accepted, or given up after 8 attempts).
        #[arg(long, value_name = "URI")]
        backchannel_logout_uri: Option<String>,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Print what was created as JSON (including the secret, once).
        #[arg(long)]
        json: bool,
    },
    /// Replace a client's overrides of the global session policy. Options left out follow
    /// the global `[session]` settings (so `set-policy ID` alone clears every override). Takes
    /// effect at the client's next request, for sessions that exist already too.
    SetPolicy {
        /// The client_id.
        client_id: String,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// List clients.
    List {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// A client's overrides of the global session policy (see `ClientPolicy`). The session
/// itself still ends at the global limits; these act on the client's own tokens.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// Seconds without a refresh after which this client's refresh token in a session stops
    /// working (the session and other clients go on). [default: only the session's idle timeout]
    #[arg(long, value_name = "SECONDS")]
    idle_timeout: Option<i64>,
    /// Seconds after the code exchange after which this client's refresh token stops
    /// working. [default: only the session's absolute lifetime]
    #[arg(long, value_name = "SECONDS")]
    absolute_lifetime: Option<i64>,
    /// Refresh grace window for this client, in seconds. [default: session.refresh_grace]
    #[arg(long, value_name = "SECONDS")]
    refresh_grace: Option<i64>,
    /// How long after a rotation, in seconds, this client's previous refresh token may still
    /// recover a successor it never received (a lost response); 0: never. [default:
    /// session.refresh_recovery, or 0 when --refresh-grace is 0]
    #[arg(long, value_name = "SECONDS")]
    refresh_recovery: Option<i64>,
    /// Most sessions of one user that may hold tokens of this client at once (1: one session
    /// per user for this app; 0: no limit). [default: no limit]
    #[arg(long, value_name = "N")]
    max_sessions_per_user: Option<u32>,
    /// What getting tokens in one more session does: end_oldest (the oldest of those
    /// sessions ends) or refuse_new_login. [default: session.on_session_limit]
    #[arg(long, value_name = "MODE", value_parser = parse_limit_action)]
    on_session_limit: Option<SessionLimitAction>,
    /// Every token request of this client must carry a DPoP proof (RFC 9449): its tokens
    /// are always bound to the client's key, bearer tokens are refused. [default: optional]
    #[arg(long)]
    require_dpop: bool,
    /// This client's DPoP proofs must carry a fresh nonce from the IdP (RFC 9449 §8): a
    /// proof without one is answered use_dpop_nonce with the nonce in the DPoP-Nonce header.
    /// [default: no nonce needed]
    #[arg(long)]
    require_dpop_nonce: bool,
}

impl From<PolicyArgs> for ClientPolicy {
    fn from(args: PolicyArgs) -> Self {
        ClientPolicy {
            idle_timeout: args.idle_timeout,
            absolute_lifetime: args.absolute_lifetime,
            refresh_grace: args.refresh_grace,
            refresh_recovery: args.refresh_recovery,
            max_sessions_per_user: args.max_sessions_per_user,
            on_session_limit: args.on_session_limit,
            require_dpop: args.require_dpop.then_some(true),
            require_dpop_nonce: args.require_dpop_nonce.then_some(true),
        }
    }
}

fn parse_limit_action(value: &str) -> Result<SessionLimitAction, String> {
    match value {
        "end_oldest" => Ok(SessionLimitAction::EndOldest),
        "refuse_new_login" => Ok(SessionLimitAction::RefuseNewLogin),
        _ => Err("end_oldest or refuse_new_login".into()),
    }
}

fn describe(client: &Client) -> serde_json::Value {
    json!({
        "client_id": client.id,
        "kind": client.kind,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "resources": client.allowed_resources,
        // With no resource registered, tokens are for the IdP's userinfo endpoint.
        "default_resource": client.allowed_resources.first(),
        "extra_scopes": client.extra_scopes,
        "web_origins": client.web_origins,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "policy": client.policy,
        "token_endpoint_auth_method": match client.kind {
            ClientKind::Confidential => "client_secret_basic",
            ClientKind::Public | ClientKind::Browser => "none",
        },
    })
}

fn parse_uris(values: &[String]) -> anyhow::Result<Vec<RedirectUri>> {
    values
        .iter()
        .map(|v| RedirectUri::parse(v).map_err(|e| anyhow::anyhow!("{v}: {e}")))
        .collect()
}

/// Runs a client command.
pub async fn run(command: ClientCommand, settings: &Settings) -> anyhow::Result<()> {
    let idp = super::open_idp(settings).await?;
    match command {
        ClientCommand::Add {
            client_id,
            redirect_uris,
            post_logout_redirect_uris,
            resources,
            scopes,
            public,
            browser,
            web_origins,
            backchannel_logout_uri,
            policy,
            json,
        } => {
            let new = NewClient {
                id: ClientId::parse(&client_id)?,
                kind: match (public, browser) {
                    (_, true) => ClientKind::Browser,
                    (true, false) => ClientKind::Public,
                    (false, false) => ClientKind::Confidential,
                },
                redirect_uris: parse_uris(&redirect_uris)?,
                post_logout_redirect_uris: parse_uris(&post_logout_redirect_uris)?,
                resources,
                extra_scopes: scopes,
                web_origins: web_origins
                    .iter()
                    .map(|o| WebOrigin::parse(o).map_err(|e| anyhow::anyhow!("{o}: {e}")))
                    .collect::<anyhow::Result<_>>()?,
                backchannel_logout_uri: backchannel_logout_uri
                    .as_deref()
                    .map(|u| RedirectUri::parse(u).map_err(|e| anyhow::anyhow!("{u}: {e}")))
                    .transpose()?,
                policy: policy.into(),
            };
            let (client, secret) = idp.add_client(new).await?;
            let mut created = describe(&client);
            if let Some(secret) = &secret {
                created["client_secret"] = json!(secret.expose());
            }
            if json {
                out!("{created}")?;
            } else {
                out!("created client {}", client.id)?;
                if let Some(secret) = &secret {
                    out!("client_secret: {}", secret.expose())?;
                    out!("(shown once: only its hash is stored)")?;
                }
            }
        }
        ClientCommand::SetPolicy { client_id, policy } => {
            let client_id = ClientId::parse(&client_id)?;
            let policy = ClientPolicy::from(policy);
            idp.set_client_policy(&client_id, policy).await?;
            out!("client {client_id}: policy {}", json!(policy))?;
        }
        ClientCommand::List { json } => {
            for client in idp.store().list_clients().await? {
                if json {
                    out!("{}", describe(&client))?;
                } else {
                    let uris: Vec<&str> = client
                        .redirect_uris
                        .iter()
                        .map(RedirectUri::as_str)
                        .collect();
                    out!(
                        "{:<24} {:<13} {}",
                        client.id,
                        client.kind.as_str(),
                        uris.join(" ")
                    )?;
                }
            }
        }
    }
    Ok(())
}
