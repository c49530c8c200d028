//! The token endpoint's grants and what a client does with its tokens: client authentication,
//! the `authorization_code` grant (RFC 6749 §4.1.3, PKCE), the `refresh_token` grant under the
//! state machine of [`crate::refresh`], logout by refresh token, and token revocation
//! (RFC 7009).

use serde_json::json;

use crate::Idp;
use crate::audit::{AuditEvent, AuditKind};
use crate::client::{Client, ClientId, ClientKind};
use crate::clock::UnixTime;
use crate::code::{AuthorizationCode, CodeChallenge, CodeConsumption};
use crate::dpop::{self, DpopKey, UnrecordedProof};
use crate::idp::{
    CodeExchange, IdpError, LoginContext, ROTATION_ATTEMPTS, TokenResponse, truncate,
};
use crate::own_tokens::AccessGrant;
use crate::refresh::{self, RefreshDecision, RefreshFamily};
use crate::scope::{self, Scope};
use crate::secret::{Credential, CredentialHash, random_id};
use crate::session::EndReason;
use crate::store::{DpopProofRecord, IssuedAccessToken, RefreshGrant, Rotation, RotationOutcome};
use crate::token::{self, AccessTokenClaims};

impl Idp {
    /// Authenticates a client at the token, revocation or introspection endpoint. A
    /// confidential client must present its secret; a public client must present none.
    pub async fn authenticate_client(
        &self,
        client_id: &str,
        secret: Option<&Credential>,
    ) -> Result<Client, IdpError> {
        let client = self.get_client(client_id).await?;
        match (client.kind, secret) {
            (ClientKind::Confidential, Some(secret)) if client.secret_matches(secret) => Ok(client),
            (ClientKind::Public | ClientKind::Browser, None) => Ok(client),
            _ => Err(IdpError::InvalidClient),
        }
    }

    /// The `authorization_code` grant (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.5).
    ///
    /// A malformed request (a `code_verifier` not of RFC 7636's form) is refused before the
    /// code is read: its answer tells nothing about the code. What the request must match
    /// (redirect URI, PKCE verifier, resource, DPoP key), the code's expiry, its session and
    /// the client's session limit are checked before the code is spent, so a request that
    /// cannot be answered with tokens (someone who saw the code but holds no verifier, a limit
    /// the user must first make room under) leaves the code to its client, and the client's
    /// retry is no replay. A code presented again by its client
    /// with everything matching is a replay: someone else redeemed it first, and the session it
    /// was issued in ends (RFC 6749 §4.1.2: everything issued from the code is revoked; the
    /// session's end reaches resource servers on the revocation feed and clients by back-channel
    /// logout). A replay that fails a check ends nothing: it shows only that its sender saw the
    /// code. Both are audited (`authorization_code_replayed`), as is a code presented by another
    /// client, which changes nothing for its holder.
    #[tracing::instrument(skip_all, fields(client_id = %client.id))]
    pub async fn exchange_code(
        &self,
        client: &Client,
        request: CodeExchange<'_>,
    ) -> Result<TokenResponse, IdpError> {
        let CodeExchange {
            code, caller, dpop, ..
        } = request;
        self.dpop_required_by(client, dpop)?;
        CodeChallenge::check_verifier(request.code_verifier)
            .map_err(|e| IdpError::InvalidRequest(e.to_string()))?;
        let now = self.now();
        let code_hash = Credential::from_presented(code).hash();
        let Some(stored) = self.store.find_authorization_code(&code_hash).await? else {
            return Err(IdpError::InvalidGrant("unknown authorization code"));
        };
        // Only the client the code was issued to can make its replay revoke anything: another
        // client presenting a stolen code must not be able to log the victim out, nor spend
        // the code before its holder redeems it.
        if stored.client_id != client.id {
            self.audit_grant_of_other_client(
                "authorization_code",
                &stored.client_id,
                client,
                &stored.user_id,
                &stored.sid,
                caller,
            )
            .await;
            return Err(IdpError::InvalidGrant("code issued to another client"));
        }
        let checked = self.check_code_request(client, &stored, request).await;
        if stored.used_at.is_some() {
            return Err(self
                .code_replayed(&stored, client, caller, checked.is_ok(), now)
                .await?);
        }
        checked?;
        if now >= stored.expires_at {
            return Err(IdpError::InvalidGrant("authorization code expired"));
        }
        let session = self
            .store
            .find_session(&stored.sid)
            .await?
            .ok_or(IdpError::InvalidGrant("session gone"))?;
        let Some((session, user)) = self.active_session_user(session).await? else {
            return Err(IdpError::InvalidGrant("session ended"));
        };
        self.admit_client_session(&session, &user, client, caller, now)
            .await?;
        // Spent only now, and only once: a concurrent request may have spent it since it was
        // read (then this one is a replay, with everything matching).
        let record = match self
            .store
            .consume_authorization_code(&code_hash, &client.id, now)
            .await?
        {
            CodeConsumption::First(record) => record,
            // Redeemed by a concurrent request since it was read, with what this one matched.
            CodeConsumption::Replayed(record) => {
                return Err(self
                    .code_replayed(&record, client, caller, true, now)
                    .await?);
            }
            // Deleted since it was read (the retention pass).
            CodeConsumption::OtherClient(_) | CodeConsumption::Unknown => {
                return Err(IdpError::InvalidGrant("unknown authorization code"));
            }
        };
        let access = IssuedAccessToken::new(now + self.config.access_token_ttl);

        let access_token = self.mint_access_token(
            client,
            AccessGrant {
                session: &session,
                user_id: &user.id,
                scope: &record.scope,
                resource: &record.resource,
                issued: &access,
                dpop,
            },
        )?;
        let id_token = if record.scope.contains(scope::OPENID) {
            Some(self.mint_id_token(
                &session,
                &user,
                client,
                &record.scope,
                record.nonce.clone(),
            )?)
        } else {
            None
        };
        let refresh_token = if record.scope.contains(scope::OFFLINE_ACCESS) {
            let first = Credential::generate();
            let family = RefreshFamily {
                id: random_id(),
                sid: session.sid.clone(),
                client_id: client.id.clone(),
                user_id: user.id.clone(),
                scope: record.scope.clone(),
                resource: record.resource.clone(),
                generation: 0,
                rotated_at: now,
                sealed_successor: None,
                created_at: now,
                ended_at: None,
                end_reason: None,
                code_hash: Some(code_hash),
                last_use_ip: caller.ip.clone(),
                last_use_user_agent: caller.user_agent.clone().map(|ua| truncate(ua, 256)),
                dpop_jkt: dpop::family_binding(client, dpop),
                current_reissued: false,
                previous_reissued: false,
            };
            self.store
                .insert_refresh_family(&family, &first.hash())
                .await?;
            Some(first)
        } else {
            None
        };
        Ok(TokenResponse {
            access_token,
            expires_in: self.config.access_token_ttl,
            refresh_token,
            id_token,
            dpop: dpop.cloned(),
            scope: record.scope,
            session_expires_at: self.grant_expires_at(&session, client, now),
        })
    }

    /// Checks a code exchange against its code: the redirect URI, the PKCE verifier, the
    /// resource and the DPoP key the authorization request named.
    async fn check_code_request(
        &self,
        client: &Client,
        record: &AuthorizationCode,
        request: CodeExchange<'_>,
    ) -> Result<(), IdpError> {
        let CodeExchange {
            redirect_uri,
            code_verifier,
            resource,
            caller,
            dpop,
            ..
        } = request;
        if record.redirect_uri != redirect_uri {
            return Err(IdpError::InvalidGrant(
                "redirect_uri differs from the authorization request",
            ));
        }
        match record.code_challenge.verify(code_verifier) {
            Ok(true) => {}
            Ok(false) => return Err(IdpError::InvalidGrant("PKCE verification failed")),
            Err(e) => return Err(IdpError::InvalidRequest(e.to_string())),
        }
        if resource.is_some_and(|r| r != record.resource) {
            return Err(IdpError::InvalidTarget(
                "resource must be the one granted at the authorization endpoint".into(),
            ));
        }
        if !dpop::bound_key_proved(record.dpop_jkt.as_deref(), dpop) {
            self.audit_dpop_key_not_proved(
                "authorization_code",
                client,
                &record.user_id,
                &record.sid,
                dpop,
                caller,
            )
            .await;
            return Err(IdpError::InvalidGrant(
                "the authorization request named a DPoP key (dpop_jkt) the exchange did not prove",
            ));
        }
        Ok(())
    }

    /// A spent code presented again by its client: audited, and, if the request matched the
    /// code (`proven`), its session ended in the same transaction. Returns the error to answer.
    async fn code_replayed(
        &self,
        code: &AuthorizationCode,
        client: &Client,
        caller: &LoginContext,
        proven: bool,
        now: UnixTime,
    ) -> Result<IdpError, IdpError> {
        let event = AuditEvent::new(
            now,
            AuditKind::AuthorizationCodeReplayed,
            format!("client:{}", client.id),
        )
        .client(client.id.as_str())
        .user(&code.user_id)
        .session(&code.sid)
        .origin(caller.ip.as_deref(), caller.user_agent.as_deref())
        .details(json!({"request_matched_code": proven}));
        if proven {
            let ended = self
                .end_session_because(&code.sid, EndReason::AuthorizationCodeReplay, Some(&event))
                .await?;
            tracing::warn!(
                session_ended = ended,
                "authorization code replayed; its session is ended"
            );
        } else {
            self.audit(event).await;
            tracing::warn!(
                "authorization code presented again without its PKCE verifier or redirect URI; nothing ended"
            );
        }
        Ok(IdpError::InvalidGrant("authorization code replayed"))
    }

    /// The access token a refresh of `grant` answers with, for `scope`.
    fn mint_for_grant(
        &self,
        grant: &RefreshGrant,
        client: &Client,
        scope: &Scope,
        access: &IssuedAccessToken,
        dpop: Option<&DpopKey>,
    ) -> Result<String, IdpError> {
        self.mint_access_token(
            client,
            AccessGrant {
                session: &grant.session,
                user_id: &grant.user.id,
                scope,
                resource: &grant.family.resource,
                issued: access,
                dpop,
            },
        )
    }

    /// The `refresh_token` grant (RFC 6749 §6) under the state machine of [`crate::refresh`].
    /// `scope` may narrow the granted scope; `resource` must be the granted one. `dpop`: the
    /// request's proof, checked ([`Idp::check_dpop_proof`]) and not yet recorded: a rotation
    /// records it in its own transaction (one commit for both), any other outcome records it
    /// before it acts, and a request refused before that leaves it unused. A family bound to a
    /// key needs a proof by that key (without one the answer is `invalid_grant`, and nothing
    /// changes: it is no reuse).
    // Debug, not info: a span per refresh costs at the default level (measured ~10 %).
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client.id))]
    pub async fn refresh(
        &self,
        client: &Client,
        refresh_token: &str,
        scope: Option<Scope>,
        resource: Option<&str>,
        caller: &LoginContext,
        dpop: Option<UnrecordedProof>,
    ) -> Result<TokenResponse, IdpError> {
        let (dpop, mut unrecorded) = match dpop.map(UnrecordedProof::into_parts) {
            Some((key, record)) => (Some(key), Some(record)),
            None => (None, None),
        };
        let dpop = dpop.as_ref();
        self.dpop_required_by(client, dpop)?;
        let presented = Credential::from_presented(refresh_token);
        let presented_hash = presented.hash();
        // One store call reads all the grant needs; the rotation is one more.
        let Some(mut grant) = self.store.find_refresh_grant(&presented_hash).await? else {
            return Err(IdpError::InvalidGrant("unknown refresh token"));
        };
        if grant.family.client_id != client.id {
            // Nothing changes for the holder: another client may be confused or malicious,
            // and a token it holds must not let it end someone's session.
            self.audit_refresh_token_of_other_client(&grant.family, client, caller)
                .await;
            return Err(IdpError::InvalidGrant(
                "refresh token issued to another client",
            ));
        }
        let scope = match scope {
            Some(s) if !s.is_empty() => {
                if !s.is_subset_of(&grant.family.scope) {
                    return Err(IdpError::InvalidScope(
                        "a refresh can only narrow the granted scope".into(),
                    ));
                }
                s
            }
            _ => grant.family.scope.clone(),
        };
        if resource.is_some_and(|r| r != grant.family.resource) {
            return Err(IdpError::InvalidTarget(
                "a refresh can only name the resource that was granted".into(),
            ));
        }
        if grant.user.disabled {
            return Err(IdpError::InvalidGrant("user disabled"));
        }
        if !dpop::bound_key_proved(grant.family.dpop_jkt.as_deref(), dpop) {
            self.audit_dpop_key_not_proved(
                "refresh_token",
                client,
                &grant.family.user_id,
                &grant.family.sid,
                dpop,
                caller,
            )
            .await;
            return Err(IdpError::InvalidGrant(dpop::PROOF_REQUIRED));
        }

        for _ in 0..ROTATION_ATTEMPTS {
            let now = self.now();
            let access = IssuedAccessToken::new(now + self.config.access_token_ttl);
            let generation = grant.generation;
            let family = &grant.family;
            let decision = refresh::decide(
                family,
                &grant.session,
                generation,
                now,
                &self.config.session,
                &client.policy,
            );
            if decision != RefreshDecision::Rotate {
                // Every other outcome acts on the proof outside a rotation: recorded first.
                self.record_unrecorded_proof(&mut unrecorded).await?;
            }
            let (successor, access_token) = match decision {
                RefreshDecision::Rotate => {
                    let successor = Credential::generate();
                    let rotation = Rotation {
                        family_id: family.id.clone(),
                        expected_generation: generation,
                        new_token_hash: successor.hash(),
                        sealed_successor: refresh::seal_successor(
                            &presented, &successor, &family.id,
                        ),
                        now,
                        ip: caller.ip.clone(),
                        user_agent: caller.user_agent.clone().map(|ua| truncate(ua, 256)),
                        audit: AuditEvent::new(
                            now,
                            AuditKind::RefreshRotated,
                            format!("client:{}", client.id),
                        )
                        .origin(caller.ip.as_deref(), caller.user_agent.as_deref())
                        .user(&family.user_id)
                        .session(&family.sid)
                        .client(client.id.as_str())
                        .details(json!({"generation": generation + 1})),
                        dpop_proof: unrecorded.clone(),
                    };
                    // The access token is signed while the rotation commits (on SQLite, while
                    // the writer waits for its fsync); it leaves here only if the rotation won.
                    let (rotated, minted) = tokio::join!(
                        biased;
                        self.store.rotate_refresh(&rotation),
                        async { self.mint_for_grant(&grant, client, &scope, &access, dpop) },
                    );
                    match rotated? {
                        RotationOutcome::Rotated => {}
                        RotationOutcome::Lost { proof_recorded } => {
                            // Another request rotated this generation first: look again.
                            if proof_recorded {
                                unrecorded = None;
                            }
                            grant = self.reload_grant(&presented_hash).await?;
                            continue;
                        }
                        RotationOutcome::ProofReplayed => return Err(dpop::replayed()),
                    }
                    self.observed(&rotation.audit);
                    // Debug, not info: every refresh of every app would be a line; the audit log has it.
                    tracing::debug!(sid = %family.sid, family = %family.id, generation = generation + 1, "refresh token rotated");
                    (successor, minted?)
                }
                decision @ (RefreshDecision::ReplayWithinGrace
                | RefreshDecision::RecoverLostResponse) => {
                    let sealed = family.sealed_successor.as_deref().unwrap_or_default();
                    let Some(successor) = refresh::open_successor(&presented, sealed, &family.id)
                    else {
                        return Err(IdpError::InvalidGrant("sealed successor does not open"));
                    };
                    let recovering = decision == RefreshDecision::RecoverLostResponse;
                    let kind = if recovering {
                        AuditKind::RefreshRecovered
                    } else {
                        AuditKind::RefreshReplayedWithinGrace
                    };
                    let event = AuditEvent::new(now, kind, format!("client:{}", client.id))
                        .origin(caller.ip.as_deref(), caller.user_agent.as_deref())
                        .user(&family.user_id)
                        .session(&family.sid)
                        .client(client.id.as_str())
                        .details(json!({
                            "generation": generation,
                            "seconds_since_rotation": now - family.rotated_at,
                        }));
                    // A recovery hands the successor out again: it may now have two holders,
                    // so it is marked (see refresh.rs). So is a grace replay of a token that
                    // was itself reissued, or the mark would launder through it.
                    if recovering || family.previous_reissued {
                        if !self
                            .store
                            .reissue_successor(&family.id, family.generation, &event)
                            .await?
                        {
                            grant = self.reload_grant(&presented_hash).await?;
                            continue;
                        }
                        self.observed(&event);
                    } else {
                        self.audit(event).await;
                    }
                    tracing::info!(sid = %family.sid, family = %family.id, generation, recovering, "previous refresh token presented again; same successor returned");
                    (
                        successor,
                        self.mint_for_grant(&grant, client, &scope, &access, dpop)?,
                    )
                }
                RefreshDecision::Reuse {
                    presented_generation,
                    current_generation,
                    seconds_since_rotation,
                } => {
                    let evidence =
                        AuditEvent::new(now, AuditKind::RefreshTokenReuseDetected, "system")
                            .origin(caller.ip.as_deref(), caller.user_agent.as_deref())
                            .user(&family.user_id)
                            .session(&family.sid)
                            .client(family.client_id.as_str())
                            .details(json!({
                                "presented_generation": presented_generation,
                                "current_generation": current_generation,
                                "seconds_since_rotation": seconds_since_rotation,
                                "replayed_from": {
                                    "ip": caller.ip,
                                    "user_agent": caller.user_agent.as_deref().map(|ua| truncate(ua.to_owned(), 256)),
                                },
                                "current_token_issued_to": {
                                    "ip": family.last_use_ip,
                                    "user_agent": family.last_use_user_agent,
                                },
                            }));
                    self.end_session_because(
                        &family.sid,
                        EndReason::RefreshTokenReuse,
                        Some(&evidence),
                    )
                    .await?;
                    tracing::warn!(
                        sid = %family.sid,
                        family = %family.id,
                        presented_generation,
                        current_generation,
                        seconds_since_rotation,
                        "refresh token reuse detected; session ended"
                    );
                    return Err(IdpError::InvalidGrant("refresh token reuse"));
                }
                RefreshDecision::Ended => {
                    return Err(IdpError::InvalidGrant("session or family ended"));
                }
                RefreshDecision::Expired(reason) => {
                    self.end_session(&family.sid, reason).await?;
                    return Err(IdpError::InvalidGrant("session expired"));
                }
                RefreshDecision::FamilyExpired(reason) => {
                    if self
                        .store
                        .end_refresh_family(&family.id, now, reason)
                        .await?
                    {
                        self.audit(
                            AuditEvent::new(now, AuditKind::RefreshFamilyExpired, "system")
                                .user(&family.user_id)
                                .session(&family.sid)
                                .client(client.id.as_str())
                                .details(json!({"reason": reason.as_str()})),
                        )
                        .await;
                    }
                    return Err(IdpError::InvalidGrant(
                        "refresh token expired under the client's policy",
                    ));
                }
            };
            return Ok(TokenResponse {
                access_token,
                expires_in: self.config.access_token_ttl,
                refresh_token: Some(successor),
                id_token: None,
                dpop: dpop.cloned(),
                scope,
                session_expires_at: self.grant_expires_at(
                    &grant.session,
                    client,
                    grant.family.created_at,
                ),
            });
        }
        Err(IdpError::InvalidGrant(
            "refresh token rotated concurrently too often",
        ))
    }

    /// Records the request's DPoP proof if it has not been recorded yet (once: `proof` is
    /// `None` afterwards).
    async fn record_unrecorded_proof(
        &self,
        proof: &mut Option<DpopProofRecord>,
    ) -> Result<(), IdpError> {
        match proof.take() {
            Some(record) => self.record_proof_entry(&record).await,
            None => Ok(()),
        }
    }

    /// Audits (and logs) a grant of `owner` presented by another client: a refresh token or
    /// an authorization code. The holder's grant is left alone.
    pub(crate) async fn audit_grant_of_other_client(
        &self,
        grant: &str,
        owner: &ClientId,
        presented_by: &Client,
        user_id: &str,
        sid: &str,
        caller: &LoginContext,
    ) {
        tracing::warn!(
            grant,
            owner = %owner,
            presented_by = %presented_by.id,
            "a grant was presented by a client it was not issued to; refused, nothing changed"
        );
        self.audit(
            AuditEvent::new(
                self.now(),
                AuditKind::GrantPresentedByOtherClient,
                format!("client:{}", presented_by.id),
            )
            .client(owner.as_str())
            .user(user_id)
            .session(sid)
            .origin(caller.ip.as_deref(), caller.user_agent.as_deref())
            .details(json!({"grant": grant, "presented_by": presented_by.id.as_str()})),
        )
        .await;
    }

    /// Audits (and logs) a grant bound to a DPoP key presented without a proof by that key
    /// (`dpop`: the key that was proved instead, if any). The holder's grant is left alone.
    async fn audit_dpop_key_not_proved(
        &self,
        grant: &str,
        client: &Client,
        user_id: &str,
        sid: &str,
        dpop: Option<&DpopKey>,
        caller: &LoginContext,
    ) {
        let reason = if dpop.is_some() {
            "other_key"
        } else {
            "no_proof"
        };
        tracing::warn!(
            grant,
            client_id = %client.id,
            sid,
            reason,
            "a grant bound to a DPoP key came without a proof by that key; refused, nothing changed"
        );
        self.audit(
            AuditEvent::new(
                self.now(),
                AuditKind::DpopKeyNotProved,
                format!("client:{}", client.id),
            )
            .client(client.id.as_str())
            .user(user_id)
            .session(sid)
            .origin(caller.ip.as_deref(), caller.user_agent.as_deref())
            .details(json!({"grant": grant, "reason": reason})),
        )
        .await;
    }

    /// [`Self::audit_grant_of_other_client`] for a refresh token of `family`.
    pub(crate) async fn audit_refresh_token_of_other_client(
        &self,
        family: &RefreshFamily,
        presented_by: &Client,
        caller: &LoginContext,
    ) {
        self.audit_grant_of_other_client(
            "refresh_token",
            &family.client_id,
            presented_by,
            &family.user_id,
            &family.sid,
            caller,
        )
        .await;
    }

    /// The refresh grant of a token read again, after a concurrent change.
    async fn reload_grant(&self, token_hash: &CredentialHash) -> Result<RefreshGrant, IdpError> {
        self.store
            .find_refresh_grant(token_hash)
            .await?
            .ok_or(IdpError::InvalidGrant("refresh family gone"))
    }

    /// Logout from an app that holds only a refresh token (a browser client's cookie): ends the
    /// whole session the token belongs to. Unknown tokens, or tokens of another client, end
    /// nothing. Returns whether a session ended.
    #[tracing::instrument(skip_all, fields(client_id = %client.id))]
    pub async fn end_session_of_refresh_token(
        &self,
        client: &Client,
        token: &str,
        caller: &LoginContext,
    ) -> Result<bool, IdpError> {
        let hash = Credential::from_presented(token).hash();
        match self.store.find_refresh_token(&hash).await? {
            Some((family, _)) if family.client_id == client.id => {
                self.end_session(&family.sid, EndReason::Logout).await
            }
            Some((family, _)) => {
                self.audit_refresh_token_of_other_client(&family, client, caller)
                    .await;
                Ok(false)
            }
            None => Ok(false),
        }
    }

    /// Token revocation (RFC 7009 §2.1). A refresh token ends its session (and so every token
    /// of it); an access token is recorded as revoked until it expires. Both are published on
    /// the revocation feed. Tokens that are unknown, or belong to another
    /// client, are silently ignored (RFC 7009 §2.2), so the response reveals nothing.
    #[tracing::instrument(skip_all, fields(client_id = %client.id))]
    pub async fn revoke(
        &self,
        client: &Client,
        token: &str,
        caller: &LoginContext,
    ) -> Result<(), IdpError> {
        let now = self.now();
        let hash = Credential::from_presented(token).hash();
        if let Some((family, _)) = self.store.find_refresh_token(&hash).await? {
            // The refresh token is the session's credential for this client: revoking it signs
            // the user out of that session (and publishes its end, so resource servers drop the
            // access tokens issued from it too, RFC 7009 §2.1).
            if family.client_id != client.id {
                self.audit_refresh_token_of_other_client(&family, client, caller)
                    .await;
            } else if self.end_session(&family.sid, EndReason::Revoked).await? {
                tracing::info!(sid = %family.sid, family = %family.id, "refresh token revoked; session ended");
            }
            return Ok(());
        }
        if let Ok(claims) = token::verify_own::<AccessTokenClaims>(
            &self.keys(),
            &self.config.issuer,
            token::ACCESS_TOKEN_TYP,
            token,
            now,
            false,
        ) && claims.client_id == client.id.as_str()
        {
            self.store
                .insert_revoked_access_token(&claims.jti, claims.exp, now)
                .await?;
            self.revocations.notify_waiters();
            self.audit(
                AuditEvent::new(
                    now,
                    AuditKind::AccessTokenRevoked,
                    format!("client:{}", client.id),
                )
                .user(&claims.sub)
                .session(&claims.sid)
                .client(client.id.as_str())
                .origin(caller.ip.as_deref(), caller.user_agent.as_deref())
                .details(json!({"jti": claims.jti})),
            )
            .await;
            tracing::info!(jti = %claims.jti, "access token revoked");
        }
        Ok(())
    }
}
