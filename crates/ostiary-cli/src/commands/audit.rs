//! `ostiary audit`: read the audit log as JSON lines.

use ostiary_core::audit::{AuditFilter, AuditKind};
use ostiary_core::user::Username;

use crate::settings::Settings;

/// Filters of `ostiary audit`; they combine with AND.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only events of this user (login name).
    #[arg(long, value_name = "USERNAME")]
    user: Option<String>,
    /// Only events of this session (`sid`).
    #[arg(long, value_name = "SID")]
    session: Option<String>,
    /// Only events of this kind.
    #[arg(long, value_name = "KIND", value_parser = kinds())]
    kind: Option<String>,
    /// Only events at or after this time (Unix seconds).
    #[arg(long, value_name = "UNIX_SECONDS")]
    since: Option<i64>,
    /// Only events before this time (Unix seconds).
    #[arg(long, value_name = "UNIX_SECONDS")]
    until: Option<i64>,
    /// At most this many events (the newest), printed oldest first.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    limit: u32,
}

/// Prints matching events, one JSON object per line.
pub async fn run(args: AuditArgs, settings: &Settings) -> anyhow::Result<()> {
    let idp = super::open_idp(settings).await?;
    let kind = match args.kind.as_deref() {
        None => None,
        Some(name) => Some(
            AuditKind::parse(name)
                .ok_or_else(|| anyhow::anyhow!("unknown event kind {name:?}; see --help"))?,
        ),
    };
    let user_id = match args.user.as_deref() {
        None => None,
        Some(name) => {
            let username = Username::parse(name)?;
            let user = idp.store().find_user_by_username(&username).await?;
            Some(user.ok_or_else(|| anyhow::anyhow!("no user {name}"))?.id)
        }
    };
    let filter = AuditFilter {
        user_id,
        sid: args.session,
        kind,
        since: args.since,
        until: args.until,
        limit: Some(args.limit),
    };
    for event in idp.audit_events(&filter).await? {
        out!("{}", serde_json::to_string(&event)?)?;
    }
    Ok(())
}

/// Every audit kind, as the values `--kind` accepts (listed by `--help`).
fn kinds() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        ostiary_core::audit::AuditKind::ALL.map(ostiary_core::audit::AuditKind::as_str),
    )
}
