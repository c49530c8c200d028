//! `ostiary user …`.

use std::io::Read as _;

use clap::Subcommand;
use ostiary_core::secret::Password;
use ostiary_core::user::Username;

use crate::settings::Settings;

/// User administration.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input (never from an argument, which
    /// other users of the machine could see).
    Add {
        /// Login name: 1 to 64 characters of letters, digits and . _ @ + -.
        username: String,
        /// Read the password from standard input (one line; a trailing newline is removed).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List users.
    List {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set a new password, read from standard input. Every session of the user ends now.
    SetPassword {
        /// The user's login name.
        username: String,
        /// Read the password from standard input (one line; a trailing newline is removed).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable a user: no more logins or refreshes, and every session of the user ends now.
    Disable {
        /// The user's login name.
        username: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user's login name.
        username: String,
    },
    /// Clear the user's failed-login counters (from every address), so that a sign-in held
    /// back by the throttle goes ahead at once. `set-password` does this too.
    Unlock {
        /// The user's login name.
        username: String,
    },
}

/// Reads a password from standard input: its first line, without the newline.
fn read_password() -> anyhow::Result<Password> {
    let mut input = String::new();
    std::io::stdin()
        .take(Password::MAX_BYTES as u64 + 2)
        .read_to_string(&mut input)?;
    Ok(Password::new(input.lines().next().unwrap_or("")))
}

/// Runs a user command.
pub async fn run(command: UserCommand, settings: &Settings) -> anyhow::Result<()> {
    let idp = super::open_idp(settings).await?;
    match command {
        UserCommand::Add {
            username,
            password_stdin: _,
        } => {
            let username = Username::parse(&username)?;
            let user = idp.add_user(username, read_password()?).await?;
            out!("created user {} (sub {})", user.username, user.id)?;
        }
        UserCommand::List { json } => {
            for user in idp.store().list_users().await? {
                if json {
                    out!(
                        "{}",
                        serde_json::json!({"username": user.username, "sub": user.id, "disabled": user.disabled, "created_at": user.created_at})
                    )?;
                } else {
                    out!(
                        "{:<32} {:<24} {}",
                        user.username,
                        user.id,
                        if user.disabled { "disabled" } else { "active" }
                    )?;
                }
            }
        }
        UserCommand::SetPassword {
            username,
            password_stdin: _,
        } => {
            let username = Username::parse(&username)?;
            idp.set_password(&username, read_password()?).await?;
            out!("password of {username} changed; their sessions have ended")?;
        }
        UserCommand::Disable { username } => {
            idp.set_user_disabled(&Username::parse(&username)?, true)
                .await?;
            out!("disabled {username}; their sessions have ended")?;
        }
        UserCommand::Enable { username } => {
            idp.set_user_disabled(&Username::parse(&username)?, false)
                .await?;
            out!("enabled {username}")?;
        }
        UserCommand::Unlock { username } => {
            let cleared = idp
                .unlock_user(&Username::parse(&username)?, "admin")
                .await?;
            out!("cleared {cleared} failed-login counter(s) of {username}")?;
        }
    }
    Ok(())
}
