//! axum integration (feature `axum`, on by default): the [`VerifiedClaims`] extractor.
//!
//! It reads `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is case-insensitive),
//! or, when the validator has a public URL ([`Validator::with_public_url`]),
//! `Authorization: DPoP <token>` with one `DPoP` proof header (RFC 9449 §7.1), checked with
//! [`Validator::validate_dpop`] for the request's method and the public URL followed by the
//! path the client addressed (the whole path, also inside `Router::nest`, which takes the
//! prefix off the request's URI). A path with a dot segment (`/a/../b`) is refused: routers do
//! not resolve them, so no proof could name the resource it reaches. It validates the token with the [`Validator`] found in the router state, and
//! otherwise rejects with [`BearerRejection`]:
//!
//! | situation | status | `WWW-Authenticate` | body |
//! |---|---|---|---|
//! | no `Authorization` header, or another scheme | 401 | `Bearer` (RFC 6750 §3.1: no error code) | `{"error":"unauthorized","reason":"missing_token"}` |
//! | token rejected | 401 | `Bearer error="invalid_token", error_description="…"` | `{"error":"invalid_token","reason":"<code>"}` |
//! | JWKS unavailable | 503 | none (not the client's fault) | `{"error":"temporarily_unavailable","reason":"jwks_unavailable"}` |
//!
//! `<code>` is [`ValidationError::reason`]; the challenge carries `realm="…"` first when
//! [`Validator::with_realm`] was set. When DPoP is accepted, a second challenge
//! `DPoP algs="…"` follows (RFC 9449 §7.1; the only one with [`Validator::with_dpop_required`]),
//! and a failure of a DPoP request (or a DPoP error) goes on it, as
//! `error="invalid_dpop_proof"` for a bad proof, `error="use_dpop_nonce"` for a proof without
//! a fresh resource-server nonce ([`Validator::with_dpop_nonces`]; the nonce to use is in the
//! `DPoP-Nonce` header of every rejection), `error="invalid_token"` otherwise. An extractor
//! cannot add headers to a handler's success: to send the current nonce with every response,
//! use [`VerifyLayer`](crate::layer::VerifyLayer) instead.
//!
//! ```
//! use axum::{Json, Router, extract::FromRef, routing::get};
//! use ostiary_verify::{Algorithm, JwksSource, Validator, extract::VerifiedClaims};
//!
//! #[derive(Clone)]
//! struct AppState {
//!     validator: Validator,
//! }
//!
//! impl FromRef<AppState> for Validator {
//!     fn from_ref(state: &AppState) -> Self {
//!         state.validator.clone()
//!     }
//! }
//!
//! /// Answers only requests with a valid access token carrying the `profile` scope.
//! async fn me(VerifiedClaims(claims): VerifiedClaims) -> Result<Json<String>, axum::http::StatusCode> {
//!     if !claims.has_scope("profile") {
//!         return Err(axum::http::StatusCode::FORBIDDEN);
//!     }
//!     Ok(Json(claims.sub))
//! }
//!
//! let validator = Validator::new(
//!     "https://id.example",
//!     "https://api.example",
//!     &[Algorithm::EdDSA],
//!     JwksSource::remote("https://id.example/jwks.json"),
//! )?
//! .with_realm("api");
//! let app: Router = Router::new().route("/me", get(me)).with_state(AppState { validator });
//! # drop(app);
//! # Ok::<(), ostiary_verify::ConfigError>(())
//! ```

use axum::extract::{FromRef, FromRequestParts, OriginalUri};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

use crate::dpop::ProofError;
use crate::{AccessTokenClaims, DpopRequest, ValidationError, Validator};

/// The `DPoP-Nonce` response header (RFC 9449 §8.1, §9).
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The claims of the request's valid bearer access token.
///
/// Usable in any handler whose state `S` satisfies `Validator: FromRef<S>`; see the
/// [module docs](self) for the responses on failure.
#[derive(Debug, Clone)]
pub struct VerifiedClaims(pub AccessTokenClaims);

impl<S> FromRequestParts<S> for VerifiedClaims
where
    Validator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let validator = Validator::from_ref(state);
        let uri = addressed_uri(&parts.uri, &parts.extensions);
        authenticate(&validator, &parts.method, uri, &parts.headers)
            .await
            .map(Self)
    }
}

/// The URI the client addressed: inside a nested router (`Router::nest`) axum has taken the
/// prefix off the request's URI and kept the whole one as [`OriginalUri`].
pub(crate) fn addressed_uri<'a>(uri: &'a Uri, extensions: &'a http::Extensions) -> &'a Uri {
    extensions
        .get::<OriginalUri>()
        .map_or(uri, |original| &original.0)
}

/// Whether `path` has a dot segment (`.` or `..`, also percent-encoded): routers (axum's
/// among them) do not resolve them, so `/files/../admin` reaches a `/files/…` route while a
/// URL comparison would read it as `/admin`. No proof may name such a path.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    })
}

/// Checks a request's access token (and DPoP proof) as described in the [module docs](self):
/// what the extractor and [`VerifyLayer`](crate::layer::VerifyLayer) share.
pub(crate) async fn authenticate(
    validator: &Validator,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<AccessTokenClaims, BearerRejection> {
    let mut used_dpop = false;
    let result = match bearer_token(headers) {
        Credentials::Bearer(token) => validator
            .validate(token)
            .await
            .map_err(RejectionKind::Invalid),
        Credentials::Dpop(token) => {
            used_dpop = true;
            match (validator.public_url(), dpop_proof(headers)) {
                (None, _) => Err(RejectionKind::Invalid(ValidationError::DpopUnsupported)),
                (Some(_), None) => Err(RejectionKind::Invalid(ValidationError::InvalidDpopProof(
                    ProofError::Malformed,
                ))),
                (Some(_), Some(_)) if has_dot_segment(uri.path()) => Err(RejectionKind::Invalid(
                    ValidationError::InvalidDpopProof(ProofError::UrlMismatch),
                )),
                (Some(base), Some(proof)) => {
                    let url = format!("{base}{}", uri.path());
                    let request = DpopRequest {
                        method: method.as_str(),
                        url: &url,
                    };
                    validator
                        .validate_dpop(token, proof, &request)
                        .await
                        .map_err(RejectionKind::Invalid)
                }
            }
        }
        Credentials::None => Err(RejectionKind::MissingToken),
        Credentials::Malformed => Err(RejectionKind::Invalid(ValidationError::Malformed)),
    };
    result.map_err(|kind| BearerRejection {
        kind,
        realm: validator.realm().map(str::to_owned),
        dpop: validator.public_url().is_some().then(|| DpopChallenge {
            algs: ostiary_jose::dpop::algs_parameter(validator.dpop_algorithms()),
            used: used_dpop,
            only: validator.dpop_required(),
            nonce: validator.dpop_nonce(),
        }),
    })
}

enum Credentials<'a> {
    Bearer(&'a str),
    /// `Authorization: DPoP <token>`.
    Dpop(&'a str),
    /// No `Authorization` header, or one for another scheme.
    None,
    /// A `Bearer` header without a usable token, or several `Authorization` headers.
    Malformed,
}

/// RFC 6750 §2.1: `Authorization: Bearer 1*SP b64token`.
fn bearer_token(headers: &HeaderMap) -> Credentials<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if headers.contains_key(AUTHORIZATION) {
            Credentials::Malformed
        } else {
            Credentials::None
        };
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !scheme.eq_ignore_ascii_case("bearer") && !dpop {
        return Credentials::None;
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() || token.contains(' ') {
        return Credentials::Malformed;
    }
    if dpop {
        Credentials::Dpop(token)
    } else {
        Credentials::Bearer(token)
    }
}

/// The request's one `DPoP` header (RFC 9449 §4.1); `None` if absent, repeated or not text.
fn dpop_proof(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all("dpop").iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok(),
        _ => None,
    }
}

/// Why [`VerifiedClaims`] refused a request; answers as described in the
/// [module docs](self).
#[derive(Debug)]
pub struct BearerRejection {
    kind: RejectionKind,
    realm: Option<String>,
    /// Set when the validator accepts DPoP-bound tokens.
    dpop: Option<DpopChallenge>,
}

/// The `DPoP` challenge of a rejection.
#[derive(Debug)]
struct DpopChallenge {
    /// `algs`: the proof algorithms accepted, space-separated.
    algs: String,
    /// Whether the request used the `DPoP` scheme.
    used: bool,
    /// Whether bearer tokens are refused altogether.
    only: bool,
    /// The resource server's current DPoP nonce, when it asks for nonces (RFC 9449 §9): sent
    /// in the `DPoP-Nonce` header.
    nonce: Option<String>,
}

#[derive(Debug)]
enum RejectionKind {
    MissingToken,
    Invalid(ValidationError),
}

impl BearerRejection {
    /// 401, or 503 when the JWKS is unavailable.
    pub fn status(&self) -> StatusCode {
        match &self.kind {
            RejectionKind::Invalid(error) if error.is_unavailable() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// `"missing_token"`, or the [`ValidationError::reason`] code.
    pub fn reason(&self) -> &'static str {
        match &self.kind {
            RejectionKind::MissingToken => "missing_token",
            RejectionKind::Invalid(error) => error.reason(),
        }
    }

    /// The validation error, unless the token was missing.
    pub fn validation_error(&self) -> Option<&ValidationError> {
        match &self.kind {
            RejectionKind::MissingToken => None,
            RejectionKind::Invalid(error) => Some(error),
        }
    }

    /// The `WWW-Authenticate` challenges, in order: `Bearer` (unless only DPoP is accepted),
    /// then `DPoP` when it is accepted; the error goes on the scheme the request used, or on
    /// `DPoP` for a DPoP error.
    fn challenges(&self) -> Vec<String> {
        let error = match &self.kind {
            RejectionKind::Invalid(error) if error.is_unavailable() => return Vec::new(),
            RejectionKind::Invalid(error) => {
                let code = match error {
                    ValidationError::InvalidDpopProof(_) => "invalid_dpop_proof",
                    ValidationError::UseDpopNonce => "use_dpop_nonce",
                    _ => "invalid_token",
                };
                let dpop_error = matches!(
                    error,
                    ValidationError::InvalidDpopProof(_)
                        | ValidationError::UseDpopNonce
                        | ValidationError::DpopBound
                        | ValidationError::DpopKeyMismatch
                        | ValidationError::DpopRequired
                );
                Some((
                    vec![
                        format!("error=\"{code}\""),
                        format!("error_description=\"{}\"", quote(&error.to_string())),
                    ],
                    dpop_error,
                ))
            }
            RejectionKind::MissingToken => None,
        };
        let on_dpop = self.dpop.as_ref().is_some_and(|dpop| {
            dpop.only || dpop.used || error.as_ref().is_some_and(|(_, dpop_error)| *dpop_error)
        });
        let realm = self
            .realm
            .as_ref()
            .map(|realm| format!("realm=\"{}\"", quote(realm)));
        let mut challenges = Vec::new();
        if !self.dpop.as_ref().is_some_and(|dpop| dpop.only) {
            let mut params: Vec<String> = realm.iter().cloned().collect();
            if !on_dpop && let Some((error, _)) = &error {
                params.extend(error.iter().cloned());
            }
            challenges.push(if params.is_empty() {
                "Bearer".to_owned()
            } else {
                format!("Bearer {}", params.join(", "))
            });
        }
        if let Some(dpop) = &self.dpop {
            let mut params: Vec<String> = realm.iter().cloned().collect();
            params.push(format!("algs=\"{}\"", dpop.algs));
            if on_dpop && let Some((error, _)) = &error {
                params.extend(error.iter().cloned());
            }
            challenges.push(format!("DPoP {}", params.join(", ")));
        }
        challenges
    }
}

/// Escapes a quoted-string's content (RFC 9110 §5.6.4). Inputs are printable ASCII already:
/// the realm is filtered by `with_realm`, the descriptions are fixed English phrases.
fn quote(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(c, ' '..='~'))
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        let error = match &self.kind {
            RejectionKind::MissingToken => "unauthorized",
            RejectionKind::Invalid(error) if error.is_unavailable() => "temporarily_unavailable",
            RejectionKind::Invalid(_) => "invalid_token",
        };
        let body = axum::Json(serde_json::json!({ "error": error, "reason": self.reason() }));
        let mut response = (self.status(), body).into_response();
        for challenge in self.challenges() {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().append(WWW_AUTHENTICATE, value);
            }
        }
        if let Some(nonce) = self.dpop.as_ref().and_then(|dpop| dpop.nonce.as_deref())
            && let Ok(value) = HeaderValue::from_str(nonce)
        {
            response.headers_mut().insert(DPOP_NONCE, value);
        }
        response
    }
}

impl std::fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            RejectionKind::MissingToken => f.write_str("no bearer access token"),
            RejectionKind::Invalid(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for BearerRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.validation_error().map(|error| error as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `bearer_token` makes of these `Authorization` values, as text.
    fn classify(values: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        match bearer_token(&headers) {
            Credentials::Bearer(token) => format!("bearer {token}"),
            Credentials::Dpop(token) => format!("dpop {token}"),
            Credentials::None => "none".to_owned(),
            Credentials::Malformed => "malformed".to_owned(),
        }
    }

    #[test]
    fn challenges_follow_rfc_9449_when_dpop_is_accepted() {
        let dpop = |used, only| {
            Some(DpopChallenge {
                algs: "ES256 EdDSA".into(),
                used,
                only,
                nonce: None,
            })
        };
        let missing = BearerRejection {
            kind: RejectionKind::MissingToken,
            realm: None,
            dpop: dpop(false, false),
        };
        assert_eq!(
            missing.challenges(),
            ["Bearer", r#"DPoP algs="ES256 EdDSA""#]
        );
        // A bound token sent as a bearer token: the error is DPoP's.
        let bound = BearerRejection {
            kind: RejectionKind::Invalid(ValidationError::DpopBound),
            realm: None,
            dpop: dpop(false, false),
        };
        let challenges = bound.challenges();
        assert_eq!(challenges[0], "Bearer");
        assert!(challenges[1].starts_with(r#"DPoP algs="ES256 EdDSA", error="invalid_token""#));
        // A bad proof.
        let bad_proof = BearerRejection {
            kind: RejectionKind::Invalid(ValidationError::InvalidDpopProof(ProofError::Replayed)),
            realm: None,
            dpop: dpop(true, true),
        };
        assert_eq!(
            bad_proof.challenges(),
            [
                r#"DPoP algs="ES256 EdDSA", error="invalid_dpop_proof", error_description="the DPoP proof was used before""#
            ]
        );
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER  abc", "Bearer abc "] {
            assert_eq!(classify(&[value]), "bearer abc", "{value}");
        }
    }

    #[test]
    fn other_schemes_count_as_no_token_and_broken_bearer_headers_as_malformed() {
        assert_eq!(classify(&[]), "none");
        assert_eq!(classify(&["Basic YWxpY2U6cHc="]), "none");
        assert_eq!(classify(&["Bearerabc"]), "none");
        assert_eq!(classify(&["DPoP abc"]), "dpop abc");
        assert_eq!(classify(&["dpop abc"]), "dpop abc");
        for bad in [
            &["Bearer"][..],
            &["Bearer "],
            &["Bearer a b"],
            &["Bearer a", "Bearer a"],
        ] {
            assert_eq!(classify(bad), "malformed", "{bad:?}");
        }
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let missing = BearerRejection {
            kind: RejectionKind::MissingToken,
            realm: None,
            dpop: None,
        };
        assert_eq!(missing.challenges(), ["Bearer"]);
        let expired = BearerRejection {
            kind: RejectionKind::Invalid(ValidationError::Expired),
            realm: Some("a \"b\"".into()),
            dpop: None,
        };
        assert_eq!(
            expired.challenges(),
            [
                r#"Bearer realm="a \"b\"", error="invalid_token", error_description="the token has expired""#
            ]
        );
        let outage = BearerRejection {
            kind: RejectionKind::Invalid(ValidationError::JwksUnavailable),
            realm: None,
            dpop: None,
        };
        assert!(outage.challenges().is_empty());
        assert_eq!(outage.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
