//! The tokens the IdP mints (access tokens, RFC 9068; ID tokens, OIDC Core §2) and those it reads
//! back itself: userinfo (OIDC Core §5.3), introspection (RFC 7662), `id_token_hint`.

use crate::client::{Client, ClientKind};
use crate::keys::KeyError;
use crate::scope::{self, Scope};
use crate::session::Session;
use crate::store::IssuedAccessToken;
use crate::token::{self, AccessTokenClaims, Audience, Confirmation, IdTokenClaims, OwnTokenError};
use crate::user::User;

use crate::Idp;
use crate::idp::{ID_TOKEN_ALG, IdpError, UserInfo};

/// What an access token says, apart from its client.
pub(crate) struct AccessGrant<'a> {
    /// The session it is minted from.
    pub(crate) session: &'a Session,
    /// Its subject.
    pub(crate) user_id: &'a str,
    /// The scope granted.
    pub(crate) scope: &'a Scope,
    /// The resource (audience) it is for.
    pub(crate) resource: &'a str,
    /// Its record (`jti`, `exp`).
    pub(crate) issued: &'a IssuedAccessToken,
    /// The key it is bound to (`cnf.jkt`), if any.
    pub(crate) dpop: Option<&'a crate::dpop::DpopKey>,
}

impl Idp {
    /// Validates an access token presented to the userinfo endpoint: ours, unexpired, not
    /// revoked, its session still active, and with the `openid` scope. `dpop`: the key of
    /// the request's DPoP proof (`Authorization: DPoP`, [`Idp::accept_dpop_proof`] with the
    /// token): a token bound to a key (`cnf.jkt`) is accepted only with a proof by that key,
    /// never as a bearer token (RFC 9449 §7.2), and a bearer token not with the DPoP scheme.
    pub async fn userinfo(
        &self,
        access_token: &str,
        dpop: Option<&crate::dpop::DpopKey>,
    ) -> Result<UserInfo, IdpError> {
        let (claims, user) = self.active_access_token(access_token).await?;
        let bound = claims.cnf.as_ref().map(|cnf| cnf.jkt.as_str());
        if bound != dpop.map(|key| key.jkt.as_str()) {
            return Err(IdpError::InvalidToken);
        }
        // The userinfo endpoint is a resource server too (RFC 9068 §4): the token must name it.
        if !claims.aud.contains(&self.userinfo_url()) {
            return Err(IdpError::InvalidToken);
        }
        let scope = Scope::parse(&claims.scope).unwrap_or_default();
        if !scope.contains(scope::OPENID) {
            return Err(IdpError::InsufficientScope(scope::OPENID));
        }
        Ok(UserInfo {
            sub: user.id,
            preferred_username: scope
                .contains(scope::PROFILE)
                .then(|| user.username.to_string()),
        })
    }

    /// An access token that is ours, unexpired, not revoked, of an active session of an
    /// enabled user; [`IdpError::InvalidToken`] otherwise.
    async fn active_access_token(
        &self,
        access_token: &str,
    ) -> Result<(AccessTokenClaims, User), IdpError> {
        let now = self.now();
        let claims: AccessTokenClaims = token::verify_own(
            &self.keys(),
            &self.config.issuer,
            token::ACCESS_TOKEN_TYP,
            access_token,
            now,
            true,
        )
        .map_err(|_| IdpError::InvalidToken)?;
        if self.store.is_access_token_revoked(&claims.jti).await? {
            return Err(IdpError::InvalidToken);
        }
        let session = self
            .store
            .find_session(&claims.sid)
            .await?
            .ok_or(IdpError::InvalidToken)?;
        let Some((_, user)) = self.active_session_user(session).await? else {
            return Err(IdpError::InvalidToken);
        };
        Ok((claims, user))
    }

    /// Token introspection (RFC 7662 §2) for an authenticated confidential client (a resource
    /// server): the claims of an active access token whose `aud` names one of the client's
    /// resources, with the username; `None` for anything else (revoked, expired, meant for
    /// another resource, another issuer's, a refresh or ID token, garbage).
    pub async fn introspect(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<Option<(AccessTokenClaims, User)>, IdpError> {
        if client.kind != ClientKind::Confidential {
            return Err(IdpError::InvalidClient);
        }
        match self.active_access_token(token).await {
            // RFC 7662 §2.2, §4: a resource server may only learn about tokens meant for it.
            Ok((claims, _))
                if !client
                    .allowed_resources
                    .iter()
                    .any(|r| claims.aud.contains(r)) =>
            {
                Ok(None)
            }
            Ok(found) => Ok(Some(found)),
            Err(IdpError::InvalidToken) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Verifies an `id_token_hint` (OIDC RP-Initiated Logout §2): issued here, for any
    /// client; expiry is not checked, since an RP may log out long after the ID token expired.
    pub fn verify_id_token_hint(&self, id_token: &str) -> Result<IdTokenClaims, IdpError> {
        token::verify_own(
            &self.keys(),
            &self.config.issuer,
            token::ID_TOKEN_TYP,
            id_token,
            self.now(),
            false,
        )
        .map_err(|e| match e {
            OwnTokenError::Invalid | OwnTokenError::Expired => {
                IdpError::InvalidRequest("id_token_hint is not an ID token issued here".into())
            }
        })
    }

    /// Mints the access token `grant` describes, for `client`.
    pub(crate) fn mint_access_token(
        &self,
        client: &Client,
        grant: AccessGrant<'_>,
    ) -> Result<String, IdpError> {
        let AccessGrant {
            session,
            user_id,
            scope,
            resource,
            issued,
            dpop,
        } = grant;
        let now = self.now();
        let mut audience = vec![resource.to_owned()];
        let userinfo = self.userinfo_url();
        if scope.contains(scope::OPENID) && resource != userinfo {
            audience.push(userinfo);
        }
        let claims = AccessTokenClaims {
            iss: self.config.issuer.clone(),
            sub: user_id.to_owned(),
            aud: Audience(audience),
            exp: issued.expires_at,
            iat: now,
            jti: issued.jti.clone(),
            client_id: client.id.to_string(),
            scope: scope.to_string(),
            sid: session.sid.clone(),
            auth_time: session.auth_time,
            cnf: dpop.map(|key| Confirmation {
                jkt: key.jkt.clone(),
            }),
        };
        let keys = self.keys();
        let key = keys
            .signer(self.config.access_token_alg)
            .ok_or_else(|| KeyError::from_message("no access-token signing key".into()))?;
        Ok(token::sign(key, token::ACCESS_TOKEN_TYP, &claims)?)
    }

    pub(crate) fn mint_id_token(
        &self,
        session: &Session,
        user: &User,
        client: &Client,
        scope: &Scope,
        nonce: Option<String>,
    ) -> Result<String, IdpError> {
        let now = self.now();
        let claims = IdTokenClaims {
            iss: self.config.issuer.clone(),
            sub: user.id.clone(),
            aud: client.id.to_string(),
            exp: now + self.config.id_token_ttl,
            iat: now,
            auth_time: session.auth_time,
            nonce,
            sid: session.sid.clone(),
            preferred_username: scope
                .contains(scope::PROFILE)
                .then(|| user.username.to_string()),
        };
        let keys = self.keys();
        let key = keys
            .signer(ID_TOKEN_ALG)
            .ok_or_else(|| KeyError::from_message("no ID-token signing key".into()))?;
        Ok(token::sign(key, token::ID_TOKEN_TYP, &claims)?)
    }
}
