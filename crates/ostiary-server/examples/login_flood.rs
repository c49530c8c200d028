//! A flood of correct password sign-ins for `scripts/bench-refresh.sh --login-flood`: WORKERS
//! concurrent clients, each signing in through the whole code flow with PKCE (authorization
//! endpoint, login form POSTed with the right password, code exchange; a fresh cookie jar and
//! a new session every time), one sign-in after another, until stopped.
//!
//! Worker `i` signs in as the `i mod n`-th of the users given with `--users` (all with the one
//! `--password`), to the public client `load` with redirect URI `http://127.0.0.1/cb`. Every
//! sign-in that does not end with a token response holding an access token is a failure: it
//! is counted by kind (the first message of each kind is kept) and the worker goes on.
//!
//! It stops after `--seconds` (0, the default: never), on SIGTERM or on SIGINT, and then
//! prints one line starting with `FLOOD` (key=value pairs, latencies of successful sign-ins in
//! ms) and one `FLOOD-FAILURES` line per kind of failure. Sign-ins in flight at that moment are
//! abandoned, neither successes nor failures. On SIGUSR1 it prints a `MARK` line with the
//! counts so far (the script marks the start and the end of its measured run). `FIRST` is
//! printed once, when the first sign-in has ended (either way).
//!
//! Run: `cargo run --release -p ostiary-server --example login_flood -- \
//!        --workers 4 --users flood-1,flood-2 --password flood-passw0rd [--seconds 10] \
//!        [--scope "openid offline_access"] http://127.0.0.1:8080`

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};

#[path = "support/sign_in.rs"]
mod support;
use support::{SignIn, sign_in};

struct Args {
    workers: usize,
    seconds: u64,
    users: Vec<String>,
    password: String,
    scope: String,
    base: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut workers = 4;
    let mut seconds = 0;
    let mut users = vec!["flood".to_owned()];
    let mut password = "flood-passw0rd".to_owned();
    let mut scope = "openid offline_access".to_owned();
    let mut base = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--workers" => workers = value()?.parse()?,
            "--seconds" => seconds = value()?.parse()?,
            "--users" => {
                users = value()?
                    .split([',', ' '])
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "--password" => password = value()?,
            "--scope" => scope = value()?,
            url if !url.starts_with("--") => base = Some(url.trim_end_matches('/').to_owned()),
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    anyhow::ensure!(workers > 0, "--workers must be at least 1");
    anyhow::ensure!(!users.is_empty(), "--users must name at least one user");
    let base = base.ok_or_else(|| anyhow::anyhow!("give the instance's URL"))?;
    Ok(Args {
        workers,
        seconds,
        users,
        password,
        scope,
        base,
    })
}

/// Counts of every worker.
#[derive(Default)]
struct Stats {
    ok: u64,
    failed: u64,
    /// Durations of successful sign-ins, µs.
    latencies: Vec<u64>,
    /// Failures by kind: how many, and the first message of the kind.
    failures: BTreeMap<String, (u64, String)>,
}

/// A failure's kind: its message with URLs (which carry codes and states) left out, cut short.
fn kind(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find("http://").or_else(|| rest.find("https://")) {
        out.push_str(&rest[..at]);
        out.push_str("URL");
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| c.is_whitespace() || c == ')' || c == '"')
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out.chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .take(120)
        .collect()
}

async fn worker(user: String, args: Arc<Args>, stats: Arc<Mutex<Stats>>, first: Arc<AtomicBool>) {
    loop {
        let started = Instant::now();
        let outcome = sign_in(&SignIn {
            base: &args.base,
            client_id: "load",
            redirect_uri: "http://127.0.0.1/cb",
            scope: &args.scope,
            username: &user,
            password: &args.password,
        })
        .await
        .and_then(|tokens| {
            anyhow::ensure!(
                tokens["access_token"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty()),
                "token response without an access token: {tokens}"
            );
            Ok(())
        });
        let elapsed = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        {
            let mut stats = stats.lock().unwrap_or_else(|e| e.into_inner());
            match outcome {
                Ok(()) => {
                    stats.ok += 1;
                    stats.latencies.push(elapsed);
                }
                Err(e) => {
                    stats.failed += 1;
                    let message = format!("{e:#}");
                    let entry = stats
                        .failures
                        .entry(kind(&message))
                        .or_insert_with(|| (0, message));
                    entry.0 += 1;
                }
            }
        }
        if !first.swap(true, Ordering::Relaxed) {
            println!("FIRST");
        }
        // A refused connection must not turn the loop into a busy spin.
        if elapsed < 1_000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(parse_args()?);
    // Before any worker starts: SIGUSR1's default action would end the process.
    let mut mark = signal(SignalKind::user_defined1())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let stats = Arc::new(Mutex::new(Stats::default()));
    let first = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    for i in 0..args.workers {
        let user = args.users[i % args.users.len()].clone();
        tokio::spawn(worker(user, args.clone(), stats.clone(), first.clone()));
    }
    let deadline = async {
        if args.seconds > 0 {
            tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            // A MARK asked for before a stop is printed before it.
            biased;
            _ = mark.recv() => {
                let stats = stats.lock().unwrap_or_else(|e| e.into_inner());
                println!(
                    "MARK ok={} failed={} elapsed_ms={}",
                    stats.ok,
                    stats.failed,
                    start.elapsed().as_millis()
                );
            }
            _ = term.recv() => break,
            _ = interrupt.recv() => break,
            () = &mut deadline => break,
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut stats = stats.lock().unwrap_or_else(|e| e.into_inner());
    stats.latencies.sort_unstable();
    let l = &stats.latencies;
    println!(
        "FLOOD workers={} users={} seconds={seconds:.3} signins={} ok={} failed={} ok_per_s={:.1} \
         p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        args.workers,
        args.users.len(),
        stats.ok + stats.failed,
        stats.ok,
        stats.failed,
        stats.ok as f64 / seconds,
        percentile(l, 50.0),
        percentile(l, 90.0),
        percentile(l, 99.0),
        percentile(l, 100.0),
    );
    for (kind, (count, first)) in &stats.failures {
        let first: String = first.chars().take(300).collect();
        println!("FLOOD-FAILURES count={count} kind={kind} first: {first}");
    }
    Ok(())
}
