//! DPoP proofs (RFC 9449) made in advance for `scripts/bench-refresh.sh --dpop`: wrk's Lua
//! cannot sign ECDSA, so the proofs each refresh request carries are signed here, right before
//! the run, and `bench/refresh.lua` takes the next one for every request.
//!
//! ```text
//! dpop_proofs key FILE
//!     makes a new ES256 (P-256) key, writes it to FILE (PKCS#8, DER) and prints its JWK
//!     SHA-256 thumbprint (RFC 7638; the value of cnf.jkt) on standard output.
//! dpop_proofs jkt FILE
//!     prints the thumbprint of the key in FILE.
//! dpop_proofs proofs --key FILE --url URL --count N [--method POST]
//!     prints N proofs by that key for METHOD URL, one a line: header
//!     {"typ":"dpop+jwt","alg":"ES256","jwk":{...}}, claims jti (128 random bits, base64url,
//!     unique to each proof), htm, htu (URL exactly as given: the token endpoint as the
//!     server's issuer names it) and iat (now, the same for all of them).
//! ```
//!
//! The servers accept a proof only while its `iat` is recent (Ostiary: at most 60 s old,
//! `ProofPolicy::default()` and its `dpop_proof_max_age`; oidc-provider: 300 s) and only once
//! (both keep a replay cache of the `jti`s), so a file of proofs serves one run, started
//! right after it is written.
//!
//! Run: `cargo run --release -p ostiary-server --example dpop_proofs -- \
//!        proofs --key /tmp/bench.key --url http://127.0.0.1:18290/token --count 80000`

use std::io::{BufWriter, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

/// The key in `path` (PKCS#8 DER, as `key` writes it).
fn load_key(path: &str) -> anyhow::Result<EcdsaKeyPair> {
    let pkcs8 = std::fs::read(path).with_context(|| format!("reading the key {path}"))?;
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
        .map_err(|e| anyhow!("{path} is not a P-256 PKCS#8 key: {e}"))
}

/// The public JWK's `x` and `y` (base64url) of `pair`.
fn coordinates(pair: &EcdsaKeyPair) -> (String, String) {
    // The uncompressed point: 0x04 || x || y.
    let point = pair.public_key().as_ref();
    (
        URL_SAFE_NO_PAD.encode(&point[1..33]),
        URL_SAFE_NO_PAD.encode(&point[33..65]),
    )
}

/// RFC 7638 §3: SHA-256 of the required members in lexicographic order, no white space.
fn thumbprint(pair: &EcdsaKeyPair) -> String {
    let (x, y) = coordinates(pair);
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

/// Writes `count` proofs for `method url` by `pair`, one a line, to standard output.
fn proofs(pair: &EcdsaKeyPair, method: &str, url: &str, count: usize) -> anyhow::Result<()> {
    let rng = SystemRandom::new();
    let (x, y) = coordinates(pair);
    let header = json!({
        "typ": "dpop+jwt",
        "alg": "ES256",
        "jwk": {"kty": "EC", "crv": "P-256", "x": x, "y": y},
    });
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut jti = [0u8; 16];
    for _ in 0..count {
        rng.fill(&mut jti).map_err(|_| anyhow!("no random bytes"))?;
        let claims = json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": url,
            "iat": iat,
        });
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = pair
            .sign(&rng, input.as_bytes())
            .map_err(|_| anyhow!("signing failed"))?;
        writeln!(
            out,
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )?;
    }
    out.flush()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("key") => {
            let path = args.get(1).context("key FILE")?;
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| anyhow!("could not make a key"))?;
            std::fs::write(path, pkcs8.as_ref()).with_context(|| format!("writing {path}"))?;
            println!("{}", thumbprint(&load_key(path)?));
        }
        Some("jkt") => {
            let path = args.get(1).context("jkt FILE")?;
            println!("{}", thumbprint(&load_key(path)?));
        }
        Some("proofs") => {
            let (mut key, mut url, mut count, mut method) = (None, None, None, "POST".to_owned());
            let mut it = args.iter().skip(1);
            while let Some(arg) = it.next() {
                let mut value = || it.next().cloned().context(format!("{arg} needs a value"));
                match arg.as_str() {
                    "--key" => key = Some(value()?),
                    "--url" => url = Some(value()?),
                    "--count" => count = Some(value()?.parse::<usize>()?),
                    "--method" => method = value()?,
                    other => bail!("unknown argument {other}"),
                }
            }
            let pair = load_key(&key.context("--key FILE is needed")?)?;
            proofs(
                &pair,
                &method,
                &url.context("--url URL is needed")?,
                count.context("--count N is needed")?,
            )?;
        }
        _ => bail!(
            "usage: dpop_proofs key FILE | jkt FILE | proofs --key FILE --url URL --count N [--method POST]"
        ),
    }
    Ok(())
}
