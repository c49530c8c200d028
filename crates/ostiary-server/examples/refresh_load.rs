//! A load generator for the refresh grant against running IdP instances: each worker signs
//! in once (its own session and refresh family), then rotates its refresh token as fast as it
//! can, sending each request to the next instance in turn (so with two instances, every
//! rotation crosses instances). Prints throughput and latency percentiles.
//!
//! The instances need a public client `load` with redirect URI `http://127.0.0.1/cb` and
//! scope `offline_access` allowed (built in), and a user `load` with password
//! `load-passw0rd`; `scripts/loadtest.sh` sets that up and runs the scenarios.
//!
//! Run: `cargo run --release -p ostiary-server --example refresh_load -- \
//!        --workers 32 --seconds 20 http://127.0.0.1:8080 [http://127.0.0.1:8081 …]`

use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/sign_in.rs"]
mod support;
use support::{SignIn, sign_in};

struct Args {
    workers: usize,
    seconds: u64,
    instances: Vec<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        workers: 32,
        seconds: 20,
        instances: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--workers" => args.workers = it.next().unwrap_or_default().parse()?,
            "--seconds" => args.seconds = it.next().unwrap_or_default().parse()?,
            url => args.instances.push(url.trim_end_matches('/').to_owned()),
        }
    }
    anyhow::ensure!(!args.instances.is_empty(), "give at least one instance URL");
    Ok(args)
}

/// One worker's results: latencies of successful rotations (µs) and failures.
#[derive(Default)]
struct Outcome {
    latencies: Vec<u64>,
    failures: u64,
}

async fn worker(
    index: usize,
    instances: Vec<String>,
    signing_in: Arc<tokio::sync::Mutex<()>>,
    (start, until): (Instant, Instant),
) -> anyhow::Result<Outcome> {
    let first = &instances[index % instances.len()];
    // One sign-in at a time: parallel attempts for one user count against its failed-login
    // limit until each succeeds (that is the brute-force protection working).
    let one_at_a_time = signing_in.lock().await;
    let tokens = sign_in(&SignIn {
        base: first,
        client_id: "load",
        redirect_uri: "http://127.0.0.1/cb",
        scope: "openid offline_access",
        username: "load",
        password: "load-passw0rd",
    })
    .await?;
    drop(one_at_a_time);
    let mut refresh_token = tokens["refresh_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no refresh token"))?
        .to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;
    anyhow::ensure!(
        Instant::now() < start,
        "signing in took longer than the warm-up"
    );
    tokio::time::sleep_until(start.into()).await;
    let mut outcome = Outcome::default();
    let mut turn = index;
    while Instant::now() < until {
        turn += 1;
        let base = &instances[turn % instances.len()];
        let started = Instant::now();
        let response = http
            .post(format!("{base}/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
                ("client_id", "load"),
            ])
            .send()
            .await;
        let elapsed = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match response {
            Ok(r) if r.status() == 200 => {
                let body: serde_json::Value = r.json().await?;
                refresh_token = body["refresh_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                outcome.latencies.push(elapsed);
            }
            Ok(r) => {
                outcome.failures += 1;
                anyhow::bail!("rotation refused with {}: the chain is broken", r.status());
            }
            Err(_) => outcome.failures += 1,
        }
    }
    Ok(outcome)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // Everyone signs in first (Argon2 logins are not what is measured), then the clock starts.
    let start =
        Instant::now() + Duration::from_secs(5) + Duration::from_millis(50 * args.workers as u64);
    let until = start + Duration::from_secs(args.seconds);
    let signing_in = Arc::new(tokio::sync::Mutex::new(()));
    let handles: Vec<_> = (0..args.workers)
        .map(|i| {
            let instances = args.instances.clone();
            let signing_in = signing_in.clone();
            tokio::spawn(async move {
                let outcome = worker(i, instances, signing_in, (start, until));
                outcome.await
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for handle in handles {
        let outcome = handle.await??;
        latencies.extend(outcome.latencies);
        failures += outcome.failures;
    }
    latencies.sort_unstable();
    let measured = until.saturating_duration_since(start).as_secs_f64();
    println!(
        "instances={} workers={} rotations={} failures={} throughput={:.0}/s p50={:.2} ms p99={:.2} ms",
        args.instances.len(),
        args.workers,
        latencies.len(),
        failures,
        latencies.len() as f64 / measured,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
    );
    Ok(())
}
