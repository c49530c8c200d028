//! `kill -9` in the middle of a refresh storm loses no answered rotation: SQLite's writer
//! answers a rotation only once the batch it was committed in is durable, so after a restart
//! the last refresh token each client was given still works (as the current token, or as a
//! replay of one whose answer the kill swallowed), and nothing looks like a theft.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

mod common;
use common::*;

/// Refresh chains running at once, each as a client would: one request at a time, always
/// with the last token it was given.
const CHAINS: usize = 8;
/// Rotations answered before the server is killed.
const BEFORE_KILL: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_during_a_refresh_storm_loses_no_answered_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = Env {
        database: format!("sqlite://{}", dir.path().join("ostiary.db").display()),
        kek: None,
    };
    env.ostiary(
        &["user", "add", "alice", "--password-stdin"],
        Some("a-long-passw0rd\n"),
    );
    env.add_app();
    let mut server = env.serve();
    let mut firsts = Vec::new();
    for _ in 0..CHAINS {
        let tokens = sign_in(&signing_in(&server.base, "app"))
            .await
            .expect("sign-in");
        firsts.push(rt(&tokens));
    }

    let answered = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut chains = Vec::new();
    for first in firsts {
        let (base, answered, killed) = (server.base.clone(), answered.clone(), killed.clone());
        chains.push(tokio::spawn(async move {
            let mut last = first;
            let client = reqwest::Client::new();
            loop {
                let sent = client
                    .post(format!("{base}/token"))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", last.as_str()),
                        ("client_id", "app"),
                    ])
                    .send()
                    .await;
                let body = match sent {
                    Ok(response) if response.status().is_success() => response.json().await,
                    Ok(response) => {
                        assert!(
                            killed.load(Ordering::SeqCst),
                            "refused before the kill: {}",
                            response.status()
                        );
                        return last;
                    }
                    Err(_) => return last, // the server is gone
                };
                match body {
                    Ok(body) => {
                        last = rt(&body);
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => return last, // cut off mid-answer: not answered
                }
            }
        }));
    }
    while answered.load(Ordering::SeqCst) < BEFORE_KILL {
        tokio::task::yield_now().await;
    }
    killed.store(true, Ordering::SeqCst);
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    let mut lasts = Vec::new();
    for chain in chains {
        lasts.push(chain.await.expect("chain"));
    }

    let restarted = env.serve();
    for last in &lasts {
        let (status, body) = refresh(&restarted.base, last).await;
        assert_eq!(
            status, 200,
            "the last token given out works after the crash: {body}"
        );
        let (status, _) = refresh(&restarted.base, &rt(&body)).await;
        assert_eq!(status, 200, "and its chain goes on");
    }
    let audit = env.ostiary(&["audit", "--kind", "refresh_token_reuse_detected"], None);
    assert_eq!(
        String::from_utf8_lossy(&audit.stdout).lines().count(),
        0,
        "a crash is not a theft"
    );
    drop(restarted);
}
