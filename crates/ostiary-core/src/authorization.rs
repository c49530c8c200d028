//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): the client and request checked
//! before anyone signs in, and the code issued after.

use crate::client::Client;
use crate::code::{AuthorizationCode, CodeChallenge};
use crate::scope::{self, Scope};
use crate::secret::Credential;
use crate::session::Session;

use crate::Idp;
use crate::idp::{AuthorizationGrant, AuthorizationParams, IdpError};

impl Idp {
    /// Looks up the client of an authorization request and the redirect URI to answer on.
    /// Errors here must be shown to the user, never redirected (RFC 6749 §4.1.2.1).
    pub async fn authorization_client(
        &self,
        client_id: &str,
        redirect_uri: Option<&str>,
    ) -> Result<(Client, String), IdpError> {
        let client = self.get_client(client_id).await?;
        // OAuth 2.1 requires redirect_uri to be sent whenever more than one is registered; we
        // require it always, which also covers the single-URI case unambiguously.
        let requested = redirect_uri
            .ok_or_else(|| IdpError::InvalidRequest("redirect_uri is required".into()))?;
        if client.redirect_uri_matching(requested).is_none() {
            return Err(IdpError::InvalidRequest(
                "redirect_uri is not registered for this client".into(),
            ));
        }
        Ok((client, requested.to_owned()))
    }

    /// Validates the rest of an authorization request for a known client and redirect URI.
    /// Errors here are redirected back to the client with `error` (RFC 6749 §4.1.2.1).
    pub fn validate_authorization(
        &self,
        client: &Client,
        redirect_uri: String,
        params: AuthorizationParams,
    ) -> Result<AuthorizationGrant, IdpError> {
        match params.response_type.as_deref() {
            Some("code") => {}
            Some(_) => return Err(IdpError::UnsupportedResponseType),
            None => return Err(IdpError::InvalidRequest("response_type is required".into())),
        }
        let scope = Scope::parse(params.scope.as_deref().unwrap_or(""))
            .map_err(|e| IdpError::InvalidScope(e.to_string()))?;
        if let Some(bad) = scope
            .iter()
            .find(|s| !scope::BUILT_IN.contains(s) && !client.extra_scopes.iter().any(|e| e == s))
        {
            return Err(IdpError::InvalidScope(format!(
                "scope {bad} is not allowed for this client"
            )));
        }
        match params.code_challenge_method.as_deref() {
            Some("S256") => {}
            Some(_) => {
                return Err(IdpError::InvalidRequest(
                    "code_challenge_method must be S256".into(),
                ));
            }
            None => {
                return Err(IdpError::InvalidRequest(
                    "PKCE is required: send code_challenge and code_challenge_method=S256".into(),
                ));
            }
        }
        let code_challenge =
            CodeChallenge::parse_s256(params.code_challenge.as_deref().unwrap_or(""))
                .map_err(|e| IdpError::InvalidRequest(e.to_string()))?;
        let resource = self.resolve_resource(client, params.resource.as_deref())?;
        if params.nonce.as_ref().is_some_and(|n| n.len() > 512) {
            return Err(IdpError::InvalidRequest(
                "nonce is longer than 512 bytes".into(),
            ));
        }
        // A base64url SHA-256 thumbprint: 43 characters of the URL-safe alphabet.
        if params.dpop_jkt.as_ref().is_some_and(|jkt| {
            jkt.len() != 43
                || !jkt
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }) {
            return Err(IdpError::InvalidRequest(
                "dpop_jkt must be a JWK SHA-256 thumbprint (43 base64url characters)".into(),
            ));
        }
        Ok(AuthorizationGrant {
            client_id: client.id.clone(),
            redirect_uri,
            scope,
            resource,
            code_challenge,
            nonce: params.nonce,
            dpop_jkt: params.dpop_jkt,
        })
    }

    fn resolve_resource(
        &self,
        client: &Client,
        requested: Option<&str>,
    ) -> Result<String, IdpError> {
        let userinfo = self.userinfo_url();
        match requested {
            None => Ok(client
                .allowed_resources
                .first()
                .cloned()
                .unwrap_or(userinfo)),
            Some(r) if r == userinfo || client.allowed_resources.iter().any(|a| a == r) => {
                Ok(r.to_owned())
            }
            Some(_) => Err(IdpError::InvalidTarget(
                "resource is not allowed for this client".into(),
            )),
        }
    }

    /// Issues an authorization code for a validated request in an active session.
    #[tracing::instrument(skip_all, fields(client_id = %grant.client_id, sid = %session.sid))]
    pub async fn issue_authorization_code(
        &self,
        grant: AuthorizationGrant,
        session: &Session,
    ) -> Result<Credential, IdpError> {
        let now = self.now();
        let code = Credential::generate();
        let record = AuthorizationCode {
            code_hash: code.hash(),
            client_id: grant.client_id,
            redirect_uri: grant.redirect_uri,
            sid: session.sid.clone(),
            user_id: session.user_id.clone(),
            scope: grant.scope,
            resource: grant.resource,
            code_challenge: grant.code_challenge,
            nonce: grant.nonce,
            dpop_jkt: grant.dpop_jkt,
            auth_time: session.auth_time,
            created_at: now,
            expires_at: now + self.config.authorization_code_ttl,
            used_at: None,
        };
        self.store.insert_authorization_code(&record).await?;
        self.store.touch_session(&session.sid, now).await?;
        Ok(code)
    }
}
