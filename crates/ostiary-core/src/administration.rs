//! Administration: users (creation, passwords, disabling) and clients (registration, policies, and
//! how a client is found, through the cache of [`crate::client_cache`]).

use crate::audit::{AuditEvent, AuditKind};
use crate::client::{Client, ClientId, ClientKind, WebOrigin};
use crate::clock::UnixTime;
use crate::scope::{self, Scope};
use crate::secret::{Credential, Password, random_id};
use crate::session::{ClientPolicy, EndReason};
use crate::store::StoreError;
use crate::user::{User, Username};
use serde_json::json;

use crate::Idp;
use crate::idp::{IdpError, NewClient};

impl Idp {
    /// Creates a user.
    #[tracing::instrument(skip_all, fields(username = %username))]
    pub async fn add_user(&self, username: Username, password: Password) -> Result<User, IdpError> {
        check_new_password(&password)?;
        let user = User {
            id: random_id(),
            username,
            password_hash: self.hasher.hash(password).await?,
            disabled: false,
            created_at: self.now(),
        };
        self.store.insert_user(&user).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                IdpError::Rejected(format!("user {} already exists", user.username))
            }
            other => other.into(),
        })?;
        self.audit(
            AuditEvent::new(user.created_at, AuditKind::UserCreated, "admin").user(&user.id),
        )
        .await;
        Ok(user)
    }

    /// Sets a new password (at least 8 characters). Every session of the user ends at once,
    /// published on the revocation feed and sent to back-channel logout endpoints: whoever
    /// signed in with the old password is out.
    #[tracing::instrument(skip_all, fields(username = %username))]
    pub async fn set_password(
        &self,
        username: &Username,
        password: Password,
    ) -> Result<(), IdpError> {
        check_new_password(&password)?;
        let user = self
            .store
            .find_user_by_username(username)
            .await?
            .ok_or_else(|| IdpError::Rejected(format!("no user {username}")))?;
        let hash = self.hasher.hash(password).await?;
        self.store.update_user_password(&user.id, &hash).await?;
        let now = self.now();
        self.audit(AuditEvent::new(now, AuditKind::PasswordChanged, "admin").user(&user.id))
            .await;
        // Whoever was guessing the old password starts from nothing, and so does the owner.
        self.store
            .clear_login_counters(&crate::throttle::username_key(username.as_str()))
            .await?;
        self.end_sessions_of_user(&user.id, EndReason::PasswordChanged, now)
            .await?;
        Ok(())
    }

    /// Ends every session of a user at once: published on the feed (and queued for back-channel
    /// logout by the store), and audited one by one. Returns the ended `sid`s.
    pub(crate) async fn end_sessions_of_user(
        &self,
        user_id: &str,
        reason: EndReason,
        now: UnixTime,
    ) -> Result<Vec<String>, IdpError> {
        let ended = self
            .store
            .end_sessions_of_user(user_id, now, reason)
            .await?;
        for _ in &ended {
            self.observed_ending(reason);
        }
        self.revocations.notify_waiters();
        Ok(ended)
    }

    /// Disables (or re-enables) a user. Disabling ends all of the user's sessions at once.
    #[tracing::instrument(skip_all, fields(username = %username, disabled))]
    pub async fn set_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<(), IdpError> {
        let user = self
            .store
            .find_user_by_username(username)
            .await?
            .ok_or_else(|| IdpError::Rejected(format!("no user {username}")))?;
        self.store.update_user_disabled(username, disabled).await?;
        let now = self.now();
        self.audit(
            AuditEvent::new(now, AuditKind::UserDisabledChanged, "admin")
                .user(&user.id)
                .details(json!({"disabled": disabled})),
        )
        .await;
        if disabled {
            let ended = self
                .end_sessions_of_user(&user.id, EndReason::UserDisabled, now)
                .await?;
            tracing::info!(sessions_ended = ended.len(), "user disabled");
        }
        Ok(())
    }

    /// Registers a client. Confidential clients get a generated secret, returned here once
    /// and stored only as a hash. Rejected without a redirect URI, with an invalid resource or
    /// scope, or when the client id is taken.
    #[tracing::instrument(skip_all, fields(client_id = %new.id))]
    pub async fn add_client(
        &self,
        new: NewClient,
    ) -> Result<(Client, Option<Credential>), IdpError> {
        if new.redirect_uris.is_empty() {
            return Err(IdpError::Rejected(
                "a client needs at least one redirect URI".into(),
            ));
        }
        if let Some(bad) = new.resources.iter().find(|r| !scope::is_valid_resource(r)) {
            return Err(IdpError::Rejected(format!(
                "resource {bad:?} is not an absolute URI without fragment"
            )));
        }
        let extra = Scope::parse(&new.extra_scopes.join(" "))
            .map_err(|e| IdpError::Rejected(e.to_string()))?;
        let web_origins = match new.kind {
            ClientKind::Browser if new.web_origins.is_empty() => {
                let mut origins: Vec<WebOrigin> = Vec::new();
                for origin in new.redirect_uris.iter().filter_map(WebOrigin::of) {
                    if !origins.contains(&origin) {
                        origins.push(origin);
                    }
                }
                origins
            }
            ClientKind::Browser => new.web_origins,
            _ if new.web_origins.is_empty() => Vec::new(),
            _ => {
                return Err(IdpError::Rejected(
                    "web origins are only for browser clients".into(),
                ));
            }
        };
        if new.kind == ClientKind::Browser && web_origins.is_empty() {
            return Err(IdpError::Rejected(
                "a browser client needs a web origin (https, or http on a loopback host)".into(),
            ));
        }
        new.policy
            .validate()
            .map_err(|e| IdpError::Rejected(e.into()))?;
        let secret = (new.kind == ClientKind::Confidential).then(Credential::generate);
        let client = Client {
            id: new.id,
            kind: new.kind,
            secret_hash: secret.as_ref().map(Credential::hash),
            redirect_uris: new.redirect_uris,
            post_logout_redirect_uris: new.post_logout_redirect_uris,
            allowed_resources: new.resources,
            extra_scopes: extra.iter().map(str::to_owned).collect(),
            web_origins,
            backchannel_logout_uri: new.backchannel_logout_uri,
            policy: new.policy,
            created_at: self.now(),
        };
        self.store
            .insert_client(&client)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    IdpError::Rejected(format!("client {} already exists", client.id))
                }
                other => other.into(),
            })?;
        self.audit(
            AuditEvent::new(client.created_at, AuditKind::ClientCreated, "admin")
                .client(client.id.as_str())
                .details(json!({"kind": client.kind.as_str()})),
        )
        .await;
        Ok((client, secret))
    }

    /// Replaces a client's overrides of the global session policy (unset fields follow the
    /// global `[session]` values). Applies from the next request on, to existing sessions too.
    #[tracing::instrument(skip_all, fields(client_id = %client_id))]
    pub async fn set_client_policy(
        &self,
        client_id: &ClientId,
        policy: ClientPolicy,
    ) -> Result<(), IdpError> {
        policy
            .validate()
            .map_err(|e| IdpError::Rejected(e.into()))?;
        let updated = self.store.update_client_policy(client_id, &policy).await;
        self.clients.forget(client_id.as_str());
        if !updated? {
            return Err(IdpError::Rejected(format!("no client {client_id}")));
        }
        self.audit(
            AuditEvent::new(self.now(), AuditKind::ClientPolicyChanged, "admin")
                .client(client_id.as_str())
                .details(json!({"policy": policy})),
        )
        .await;
        Ok(())
    }

    /// The client with this id; [`IdpError::InvalidClient`] if there is none.
    pub(crate) async fn get_client(&self, client_id: &str) -> Result<Client, IdpError> {
        self.find_client(client_id)
            .await?
            .ok_or(IdpError::InvalidClient)
    }

    /// Finds a client by id (for end-session's `post_logout_redirect_uri` check).
    pub async fn find_client(&self, client_id: &str) -> Result<Option<Client>, IdpError> {
        let Ok(id) = ClientId::parse(client_id) else {
            return Ok(None);
        };
        let now = self.now();
        if let Some(client) = self.clients.get(&id, now) {
            return Ok(Some(client));
        }
        let ticket = self.clients.read_ticket();
        let found = self.store.find_client(&id).await?;
        if let Some(client) = &found {
            self.clients.put(client, now, ticket);
        }
        Ok(found)
    }
}

/// The rule for a new password: NIST SP 800-63B §5.1.1.2's minimum of 8 characters, and an
/// upper bound that protects the hasher.
fn check_new_password(password: &Password) -> Result<(), IdpError> {
    let text = password.expose();
    if text.chars().count() < Password::MIN_CHARS || text.len() > Password::MAX_BYTES {
        return Err(IdpError::Rejected(format!(
            "a password is {} characters to {} bytes",
            Password::MIN_CHARS,
            Password::MAX_BYTES
        )));
    }
    Ok(())
}
