//! `ostiary client …`.

use clap::Subcommand;
use ostiary_core::client::{Client, ClientId, ClientKind, RedirectUri};
use ostiary_core::idp::NewClient;
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
        /// A redirect URI (repeatable). https, or http on a loopback host; matched exactly
        /// (for http://127.0.0.1 and http://[::1] any port is accepted, RFC 8252 §7.3).
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
        /// A public client (browser or native app): no secret, PKCE only.
        #[arg(long)]
        public: bool,
        /// Print what was created as JSON (including the secret, once).
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
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
        "token_endpoint_auth_method": match client.kind {
            ClientKind::Confidential => "client_secret_basic",
            ClientKind::Public => "none",
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
            json,
        } => {
            let new = NewClient {
                id: ClientId::parse(&client_id)?,
                kind: if public {
                    ClientKind::Public
                } else {
                    ClientKind::Confidential
                },
                redirect_uris: parse_uris(&redirect_uris)?,
                post_logout_redirect_uris: parse_uris(&post_logout_redirect_uris)?,
                resources,
                extra_scopes: scopes,
            };
            let (client, secret) = idp.add_client(new).await?;
            let mut created = describe(&client);
            if let Some(secret) = &secret {
                created["client_secret"] = json!(secret.expose());
            }
            if json {
                println!("{created}");
            } else {
                println!("created client {}", client.id);
                if let Some(secret) = &secret {
                    println!("client_secret: {}", secret.expose());
                    println!("(shown once: only its hash is stored)");
                }
            }
        }
        ClientCommand::List { json } => {
            for client in idp.store().list_clients().await? {
                if json {
                    println!("{}", describe(&client));
                } else {
                    let uris: Vec<&str> = client
                        .redirect_uris
                        .iter()
                        .map(RedirectUri::as_str)
                        .collect();
                    println!(
                        "{:<24} {:<13} {}",
                        client.id,
                        client.kind.as_str(),
                        uris.join(" ")
                    );
                }
            }
        }
    }
    Ok(())
}
