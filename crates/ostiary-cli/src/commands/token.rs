//! `ostiary token verify`: validate an access token exactly as a resource server using
//! `ostiary-verify` would.

use std::io::Read as _;
use std::process::ExitCode;
use std::str::FromStr as _;
use std::time::Duration;

use clap::Subcommand;
use ostiary_verify::{Algorithm, Clock as _, JwksSource, Validator};
use serde_json::json;

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Validate an access token (RFC 9068). Prints the claims as JSON and exits 0, or prints
    /// `{"valid":false,"reason":…,"message":…}` and exits 1. `reason` is machine-readable:
    /// expired, bad_signature, wrong_audience, wrong_issuer, wrong_type, unknown_key,
    /// too_old, lifetime_too_long, dpop_bound, invalid_dpop_proof, dpop_key_mismatch, …
    ///
    /// A DPoP-bound token (RFC 9449) is checked as a resource server would with
    /// `--dpop-proof PROOF --url URL [--method METHOD]`: the proof's signature, htm, htu,
    /// iat and ath, and its key against the token's cnf.jkt. Without a proof, a bound token
    /// is refused (dpop_bound), as it would be as a bearer token. Each run is a process of
    /// its own: it cannot tell a proof it saw in an earlier run (a resource server remembers
    /// each proof's jti and refuses it the second time; ostiary-verify does).
    Verify {
        /// The access token, or `-` to read it from standard input.
        token: String,
        /// Where the issuer's public keys are: a JWKS file, or an http(s) URL (the issuer's
        /// `jwks_uri`).
        #[arg(long, value_name = "FILE_OR_URL")]
        jwks: String,
        /// Expected issuer (`iss`), compared exactly.
        #[arg(long, value_name = "ISS")]
        issuer: String,
        /// Expected audience: this resource server's identifier; must be in `aud`.
        #[arg(long, value_name = "AUD")]
        audience: String,
        /// Accepted signature algorithms, comma-separated. `none` and HMAC are never accepted.
        #[arg(
            long,
            value_name = "ALGS",
            value_delimiter = ',',
            default_value = "ES256,EdDSA,RS256"
        )]
        algorithms: Vec<String>,
        /// Clock skew allowed for exp, nbf and iat, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        leeway: u64,
        /// Reject a token issued longer ago than this: `iat` older than SECONDS plus the
        /// leeway (reason too_old). [default: no limit]
        #[arg(long, value_name = "SECONDS")]
        max_age: Option<u64>,
        /// Reject a token whose lifetime `exp - iat` exceeds this, e.g. an `exp` written in
        /// milliseconds (reason lifetime_too_long). [default: no limit]
        #[arg(long, value_name = "SECONDS")]
        max_lifetime: Option<u64>,
        /// Validate as if the time were this (Unix seconds), to ask "was this valid at T".
        /// [default: now]
        #[arg(long, value_name = "UNIX_SECONDS")]
        now: Option<i64>,
        /// The request's `DPoP` header: check the token as DPoP-bound with this proof.
        #[arg(long, value_name = "PROOF", requires = "url")]
        dpop_proof: Option<String>,
        /// With --dpop-proof: the request's HTTP method (the proof's htm).
        #[arg(
            long,
            value_name = "METHOD",
            default_value = "GET",
            requires = "dpop_proof"
        )]
        method: String,
        /// With --dpop-proof: the URL the request was sent to, as the resource server is
        /// known publicly (the proof's htu; query and fragment are ignored).
        #[arg(long, value_name = "URL", requires = "dpop_proof")]
        url: Option<String>,
    },
}

/// Prints why the token is not accepted; exits 1 even if no one reads it (the status is the
/// verdict).
fn fail(reason: &str, message: &str) -> anyhow::Result<ExitCode> {
    match out!(
        "{}",
        json!({"valid": false, "reason": reason, "message": message})
    ) {
        Err(e) if !crate::output::is_closed(&e) => Err(e),
        _ => Ok(ExitCode::FAILURE),
    }
}

/// Runs a token command.
pub async fn run(command: TokenCommand) -> anyhow::Result<ExitCode> {
    let TokenCommand::Verify {
        token,
        jwks,
        issuer,
        audience,
        algorithms,
        leeway,
        max_age,
        max_lifetime,
        now,
        dpop_proof,
        method,
        url,
    } = command;
    let token = if token == "-" {
        let mut input = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut input)?;
        input.trim().to_owned()
    } else {
        token
    };
    let mut allowed = Vec::new();
    for name in &algorithms {
        match Algorithm::from_str(name.trim()) {
            Ok(alg) => allowed.push(alg),
            Err(_) => {
                return fail(
                    "invalid_configuration",
                    &format!("unknown algorithm {name:?}"),
                );
            }
        }
    }
    let remote =
        (jwks.starts_with("http://") || jwks.starts_with("https://")).then(|| jwks.clone());
    let source = if jwks.starts_with("http://") || jwks.starts_with("https://") {
        JwksSource::remote(jwks)
    } else {
        match JwksSource::from_file(&jwks) {
            Ok(source) => source,
            Err(e) => return fail("invalid_configuration", &e.to_string()),
        }
    };
    let mut validator = match Validator::new(issuer, audience, &allowed, source) {
        Ok(v) => v.with_leeway(Duration::from_secs(leeway)),
        Err(e) => return fail("invalid_configuration", &e.to_string()),
    };
    if let Some(max_age) = max_age {
        validator = validator.with_max_age(Duration::from_secs(max_age));
    }
    if let Some(max_lifetime) = max_lifetime {
        validator = validator.with_max_lifetime(Duration::from_secs(max_lifetime));
    }
    if let Some(url) = &remote
        && let Err(e) = validator.prefetch().await
    {
        return fail(e.reason(), &format!("could not fetch the JWKS from {url}"));
    }
    let now = now.unwrap_or_else(|| ostiary_verify::SystemClock.now_unix());
    let result = match (&dpop_proof, &url) {
        (Some(proof), Some(url)) => {
            let request = ostiary_verify::DpopRequest {
                method: &method,
                url,
            };
            validator
                .validate_dpop_at(&token, proof, &request, now)
                .await
        }
        _ => validator.validate_at(&token, now).await,
    };
    match result {
        Ok(claims) => {
            out!("{}", serde_json::to_string_pretty(&claims)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(e.reason(), &e.to_string()),
    }
}
