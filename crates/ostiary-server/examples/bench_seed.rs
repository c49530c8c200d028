//! Seeds refresh families for `scripts/bench-refresh.sh`: signs in COUNT times through the code
//! flow with PKCE (each time a new session and a new refresh family) and prints one refresh
//! token a line on standard output.
//!
//! The instance needs a public client `load` with redirect URI `http://127.0.0.1/cb` and a user
//! `load` with password `load-passw0rd`, as `scripts/loadtest.sh` sets them up. Sign-ins go one
//! at a time: simultaneous attempts for one user count against its failed-login limit until
//! each succeeds.
//!
//! Run: `cargo run --release -p ostiary-server --example bench_seed -- \
//!        --count 256 [--scope offline_access] http://127.0.0.1:8080`

use std::io::Write as _;

#[path = "support/sign_in.rs"]
mod support;
use support::{SignIn, sign_in};

struct Args {
    count: usize,
    scope: String,
    base: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut count = 256;
    let mut scope = "offline_access".to_owned();
    let mut base = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--count" => count = it.next().unwrap_or_default().parse()?,
            "--scope" => scope = it.next().unwrap_or_default(),
            url => base = Some(url.trim_end_matches('/').to_owned()),
        }
    }
    let base = base.ok_or_else(|| anyhow::anyhow!("give the instance's URL"))?;
    Ok(Args { count, scope, base })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let mut out = std::io::stdout().lock();
    for i in 0..args.count {
        let tokens = sign_in(&SignIn {
            base: &args.base,
            client_id: "load",
            redirect_uri: "http://127.0.0.1/cb",
            scope: &args.scope,
            username: "load",
            password: "load-passw0rd",
        })
        .await
        .map_err(|e| anyhow::anyhow!("sign-in {} of {}: {e}", i + 1, args.count))?;
        let refresh_token = tokens["refresh_token"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("sign-in {}: no refresh token in {tokens}", i + 1))?;
        writeln!(out, "{refresh_token}")?;
    }
    out.flush()?;
    Ok(())
}
