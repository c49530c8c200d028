//! `ostiary`: the identity provider's only binary. Each subcommand is a thin layer over the
//! library crates.
//!
//! # Layout
//! - `settings`: layered, typed settings (defaults < file < `OSTIARY_*` < flags).
//! - `commands::serve`: run the IdP.
//! - `commands::demo`: the IdP and a demo API with a demo user and client, on loopback.
//! - `commands::users`, `commands::clients`: administration against the same database.
//! - `commands::token`: verify an access token with `ostiary-verify`.
//! - `commands::audit`, `commands::sessions`: read the audit log; see and end sessions.
//! - `output`: standard output for every command (`out!`); a closed pipe ends the command
//!   quietly, with status 0.

// Every command writes through `output` (`println!` panics on a closed pipe).
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod output;
mod commands;
mod kek;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::{FlagOverrides, LogFormat, Settings};

/// Ostiary: an OAuth 2.0 / OpenID Connect identity provider with server-side sessions,
/// rotating refresh tokens with reuse detection, and real logout.
#[derive(Debug, Parser)]
#[command(name = "ostiary", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command that opens the database.
#[derive(Debug, clap::Args)]
struct DatabaseArgs {
    /// TOML config file [env: OSTIARY_CONFIG]. Settings are layered: defaults < this file <
    /// OSTIARY_* environment variables < flags.
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        env = "OSTIARY_CONFIG",
        hide_env = true
    )]
    config: Option<PathBuf>,
    /// Database URL [env: OSTIARY_DATABASE_URL] [default: sqlite://ostiary.db, created with
    /// its schema on first use].
    #[arg(long, value_name = "URL", global = true)]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the identity provider.
    #[command(after_help = SETTINGS_HELP)]
    Serve {
        /// Socket address to listen on [env: OSTIARY_LISTEN] [default: 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Public issuer URL, the `iss` of every token [env: OSTIARY_ISSUER] [default:
        /// http://{listen}]. Use https:// in production: the IdP's cookies are always `Secure`,
        /// which browsers accept over plain http only on localhost and 127.0.0.1.
        #[arg(long, value_name = "URL")]
        issuer: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Try Ostiary: start the IdP (fresh temporary SQLite database), a demo API and a demo
    /// single-page app on three origins (auth., api. and app.ostiary.localhost, all on
    /// 127.0.0.1), create a demo user and client, and print what to open and how to log in.
    Demo(commands::demo::DemoArgs),
    /// Manage users.
    User {
        #[command(subcommand)]
        command: commands::users::UserCommand,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Manage OAuth clients.
    Client {
        #[command(subcommand)]
        command: commands::clients::ClientCommand,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Back-channel logout deliveries.
    Backchannel {
        #[command(subcommand)]
        command: BackchannelCommand,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// See and end sessions.
    Session {
        #[command(subcommand)]
        command: commands::sessions::SessionCommand,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Read the audit log (JSON lines): logins, refreshes, reuse detections, logouts,
    /// revocations, administration.
    Audit {
        #[command(flatten)]
        filter: commands::audit::AuditArgs,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Signing keys: list, rotate, generate a key-encryption key.
    Keys {
        #[command(subcommand)]
        command: commands::keys::KeyCommand,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Apply pending database migrations (also done on start unless migrate_on_start =
    /// false).
    Migrate {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Work with tokens.
    Token {
        #[command(subcommand)]
        command: commands::token::TokenCommand,
    },
}

/// Settings that have no flag, shown by `ostiary serve --help`.
const SETTINGS_HELP: &str = "\
Settings without a flag: config file key (environment variable), then default and meaning.
  access_token_ttl (OSTIARY_ACCESS_TOKEN_TTL)
      300 seconds
  id_token_ttl (OSTIARY_ID_TOKEN_TTL)
      300 seconds
  authorization_code_ttl (OSTIARY_AUTHORIZATION_CODE_TTL)
      60 seconds (at most 600)
  access_token_alg (OSTIARY_ACCESS_TOKEN_ALG)
      ES256 (or EdDSA, RS256)
  dpop_proof_max_age (OSTIARY_DPOP_PROOF_MAX_AGE)
      60 seconds a DPoP proof's iat may be old (its jti is remembered as long)
  session.idle_timeout (OSTIARY_SESSION__IDLE_TIMEOUT)
      604800 seconds (7 days)
  session.absolute_lifetime (OSTIARY_SESSION__ABSOLUTE_LIFETIME)
      2592000 seconds (30 days)
  session.refresh_grace (OSTIARY_SESSION__REFRESH_GRACE)
      10 seconds
  session.refresh_recovery (OSTIARY_SESSION__REFRESH_RECOVERY)
      86400 seconds (0 when refresh_grace is 0): how long the previous refresh
      token recovers a successor never used (a lost response); 0: never
  session.max_sessions_per_user (OSTIARY_SESSION__MAX_SESSIONS_PER_USER)
      0 (no limit; 1 = one session per user)
  session.on_session_limit (OSTIARY_SESSION__ON_SESSION_LIMIT)
      end_oldest (or refuse_new_login)
  login_throttle.window (OSTIARY_LOGIN_THROTTLE__WINDOW)
      900 seconds a failed-login counter is kept after its last failure
  login_throttle.max_failures_per_user_and_ip
      (OSTIARY_LOGIN_THROTTLE__MAX_FAILURES_PER_USER_AND_IP)
      5; then one username from one address waits 1 s, 2 s, 4 s, ... between
      attempts (refused meanwhile)
  login_throttle.max_delay (OSTIARY_LOGIN_THROTTLE__MAX_DELAY)
      300 seconds, the longest such wait
  login_throttle.max_failures_per_user (OSTIARY_LOGIN_THROTTLE__MAX_FAILURES_PER_USER)
      100 from all addresses; then failed answers for the username are held
      back (a correct password never is)
  login_throttle.max_failures_per_ip (OSTIARY_LOGIN_THROTTLE__MAX_FAILURES_PER_IP)
      100 for all usernames; then failed answers to the address are held back
  login_throttle.max_failure_delay (OSTIARY_LOGIN_THROTTLE__MAX_FAILURE_DELAY)
      8 seconds, the longest hold-back (doubling from 1 s; 0: none)
  password_hashing.busy_share_percent
      (OSTIARY_PASSWORD_HASHING__BUSY_SHARE_PERCENT)
      20: while other requests are in flight, a password-hashing thread hashes
      at most this share of its time (sign-ins queue, refreshes keep their
      pace); 100: no pacing
  retention.audit_events (OSTIARY_RETENTION__AUDIT_EVENTS)
      34560000 seconds (400 days) an audit event is kept; 0: forever
  retention.ended_sessions (OSTIARY_RETENTION__ENDED_SESSIONS)
      2592000 seconds (30 days) an ended session, its refresh-token hashes,
      codes and deliveries are kept
  retention.authorization_codes (OSTIARY_RETENTION__AUTHORIZATION_CODES)
      86400 seconds a code is kept past its expiry (replays recognised)
  retention.backchannel_deliveries (OSTIARY_RETENTION__BACKCHANNEL_DELIVERIES)
      604800 seconds a delivered or given-up back-channel logout is kept
  retention.interval (OSTIARY_RETENTION__INTERVAL)
      300 seconds between passes of the retention job (which also ends
      sessions whose time ran out); one instance at a time runs it
  retention.batch_size (OSTIARY_RETENTION__BATCH_SIZE)
      1000 rows deleted per statement
  retention.max_batches (OSTIARY_RETENTION__MAX_BATCHES)
      100 batches of each kind per pass
  migrate_on_start (OSTIARY_MIGRATE_ON_START)
      true (false: refuse an outdated schema; apply it with `ostiary
      migrate`)
  keys.rotation_interval (OSTIARY_KEYS__ROTATION_INTERVAL)
      2592000 seconds (30 days; 0: only `ostiary keys rotate`)
  keys.publish_ahead (OSTIARY_KEYS__PUBLISH_AHEAD)
      3600 seconds a new key is published before it signs (at least 360)
  key_encryption_key (OSTIARY_KEY_ENCRYPTION_KEY)
      unset; base64 of 32 bytes sealing the signing keys at rest (`ostiary
      keys generate-kek`); required with PostgreSQL; a SQLite file otherwise
      gets its own, PATH.kek beside the database (mode 0600)
  key_encryption_key_file (OSTIARY_KEY_ENCRYPTION_KEY_FILE)
      unset; a file holding the key-encryption key instead
  log_format (OSTIARY_LOG_FORMAT)
      text (or json)
  admin_token (OSTIARY_ADMIN_TOKEN)
      unset: the admin API (/admin/...) is off; else its bearer token, at
      least 32 characters
  metrics_token (OSTIARY_METRICS_TOKEN)
      unset: /metrics is off; else Prometheus's bearer token, at least 32
      characters, not the admin token
  trusted_proxies (OSTIARY_TRUSTED_PROXIES)
      empty: X-Forwarded-For is ignored; else IPs/CIDRs (TOML array or
      comma-separated) whose X-Forwarded-For gives the client's address (the
      right-most untrusted hop)
  http.header_read_timeout (OSTIARY_HTTP__HEADER_READ_TIMEOUT)
      10 seconds to send a request's line and headers (from the connection's
      start, then from the first byte of each later request)
  http.request_body_timeout (OSTIARY_HTTP__REQUEST_BODY_TIMEOUT)
      10 seconds to send a request's whole body after its headers
  http.keep_alive_idle_timeout (OSTIARY_HTTP__KEEP_ALIVE_IDLE_TIMEOUT)
      75 seconds an idle keep-alive connection waits for its next request
      (keep a proxy's idle upstream timeout below it)
  dangerous_insecure_cookies (OSTIARY_DANGEROUS_INSECURE_COOKIES)
      false (development only: cookies without Secure and __Host-, for
      plain-HTTP clients that drop Secure cookies)
Log filter: OSTIARY_LOG (tracing EnvFilter syntax, default info).
Any other OSTIARY_* variable that is not a setting is refused at start (a misspelled
name would leave its setting at the default), except OSTIARY_CONFIG (--config),
OSTIARY_DEMO_PASSWORD and the test suites' OSTIARY_TEST_*, OSTIARY_BIN and
OSTIARY_LOADTEST_*.
In a TOML file, session.*, login_throttle.*, retention.*, keys.* and http.* go in
[session], [login_throttle], [retention], [keys] and [http] tables.";

#[derive(Debug, Subcommand)]
enum BackchannelCommand {
    /// List deliveries not yet made (pending retries and given-up ones) as JSON lines.
    List,
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OSTIARY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A log line that cannot be written to stderr is dropped: reporting that on stderr
        // (the default) would panic.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// The settings of a command that uses them, and its logging (on stderr), so that opening the
/// database is logged: which one, and whether it was empty.
fn load(db: &DatabaseArgs, mut flags: FlagOverrides) -> anyhow::Result<Settings> {
    flags.database_url = db.database_url.clone();
    let settings = Settings::load(db.config.as_ref(), &flags)?;
    init_tracing(settings.log_format);
    Ok(settings)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { listen, issuer, db } => {
            let settings = load(
                &db,
                FlagOverrides {
                    listen,
                    issuer,
                    database_url: None,
                },
            )?;
            commands::serve::run(settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            init_tracing(LogFormat::Text);
            commands::demo::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command, db } => {
            let settings = load(&db, FlagOverrides::default())?;
            commands::users::run(command, &settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Client { command, db } => {
            let settings = load(&db, FlagOverrides::default())?;
            commands::clients::run(command, &settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backchannel {
            command: BackchannelCommand::List,
            db,
        } => {
            let settings = load(&db, FlagOverrides::default())?;
            commands::backchannel::list(&settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Session { command, db } => {
            let settings = load(&db, FlagOverrides::default())?;
            commands::sessions::run(command, &settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { filter, db } => {
            let settings = load(&db, FlagOverrides::default())?;
            commands::audit::run(filter, &settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys {
            command: commands::keys::KeyCommand::GenerateKek,
            ..
        } => {
            // Needs no settings and no database (it is what the settings will need).
            out!(
                "{}",
                ostiary_core::keys::KeyEncryptionKey::generate_encoded()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys { command, db } => {
            let settings = load(&db, FlagOverrides::default())?;
            commands::keys::run(command, &settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { db } => {
            let settings = load(&db, FlagOverrides::default())?;
            commands::migrate(&settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command } => commands::token::run(command).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        // The reader of our output has gone (`ostiary session list | head -1`): done.
        Err(e) if output::is_closed(&e) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn serve_help_names_the_variable_of_every_setting() {
        let mut cli = Cli::command();
        let help = cli
            .find_subcommand_mut("serve")
            .expect("serve")
            .render_long_help()
            .to_string();
        for name in settings::env_names() {
            assert!(help.contains(&name), "`ostiary serve --help` lacks {name}");
        }
    }
}
