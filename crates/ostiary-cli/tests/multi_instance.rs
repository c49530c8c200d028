//! Two `ostiary serve` processes on one PostgreSQL database behave as one identity provider:
//! a session created on one is refreshed on the other, concurrent refreshes of one token sent
//! to both get one successor, reuse is detected across them, a logout at one reaches the
//! revocation stream of the other, and a back-channel logout is sent once.
//!
//! Needs `OSTIARY_TEST_DATABASE_URL` naming a PostgreSQL server (each test creates its own
//! database there): the tests are ignored unless asked for (`-- --include-ignored`, as
//! `scripts/test` does when the variable is set), and fail if asked for without it.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ostiary_store::testing::ScratchDatabase;

mod common;
use common::*;

async fn setup(what: &str) -> (ScratchDatabase, Env) {
    let database = ScratchDatabase::create(what).await;
    let kek = ostiary_core::keys::KeyEncryptionKey::generate_encoded();
    let env = Env {
        database: database.url().to_owned(),
        kek: Some(kek),
    };
    env.ostiary(
        &["user", "add", "alice", "--password-stdin"],
        Some("a-long-passw0rd\n"),
    );
    (database, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs OSTIARY_TEST_DATABASE_URL"]
async fn two_instances_share_sessions_rotations_and_reuse_detection() {
    let (database, env) = setup("the multi-instance tests").await;
    env.add_app();
    // Migrating needs the database URL only, not the key-encryption key.
    let migrated = Command::new(env!("CARGO_BIN_EXE_ostiary"))
        .arg("migrate")
        .env("OSTIARY_DATABASE_URL", &env.database)
        .env_remove("OSTIARY_KEY_ENCRYPTION_KEY")
        .output()
        .expect("ostiary migrate runs");
    assert!(migrated.status.success(), "{migrated:?}");
    let (a, b) = (env.serve(), env.serve());

    // Signed in at A, refreshed at B.
    let tokens = sign_in(&signing_in(&a.base, "app"))
        .await
        .expect("sign in at A");
    let (status, at_b) = refresh(&b.base, &rt(&tokens)).await;
    assert_eq!(status, 200, "{at_b}");
    let g1 = rt(&at_b);

    // The same token at both instances at once: one successor, handed to both.
    let ((sa, ra), (sb, rb)) = tokio::join!(refresh(&a.base, &g1), refresh(&b.base, &g1));
    assert_eq!((sa, sb), (200, 200), "{ra} {rb}");
    assert_eq!(rt(&ra), rt(&rb), "exactly one successor");
    let g2 = rt(&ra);

    // Rotated on, an older token comes back at the other instance: reuse, the session ends
    // everywhere.
    let (status, g3) = refresh(&a.base, &g2).await;
    assert_eq!(status, 200);
    let (status, body) = refresh(&b.base, &g1).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    let (status, _) = refresh(&a.base, &rt(&g3)).await;
    assert_eq!(status, 400, "the session ended for every instance");
    let audit = env.ostiary(&["audit", "--kind", "refresh_token_reuse_detected"], None);
    assert_eq!(String::from_utf8_lossy(&audit.stdout).lines().count(), 1);

    drop((a, b));
    database.drop_now().await.expect("drop the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs OSTIARY_TEST_DATABASE_URL"]
async fn a_logout_at_one_instance_reaches_the_others_stream_and_back_channel_once() {
    let (database, env) = setup("the multi-instance tests").await;
    // A client's back-channel logout endpoint that counts what it receives.
    let hits = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(tokio::sync::Notify::new());
    let router = axum::Router::new().route(
        "/bc",
        axum::routing::post({
            let (hits, received) = (hits.clone(), received.clone());
            move || async move {
                hits.fetch_add(1, Ordering::SeqCst);
                received.notify_one();
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bc = format!("http://{}/bc", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    env.ostiary(
        &[
            "client",
            "add",
            "rp",
            "--public",
            "--redirect-uri",
            REDIRECT,
            "--backchannel-logout-uri",
            &bc,
        ],
        None,
    );
    let (a, b) = (env.serve(), env.serve());
    let tokens = sign_in(&signing_in(&a.base, "rp"))
        .await
        .expect("sign in at A");
    let access = tokens["access_token"].as_str().unwrap();
    let sid = jwt_claim(access, "sid");

    // B's revocation stream is open before the logout happens at A.
    let mut stream = reqwest::Client::new()
        .get(format!("{}/revocations/stream", b.base))
        .send()
        .await
        .unwrap();
    let logout = reqwest::Client::new()
        .get(format!("{}/logout", a.base))
        .query(&[("id_token_hint", tokens["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains(&sid) {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("B's stream carries A's logout");
    assert!(seen.contains("event: revocation"));

    // Both instances run back-channel workers; the client hears of the logout once.
    tokio::time::timeout(Duration::from_secs(20), received.notified())
        .await
        .expect("the back-channel logout arrives");
    let delivered = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let pending = env.ostiary(&["backchannel", "list"], None);
            if pending.stdout.is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(delivered.is_ok(), "the delivery is recorded");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "sent once, not once per instance"
    );
    let audit = env.ostiary(&["audit", "--kind", "backchannel_delivered"], None);
    assert_eq!(String::from_utf8_lossy(&audit.stdout).lines().count(), 1);

    drop((a, b));
    database.drop_now().await.expect("drop the database");
}

fn jwt_claim(jwt: &str, name: &str) -> String {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    claims[name].as_str().expect("a string claim").to_owned()
}

/// The `kid`s an instance publishes.
async fn published_kids(base: &str) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::get(format!("{base}/jwks.json"))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// Waits (at most `limit`) until none of `instances` publishes any of `withdrawn`; returns how
/// long that took.
async fn until_withdrawn(
    instances: &[&Instance],
    withdrawn: &[String],
    limit: Duration,
) -> Duration {
    let started = std::time::Instant::now();
    tokio::time::timeout(limit, async {
        for instance in instances {
            while published_kids(&instance.base)
                .await
                .iter()
                .any(|kid| withdrawn.contains(kid))
            {
                tokio::task::yield_now().await;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("an instance still publishes a withdrawn key after {limit:?}"));
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs OSTIARY_TEST_DATABASE_URL"]
async fn an_emergency_rotation_from_the_command_line_reaches_every_instance_within_seconds() {
    let (database, env) = setup("the multi-instance tests").await;
    let (a, b) = (env.serve(), env.serve());
    let before = published_kids(&a.base).await;
    assert_eq!(published_kids(&b.base).await, before);

    env.ostiary(&["keys", "rotate", "--immediately"], None);
    // PostgreSQL notifies every instance of the withdrawal at once.
    let took = until_withdrawn(&[&a, &b], &before, Duration::from_secs(2)).await;
    eprintln!("both instances dropped the withdrawn keys {took:?} after the command");
    let after = published_kids(&b.base).await;
    assert_eq!(after.len(), 2, "the new ES256 and RS256 keys: {after:?}");
    assert_eq!(published_kids(&a.base).await, after);

    drop((a, b));
    database.drop_now().await.expect("drop the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sqlite_the_keys_are_sealed_by_default_and_a_withdrawal_from_the_command_line_reaches_the_server()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ostiary.db");
    let env = Env {
        database: format!("sqlite://{}", db.display()),
        kek: None,
    };
    // Commands that touch no signing key need no key-encryption key, and make none.
    env.ostiary(&["user", "list"], None);
    let kek_file = dir.path().join("ostiary.db.kek");
    assert!(!kek_file.exists());

    let server = env.serve();
    // The server made the database's own key-encryption key, private to its owner, and
    // sealed the signing keys with it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&kek_file)
            .expect("the .kek file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let listed = env.ostiary(&["keys", "list"], None);
    let keys: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k["encrypted"] == true), "{keys:?}");
    let before = published_kids(&server.base).await;

    // The CLI is another process on SQLite: the server hears of it by re-reading the feed.
    env.ostiary(&["keys", "rotate", "--immediately"], None);
    let took = until_withdrawn(&[&server], &before, Duration::from_secs(3)).await;
    eprintln!("the server dropped the withdrawn keys {took:?} after the command");
    let audit = env.ostiary(&["audit", "--kind", "signing_key_withdrawn"], None);
    let withdrawn = String::from_utf8_lossy(&audit.stdout).into_owned();
    assert_eq!(withdrawn.lines().count(), 2);
    assert!(withdrawn.contains("\"actor\":\"cli"), "{withdrawn}");

    // Without its key-encryption key the sealed keys cannot be used: refused, with the fix.
    std::fs::rename(&kek_file, dir.path().join("elsewhere.kek")).expect("move the kek");
    drop(server);
    let refused = env
        .command()
        .args(["keys", "rotate"])
        .output()
        .expect("ostiary runs");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("sealed") && stderr.contains("ostiary.db.kek"),
        "{stderr}"
    );
    assert!(!kek_file.exists(), "no new key was made over sealed keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs OSTIARY_TEST_DATABASE_URL"]
async fn on_postgresql_only_the_commands_that_use_signing_keys_ask_for_the_key_encryption_key() {
    let database = ScratchDatabase::create("the multi-instance tests").await;
    let env = Env {
        database: database.url().to_owned(),
        kek: None,
    };
    env.ostiary(
        &["user", "add", "alice", "--password-stdin"],
        Some("a-long-passw0rd\n"),
    );
    for args in [
        &["user", "list"][..],
        &[
            "client",
            "add",
            "app",
            "--public",
            "--redirect-uri",
            REDIRECT,
        ],
        &["client", "list"],
        &["session", "list"],
        &["audit"],
        &["keys", "list"],
        &["backchannel", "list"],
        &["user", "unlock", "alice"],
    ] {
        env.ostiary(args, None);
    }
    for args in [&["serve"][..], &["keys", "rotate"]] {
        let refused = env.command().args(args).output().expect("ostiary runs");
        assert!(!refused.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("key-encryption key is required"),
            "{stderr}"
        );
    }
    database.drop_now().await.expect("drop the database");
}
