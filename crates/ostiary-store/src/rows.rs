//! Rows into domain types, written once for every backend: [`Columns`] reads a column by name
//! from a row of sqlx's SQLite or PostgreSQL driver or of `rusqlite` (the SQLite write path,
//! [`crate::sqlite`'s writer]), and the `*_from_row` functions build a domain value from any of
//! them. A new column is added here once; only the SQL naming it is per backend.

use ostiary_core::StoreError;
use ostiary_core::audit::{AuditEvent, AuditKind};
use ostiary_core::client::{Client, ClientId, ClientKind, RedirectUri, WebOrigin};
use ostiary_core::code::{AuthorizationCode, CodeChallenge};
use ostiary_core::refresh::RefreshFamily;
use ostiary_core::scope::Scope;
use ostiary_core::secret::CredentialHash;
use ostiary_core::session::Session;
use ostiary_core::store::BackchannelDelivery;
use ostiary_core::user::{PasswordHashString, User, Username};
use sqlx::Row as _;

use crate::shared::{CounterRow, corrupt, parse_list};

/// One result row, read by column name. A value of the wrong type, or a missing column, is
/// [`StoreError::Corrupt`]. Integers are 64-bit (every integer column is `BIGINT` on
/// PostgreSQL, `INTEGER` on SQLite); flags are `BOOLEAN` on PostgreSQL and 0/1 on SQLite.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// A list of text values: a JSON array on SQLite (as `json_group_array` makes it), a
    /// `TEXT[]` on PostgreSQL.
    fn text_list(&self, column: &str) -> Result<Vec<String>, StoreError> {
        parse_list(&self.text(column)?)
    }
}

/// [`Columns`] for a sqlx row type, whose `try_get` is generic over the driver.
macro_rules! sqlx_columns {
    ($row:ty $(, text_list: $list:expr)?) => {
        impl Columns for $row {
            fn text(&self, column: &str) -> Result<String, StoreError> {
                self.try_get(column).map_err(corrupt)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
                self.try_get(column).map_err(corrupt)
            }
            fn int(&self, column: &str) -> Result<i64, StoreError> {
                self.try_get(column).map_err(corrupt)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
                self.try_get(column).map_err(corrupt)
            }
            fn flag(&self, column: &str) -> Result<bool, StoreError> {
                self.try_get(column).map_err(corrupt)
            }
            fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
                self.try_get(column).map_err(corrupt)
            }
            $(
                fn text_list(&self, column: &str) -> Result<Vec<String>, StoreError> {
                    $list(self, column)
                }
            )?
        }
    };
}

sqlx_columns!(sqlx::sqlite::SqliteRow);
sqlx_columns!(sqlx::postgres::PgRow, text_list: |row: &sqlx::postgres::PgRow, column: &str| {
    row.try_get(column).map_err(corrupt)
});

/// A `rusqlite` row with its statement's column names, taken once: rusqlite's own lookup by
/// name asks SQLite for each column's name and compares it on every call (for the refresh
/// grant's 35 columns some 600 calls per row, 4–5 % of a refresh's CPU).
pub(crate) struct NamedRow<'a, 'stmt> {
    pub(crate) row: &'a rusqlite::Row<'stmt>,
    /// The statement's column names, in order (`Statement::column_names`).
    pub(crate) names: &'a [String],
}

impl NamedRow<'_, '_> {
    fn get<T: rusqlite::types::FromSql>(&self, column: &str) -> Result<T, StoreError> {
        let index = self
            .names
            .iter()
            .position(|name| name == column)
            .ok_or_else(|| corrupt(rusqlite::Error::InvalidColumnName(column.to_owned())))?;
        self.row.get(index).map_err(corrupt)
    }
}

impl Columns for NamedRow<'_, '_> {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.get(column)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.get(column)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.get(column)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.get(column)
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        self.get(column)
    }
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(column)
    }
}

/// The column names a user is read from: as in `users`, or as a join names them apart.
pub(crate) struct UserColumns {
    id: &'static str,
    username: &'static str,
    password_hash: &'static str,
    disabled: &'static str,
    created_at: &'static str,
}

const USER: UserColumns = UserColumns {
    id: "id",
    username: "username",
    password_hash: "password_hash",
    disabled: "disabled",
    created_at: "created_at",
};

/// The user's columns in [`REFRESH_GRANT_SELECT`].
const GRANT_USER: UserColumns = UserColumns {
    id: "u_id",
    username: "u_username",
    password_hash: "u_password_hash",
    disabled: "u_disabled",
    created_at: "u_created_at",
};

pub(crate) fn user_from_row(row: &impl Columns) -> Result<User, StoreError> {
    user_from_columns(row, &USER)
}

fn user_from_columns(row: &impl Columns, names: &UserColumns) -> Result<User, StoreError> {
    Ok(User {
        id: row.text(names.id)?,
        username: Username::parse(&row.text(names.username)?).map_err(corrupt)?,
        password_hash: PasswordHashString::from_stored(row.text(names.password_hash)?),
        disabled: row.flag(names.disabled)?,
        created_at: row.int(names.created_at)?,
    })
}

pub(crate) fn client_from_row(row: &impl Columns) -> Result<Client, StoreError> {
    let uris = |column: &str| -> Result<Vec<RedirectUri>, StoreError> {
        parse_list(&row.text(column)?)?
            .iter()
            .map(|u| RedirectUri::parse(u).map_err(corrupt))
            .collect()
    };
    let kind = row.text("kind")?;
    Ok(Client {
        id: ClientId::parse(&row.text("id")?).map_err(corrupt)?,
        kind: ClientKind::from_stored(&kind)
            .ok_or_else(|| corrupt(format!("client kind {kind}")))?,
        secret_hash: row
            .opt_text("secret_hash")?
            .map(CredentialHash::from_stored),
        redirect_uris: uris("redirect_uris")?,
        post_logout_redirect_uris: uris("post_logout_redirect_uris")?,
        allowed_resources: parse_list(&row.text("allowed_resources")?)?,
        extra_scopes: parse_list(&row.text("extra_scopes")?)?,
        web_origins: parse_list(&row.text("web_origins")?)?
            .iter()
            .map(|o| WebOrigin::parse(o).map_err(corrupt))
            .collect::<Result<_, _>>()?,
        backchannel_logout_uri: row
            .opt_text("backchannel_logout_uri")?
            .map(|u| RedirectUri::parse(&u).map_err(corrupt))
            .transpose()?,
        policy: serde_json::from_str(&row.text("policy")?).map_err(corrupt)?,
        created_at: row.int("created_at")?,
    })
}

/// The column names a session is read from: as in `sessions`, or as a join names them apart.
pub(crate) struct SessionColumns {
    sid: &'static str,
    user_id: &'static str,
    cookie_hash: &'static str,
    auth_time: &'static str,
    created_at: &'static str,
    last_used_at: &'static str,
    ended_at: &'static str,
    end_reason: &'static str,
    user_agent: &'static str,
    ip: &'static str,
}

const SESSION: SessionColumns = SessionColumns {
    sid: "sid",
    user_id: "user_id",
    cookie_hash: "cookie_hash",
    auth_time: "auth_time",
    created_at: "created_at",
    last_used_at: "last_used_at",
    ended_at: "ended_at",
    end_reason: "end_reason",
    user_agent: "user_agent",
    ip: "ip",
};

/// The session's columns in [`REFRESH_GRANT_SELECT`].
const GRANT_SESSION: SessionColumns = SessionColumns {
    sid: "s_sid",
    user_id: "s_user_id",
    cookie_hash: "s_cookie_hash",
    auth_time: "s_auth_time",
    created_at: "s_created_at",
    last_used_at: "s_last_used_at",
    ended_at: "s_ended_at",
    end_reason: "s_end_reason",
    user_agent: "s_user_agent",
    ip: "s_ip",
};

pub(crate) fn session_from_row(row: &impl Columns) -> Result<Session, StoreError> {
    session_from_columns(row, &SESSION)
}

fn session_from_columns(row: &impl Columns, names: &SessionColumns) -> Result<Session, StoreError> {
    Ok(Session {
        sid: row.text(names.sid)?,
        user_id: row.text(names.user_id)?,
        cookie_hash: row
            .opt_text(names.cookie_hash)?
            .map(CredentialHash::from_stored),
        auth_time: row.int(names.auth_time)?,
        created_at: row.int(names.created_at)?,
        last_used_at: row.int(names.last_used_at)?,
        ended_at: row.opt_int(names.ended_at)?,
        end_reason: row.opt_text(names.end_reason)?,
        user_agent: row.opt_text(names.user_agent)?,
        ip: row.opt_text(names.ip)?,
    })
}

pub(crate) fn code_from_row(row: &impl Columns) -> Result<AuthorizationCode, StoreError> {
    Ok(AuthorizationCode {
        code_hash: CredentialHash::from_stored(row.text("code_hash")?),
        client_id: ClientId::parse(&row.text("client_id")?).map_err(corrupt)?,
        redirect_uri: row.text("redirect_uri")?,
        sid: row.text("sid")?,
        user_id: row.text("user_id")?,
        scope: Scope::parse(&row.text("scope")?).map_err(corrupt)?,
        resource: row.text("resource")?,
        code_challenge: CodeChallenge::from_stored(row.text("code_challenge")?),
        nonce: row.opt_text("nonce")?,
        dpop_jkt: row.opt_text("dpop_jkt")?,
        auth_time: row.int("auth_time")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        used_at: row.opt_int("used_at")?,
    })
}

/// The columns [`family_from_row`] reads, from a table aliased `f`.
pub(crate) const FAMILY_COLUMNS: &str = "f.id, f.sid, f.client_id, f.user_id, f.scope, f.resource, f.generation, f.rotated_at, \
     f.sealed_successor, f.created_at, f.ended_at, f.end_reason, f.code_hash, f.last_use_ip, f.last_use_user_agent, \
     f.dpop_jkt, f.current_reissued, f.previous_reissued";

pub(crate) fn family_from_row(row: &impl Columns) -> Result<RefreshFamily, StoreError> {
    Ok(RefreshFamily {
        id: row.text("id")?,
        sid: row.text("sid")?,
        client_id: ClientId::parse(&row.text("client_id")?).map_err(corrupt)?,
        user_id: row.text("user_id")?,
        scope: Scope::parse(&row.text("scope")?).map_err(corrupt)?,
        resource: row.text("resource")?,
        generation: row.int("generation")?,
        rotated_at: row.int("rotated_at")?,
        sealed_successor: row.opt_bytes("sealed_successor")?,
        created_at: row.int("created_at")?,
        ended_at: row.opt_int("ended_at")?,
        end_reason: row.opt_text("end_reason")?,
        code_hash: row.opt_text("code_hash")?.map(CredentialHash::from_stored),
        last_use_ip: row.opt_text("last_use_ip")?,
        last_use_user_agent: row.opt_text("last_use_user_agent")?,
        dpop_jkt: row.opt_text("dpop_jkt")?,
        current_reissued: row.flag("current_reissued")?,
        previous_reissued: row.flag("previous_reissued")?,
    })
}

pub(crate) fn counter_from_row(row: &impl Columns) -> Result<CounterRow, StoreError> {
    Ok(CounterRow {
        failures: row.int("failures")?,
        last_failure_at: row.int("last_failure_at")?,
        aggregated: row.int("aggregated")?,
        aggregate_since: row.int("aggregate_since")?,
        reported_at: row.int("reported_at")?,
    })
}

pub(crate) fn delivery_from_row(row: &impl Columns) -> Result<BackchannelDelivery, StoreError> {
    Ok(BackchannelDelivery {
        id: row.int("id")?,
        client_id: row.text("client_id")?,
        sid: row.text("sid")?,
        uri: row.text("uri")?,
        attempts: row.int("attempts")?,
        next_attempt_at: row.int("next_attempt_at")?,
        delivered_at: row.opt_int("delivered_at")?,
        failed_at: row.opt_int("failed_at")?,
        last_error: row.opt_text("last_error")?,
    })
}

pub(crate) fn audit_from_row(row: &impl Columns) -> Result<AuditEvent, StoreError> {
    let kind = row.text("kind")?;
    Ok(AuditEvent {
        id: row.int("id")?,
        at: row.int("at")?,
        kind: AuditKind::parse(&kind).ok_or_else(|| corrupt(format!("audit kind {kind}")))?,
        actor: row.text("actor")?,
        user_id: row.opt_text("user_id")?,
        sid: row.opt_text("sid")?,
        client_id: row.opt_text("client_id")?,
        ip: row.opt_text("ip")?,
        user_agent: row.opt_text("user_agent")?,
        details: serde_json::from_str(&row.text("details")?).map_err(corrupt)?,
    })
}

/// What [`Store::find_refresh_grant`](ostiary_core::store::Store::find_refresh_grant) reads,
/// in one statement on either backend (followed by `WHERE t.token_hash = ` and the
/// dialect's placeholder): the family (`f`, [`FAMILY_COLUMNS`]), the presented token's
/// generation, the session (`GRANT_SESSION`'s columns) and the user (`GRANT_USER`'s).
pub(crate) const REFRESH_GRANT_SELECT: &str = "SELECT f.id, f.sid, f.client_id, f.user_id, f.scope, f.resource, f.generation, \
     f.rotated_at, f.sealed_successor, f.created_at, f.ended_at, f.end_reason, f.code_hash, f.last_use_ip, \
     f.last_use_user_agent, f.dpop_jkt, f.current_reissued, f.previous_reissued, t.generation AS token_generation, \
     s.sid AS s_sid, s.user_id AS s_user_id, s.cookie_hash AS s_cookie_hash, s.auth_time AS s_auth_time, \
     s.created_at AS s_created_at, s.last_used_at AS s_last_used_at, s.ended_at AS s_ended_at, \
     s.end_reason AS s_end_reason, s.user_agent AS s_user_agent, s.ip AS s_ip, \
     u.id AS u_id, u.username AS u_username, u.password_hash AS u_password_hash, u.disabled AS u_disabled, \
     u.created_at AS u_created_at \
     FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
     JOIN sessions s ON s.sid = f.sid JOIN users u ON u.id = s.user_id";

/// A row of [`REFRESH_GRANT_SELECT`].
pub(crate) fn refresh_grant_from_row(
    row: &impl Columns,
) -> Result<ostiary_core::store::RefreshGrant, StoreError> {
    Ok(ostiary_core::store::RefreshGrant {
        family: family_from_row(row)?,
        generation: row.int("token_generation")?,
        session: session_from_columns(row, &GRANT_SESSION)?,
        user: user_from_columns(row, &GRANT_USER)?,
    })
}
