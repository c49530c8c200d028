//! `ostiary session …`: see and end sessions, as an administrator.

use clap::Subcommand;
use ostiary_core::idp::EndWhich;
use ostiary_core::session::EndReason;
use ostiary_core::user::Username;
use serde_json::json;

use crate::settings::Settings;

/// Session administration.
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List active sessions (newest first): sid, user, created, last used, IP, user agent, and
    /// the clients holding refresh tokens in it. Times are Unix seconds.
    List {
        /// Only this user's sessions (login name).
        #[arg(long, value_name = "USERNAME")]
        user: Option<String>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End sessions now: their refresh tokens stop working, and the revocation feed tells
    /// resource servers to drop their access tokens.
    Revoke {
        /// The session to end.
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        sid: Option<String>,
        /// End every session of this user (login name).
        #[arg(long, value_name = "USERNAME")]
        user: Option<String>,
    },
}

/// Runs a session command.
pub async fn run(command: SessionCommand, settings: &Settings) -> anyhow::Result<()> {
    let idp = super::open_idp(settings).await?;
    let user_id = |name: String| {
        let idp = idp.clone();
        async move {
            let username = Username::parse(&name)?;
            let user = idp.store().find_user_by_username(&username).await?;
            anyhow::Ok(user.ok_or_else(|| anyhow::anyhow!("no user {name}"))?)
        }
    };
    match command {
        SessionCommand::List { user, json } => {
            let filter = match user {
                Some(name) => Some(user_id(name).await?.id),
                None => None,
            };
            for (session, clients) in idp.active_sessions(filter.as_deref()).await? {
                if json {
                    out!(
                        "{}",
                        json!({
                            "sid": session.sid, "user_id": session.user_id, "created_at": session.created_at,
                            "last_used_at": session.last_used_at, "ip": session.ip, "user_agent": session.user_agent,
                            "clients": clients,
                        })
                    )?;
                } else {
                    out!(
                        "{:<24} {:<24} created {} last used {} {} {} [{}]",
                        session.sid,
                        session.user_id,
                        session.created_at,
                        session.last_used_at,
                        session.ip.as_deref().unwrap_or("-"),
                        session.user_agent.as_deref().unwrap_or("-"),
                        clients.join(",")
                    )?;
                }
            }
        }
        SessionCommand::Revoke { sid: Some(sid), .. } => {
            let session = idp
                .store()
                .find_session(&sid)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no session {sid}"))?;
            let ended = idp
                .end_sessions(
                    &session.user_id,
                    EndWhich::One(&sid),
                    EndReason::AdminRevoked,
                )
                .await?;
            out!("ended {} session(s)", ended.len())?;
        }
        SessionCommand::Revoke {
            sid: None,
            user: Some(name),
        } => {
            let user = user_id(name).await?;
            let ended = idp
                .end_sessions(&user.id, EndWhich::All, EndReason::AdminRevoked)
                .await?;
            out!("ended {} session(s)", ended.len())?;
        }
        SessionCommand::Revoke {
            sid: None,
            user: None,
        } => anyhow::bail!("name a session or --user"),
    }
    Ok(())
}
