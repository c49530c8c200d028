//! DPoP proofs (RFC 9449): the JWT a client sends in the `DPoP` header to show it holds the
//! private key its tokens are bound to.
//!
//! [`verify_proof`] does RFC 9449 §4.3's checks that need nothing but the proof and the
//! request: one well-formed JWS (§4.3 steps 1–3), `typ: dpop+jwt` (4), an asymmetric `alg` the
//! caller allows (5), a public `jwk` of a kind that verifies that `alg` (7), the signature
//! with that key (6), `htm` and `htu` of this request (8, 9; `htu` compared without query and
//! fragment, after RFC 3986 §6 syntax- and scheme-based normalisation), `iat` within the
//! window (11), and `ath`, the hash of the access token presented with it (§7, §4.3 step 12).
//! What needs state is the caller's: that `jti` was not seen before within the window (§11.1;
//! [`Proof::jti`]), and that `nonce` is one the server gave out (§8, §9; [`Proof::nonce`]).
//!
//! The key's identity is its JWK SHA-256 thumbprint (RFC 7638, [`Proof::jkt`]): the value of
//! an access token's `cnf.jkt` (§6.1) and of the `dpop_jkt` authorization parameter (§10).
//!
//! Like every JOSE object Ostiary reads, the header and claims are JSON objects without
//! repeated member names ([`strict_json`](crate::strict_json)); `crit`, `b64`, `zip` and `enc`
//! are refused, as they would change how the signature is computed. Errors never quote the
//! proof.

mod key;
mod key_cache;
pub mod nonce;
mod read;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily};

use self::key::{algorithm_named, public_key};
use self::read::{Claims, Header, Loose};

/// The `typ` of a DPoP proof (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";

/// The fully specified JOSE name of EdDSA with the Ed25519 curve (RFC 9864 §2.2).
pub const ED25519: &str = "Ed25519";

/// The longest proof accepted, in bytes: an RSA-4096 key in the header fits several times.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// The longest `jti` accepted, in bytes (RFC 9449 asks for at least 96 bits of randomness;
/// anything far longer only makes the replay cache larger).
pub const MAX_JTI_LEN: usize = 256;

/// The algorithms a proof may be signed with unless configured otherwise: ES256 (what
/// browsers' WebCrypto and most client libraries use) and EdDSA (Ed25519), RS256 and PS256
/// for clients with RSA keys, ES384. Never `none` nor HMAC.
pub const DEFAULT_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::ES384,
    Algorithm::PS256,
    Algorithm::RS256,
];

/// How proofs are judged: the algorithms allowed and the `iat` window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofPolicy {
    /// The algorithms accepted (asymmetric only; an HMAC one listed here is still refused).
    /// Default [`DEFAULT_ALGORITHMS`]; also what discovery's
    /// `dpop_signing_alg_values_supported` lists.
    pub algorithms: Vec<Algorithm>,
    /// How old `iat` may be, in seconds. Default 60. The replay cache must keep each `jti` at
    /// least this long (plus `max_future`).
    pub max_age: u64,
    /// How far `iat` may be ahead of this clock, in seconds (clock skew). Default 5.
    pub max_future: u64,
}

impl Default for ProofPolicy {
    fn default() -> Self {
        Self {
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            max_age: 60,
            max_future: 5,
        }
    }
}

impl ProofPolicy {
    /// How long, in seconds, a proof issued at `iat` stays acceptable: until then its `jti`
    /// must be remembered (RFC 9449 §11.1).
    pub fn acceptable_until(&self, iat: u64) -> u64 {
        iat.saturating_add(self.max_age)
    }
}

/// The request a proof came with.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The HTTP method (`htm`, compared exactly: methods are case-sensitive).
    pub method: &'a str,
    /// The URL the request was sent to, as this server is known publicly (its configured
    /// external URL and the path; never built from a client-supplied `Host`). Its query and
    /// fragment are ignored.
    pub url: &'a str,
    /// The access token presented with the proof (resource requests, `/userinfo`): then
    /// `ath` must be its hash (§4.2, §7). `None` at the token endpoint.
    pub access_token: Option<&'a str>,
}

/// A proof whose signature and request binding are good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The JWK SHA-256 thumbprint of the proof's key (RFC 7638), base64url: `cnf.jkt`.
    pub jkt: String,
    /// The proof's unique id: the caller must refuse one it saw within the window.
    pub jti: String,
    /// When the client made the proof (Unix seconds).
    pub iat: u64,
    /// The server-provided nonce the proof carries, if any (§8): the caller checks it.
    pub nonce: Option<String>,
    /// The algorithm it was signed with.
    pub alg: Algorithm,
}

/// Why a proof was refused. At the token endpoint every one is the `invalid_dpop_proof`
/// error (RFC 9449 §5); at a resource server, `WWW-Authenticate: DPoP error="invalid_dpop_proof"`
/// (§7.1). The text is meant for `error_description` and never quotes the proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Longer than [`MAX_PROOF_LEN`].
    #[error("the DPoP proof is too long")]
    TooLong,
    /// Not a compact JWS of three base64url parts with JSON objects in them, or a claim of the
    /// wrong type.
    #[error("the DPoP proof is not a well-formed JWT")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's typ must be dpop+jwt")]
    WrongType,
    /// `alg` missing, not asymmetric, or not allowed.
    #[error("the DPoP proof's alg is not supported")]
    AlgorithmNotAllowed,
    /// `crit`, `b64`, `zip` or `enc` in the header.
    #[error("the DPoP proof's header has a member that is not supported")]
    UnsupportedHeader,
    /// `jwk` missing, not a usable public key, private, or of a kind that does not verify
    /// `alg`.
    #[error("the DPoP proof's jwk must be a public key that verifies its alg")]
    InvalidKey,
    /// The signature does not verify with the header's key.
    #[error("the DPoP proof's signature is invalid")]
    BadSignature,
    /// A required claim (`jti`, `htm`, `htu`, `iat`, or `ath` with an access token) is missing.
    #[error("the DPoP proof lacks the {0} claim")]
    MissingClaim(&'static str),
    /// `htm` is not this request's method.
    #[error("the DPoP proof's htm does not match the request's method")]
    MethodMismatch,
    /// `htu` is not this request's URL.
    #[error("the DPoP proof's htu does not match the request's URL")]
    UrlMismatch,
    /// `iat` is older than the window, or too far in the future.
    #[error("the DPoP proof's iat is outside the acceptable window")]
    OutsideWindow,
    /// `ath` is not the hash of the access token presented.
    #[error("the DPoP proof's ath does not match the access token")]
    AccessTokenHashMismatch,
    /// The proof was accepted before within its window: never [`verify_proof`]'s answer, but
    /// that of the caller's replay cache (§11.1).
    #[error("the DPoP proof was used before")]
    Replayed,
}

/// Checks `proof` for `request` at `now` (Unix seconds) under `policy` (RFC 9449 §4.3).
///
/// # Errors
/// The first check that fails, as a [`ProofError`].
pub fn verify_proof(
    proof: &str,
    request: &ProofRequest<'_>,
    policy: &ProofPolicy,
    now: u64,
) -> Result<Proof, ProofError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::TooLong);
    }
    let Parts {
        signing_input,
        header,
        payload,
        signature,
        encoded_signature,
    } = split(proof)?;
    let header: Header = read::object(&header).map_err(|_| ProofError::Malformed)?;
    let alg = check_header(&header, &policy.algorithms)?;
    let key = public_key(header.jwk, alg)?;
    key.verify(alg, signing_input, &signature, encoded_signature)?;

    let claims: Claims = read::object(&payload).map_err(|_| ProofError::Malformed)?;
    let jti = text("jti", &claims.jti)?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(ProofError::Malformed);
    }
    if text("htm", &claims.htm)? != request.method {
        return Err(ProofError::MethodMismatch);
    }
    if !same_target(text("htu", &claims.htu)?, request.url) {
        return Err(ProofError::UrlMismatch);
    }
    let iat = match claims.iat {
        None => return Err(ProofError::MissingClaim("iat")),
        Some(Loose::Unsigned(iat)) => iat,
        Some(_) => return Err(ProofError::Malformed),
    };
    if iat > now.saturating_add(policy.max_future) || policy.acceptable_until(iat) < now {
        return Err(ProofError::OutsideWindow);
    }
    if let Some(access_token) = request.access_token
        && text("ath", &claims.ath)? != access_token_hash(access_token)
    {
        return Err(ProofError::AccessTokenHashMismatch);
    }
    let nonce = match &claims.nonce {
        None => None,
        Some(Loose::Text(nonce)) => Some(nonce.to_string()),
        Some(_) => return Err(ProofError::Malformed),
    };
    Ok(Proof {
        jkt: key.jkt,
        jti: jti.to_owned(),
        iat,
        nonce,
        alg,
    })
}

/// The text of a required claim: absent is [`ProofError::MissingClaim`], another type
/// [`ProofError::Malformed`].
fn text<'c>(name: &'static str, claim: &'c Option<Loose<'_>>) -> Result<&'c str, ProofError> {
    match claim {
        None => Err(ProofError::MissingClaim(name)),
        Some(Loose::Text(value)) => Ok(value),
        Some(_) => Err(ProofError::Malformed),
    }
}

/// The `algs` parameter of a `WWW-Authenticate: DPoP` challenge (RFC 9449 §7.1): the JOSE
/// names of `algorithms`, space-separated, e.g. `ES256 EdDSA`.
pub fn algs_parameter(algorithms: &[Algorithm]) -> String {
    algorithm_names(algorithms).join(" ")
}

/// The JOSE names of `algorithms` as servers advertise them (`dpop_signing_alg_values_supported`,
/// `algs`): each one's name (`ES256`, `EdDSA`, `PS256`, …), and after `EdDSA` also `Ed25519`,
/// its fully specified name (RFC 9864), which a proof may carry instead.
pub fn algorithm_names(algorithms: &[Algorithm]) -> Vec<String> {
    let mut names = Vec::with_capacity(algorithms.len() + 1);
    for alg in algorithms {
        // `Algorithm`'s Debug text is its JOSE name.
        names.push(format!("{alg:?}"));
        if *alg == Algorithm::EdDSA {
            names.push(ED25519.to_owned());
        }
    }
    names
}

/// The `ath` of an access token: base64url(SHA-256(ASCII token)) (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, access_token.as_bytes()))
}

/// A compact JWS taken apart: the signing input, the header's and the payload's bytes, the
/// signature decoded and as sent.
struct Parts<'a> {
    signing_input: &'a str,
    header: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    encoded_signature: &'a str,
}

/// The three parts of a compact JWS, decoded.
fn split(proof: &str) -> Result<Parts<'_>, ProofError> {
    let mut parts = proof.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| ProofError::Malformed)
    };
    let decoded_signature = decode(signature)?;
    if decoded_signature.is_empty() {
        return Err(ProofError::Malformed);
    }
    Ok(Parts {
        signing_input: &proof[..proof.len() - signature.len() - 1],
        header: decode(header)?,
        payload: decode(payload)?,
        signature: decoded_signature,
        encoded_signature: signature,
    })
}

fn check_header(header: &Header<'_>, allowed: &[Algorithm]) -> Result<Algorithm, ProofError> {
    let alg = match &header.alg {
        Some(Loose::Text(alg)) => algorithm_named(alg).ok_or(ProofError::AlgorithmNotAllowed)?,
        Some(_) => return Err(ProofError::Malformed),
        None => return Err(ProofError::AlgorithmNotAllowed),
    };
    if alg.family() == AlgorithmFamily::Hmac || !allowed.contains(&alg) {
        return Err(ProofError::AlgorithmNotAllowed);
    }
    if header.refused {
        return Err(ProofError::UnsupportedHeader);
    }
    match header.typ.as_ref().and_then(Loose::text) {
        // Media type names are case-insensitive (RFC 2045 §5.1).
        Some(typ)
            if typ.eq_ignore_ascii_case(DPOP_TYP)
                || typ.eq_ignore_ascii_case("application/dpop+jwt") => {}
        _ => return Err(ProofError::WrongType),
    }
    Ok(alg)
}

/// Whether `htu` names the same target as `url`, ignoring query and fragment (RFC 9449 §4.3
/// step 9), after syntax- and scheme-based normalisation (RFC 3986 §6.2.2, §6.2.3: case of
/// scheme and host, default port, dot segments, an empty path as `/`). Only `http` and
/// `https` URLs match anything.
fn same_target(htu: &str, url: &str) -> bool {
    // The common case: the client named the URL exactly as the server knows it (RFC 9449
    // §4.3 step 9 before any normalisation). The server's own URL is an http(s) URL: nothing
    // to parse.
    let target = url.split(['?', '#']).next().unwrap_or(url);
    if htu == target && (target.starts_with("https://") || target.starts_with("http://")) {
        return !htu.bytes().any(|b| b <= b' ' || b == 0x7f);
    }
    let normalised = |text: &str| {
        // The URL parser forgives spaces and control characters (as browsers do); a proof
        // names its target exactly.
        if text.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return None;
        }
        let mut url = url::Url::parse(text).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        url.set_query(None);
        url.set_fragment(None);
        Some(url)
    };
    match (normalised(htu), normalised(url)) {
        (Some(htu), Some(url)) => htu == url,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
