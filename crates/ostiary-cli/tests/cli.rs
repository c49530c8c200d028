//! The `ostiary` binary as an operator uses it.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn ostiary(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ostiary"))
        .args(args)
        .env("OSTIARY_DATABASE_URL", db)
        .env_remove("OSTIARY_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ostiary runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("ostiary exits")
}

fn database() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    (dir, url)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// An ES256 key pair that signs compact JWS (tokens, DPoP proofs) for the verify tests.
struct Signer(aws_lc_rs::signature::EcdsaKeyPair);

impl Signer {
    fn new() -> Self {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        Self(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key"))
    }

    /// The public key as a JWK (`kty`, `crv`, `x`, `y` only).
    fn public_jwk(&self) -> serde_json::Value {
        use aws_lc_rs::signature::KeyPair as _;
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        let point = self.0.public_key().as_ref();
        serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])})
    }

    fn sign(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = self
            .0
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .expect("sign");
        format!("{input}.{}", B64.encode(signature))
    }

    /// A JWKS file in `dir` with this key as `k1`.
    fn jwks_file(&self, dir: &tempfile::TempDir) -> std::path::PathBuf {
        let mut jwk = self.public_jwk();
        jwk["kid"] = serde_json::json!("k1");
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, serde_json::json!({ "keys": [jwk] }).to_string()).expect("jwks");
        path
    }
}

/// `ostiary token verify TOKEN` with the keys of `jwks`, for issuer `https://id.example` and
/// audience `https://api.example`, as if at `now` (the clock's time if `None`), plus `extra`:
/// the exit code and the JSON answer.
fn verify_token(
    token: &str,
    jwks: &std::path::Path,
    now: Option<i64>,
    extra: &[&str],
) -> (Option<i32>, serde_json::Value) {
    let now = now.map(|now| now.to_string());
    let mut args = vec![
        "token",
        "verify",
        token,
        "--jwks",
        jwks.to_str().expect("path"),
        "--issuer",
        "https://id.example",
        "--audience",
        "https://api.example",
    ];
    if let Some(now) = &now {
        args.extend_from_slice(&["--now", now]);
    }
    args.extend_from_slice(extra);
    let output = ostiary("sqlite::memory:", &args, None);
    let answer: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    (output.status.code(), answer)
}

#[test]
fn users_are_added_from_stdin_listed_and_disabled() {
    let (_dir, db) = database();
    let added = ostiary(
        &db,
        &["user", "add", "alice", "--password-stdin"],
        Some("s3cret-passw0rd\n"),
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert!(
        !stdout(&added).contains("s3cret"),
        "the password is never echoed"
    );

    let duplicate = ostiary(
        &db,
        &["user", "add", "ALICE", "--password-stdin"],
        Some("another-passw0rd\n"),
    );
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));

    let empty = ostiary(&db, &["user", "add", "bob", "--password-stdin"], Some(""));
    assert!(!empty.status.success(), "an empty password is refused");
    let short = ostiary(
        &db,
        &["user", "add", "bob", "--password-stdin"],
        Some("short\n"),
    );
    assert!(
        !short.status.success(),
        "a password under 8 characters is refused"
    );

    let disabled = ostiary(&db, &["user", "disable", "alice"], None);
    assert!(disabled.status.success());
    let listed = ostiary(&db, &["user", "list", "--json"], None);
    let line: serde_json::Value =
        serde_json::from_str(stdout(&listed).lines().next().expect("one user")).expect("json");
    assert_eq!(line["username"], "alice");
    assert_eq!(line["disabled"], true);
}

#[test]
fn a_confidential_client_gets_a_secret_once_and_a_public_client_none() {
    let (_dir, db) = database();
    let confidential = ostiary(
        &db,
        &[
            "client",
            "add",
            "web",
            "--redirect-uri",
            "https://app.example/cb",
            "--resource",
            "https://api.example",
            "--json",
        ],
        None,
    );
    assert!(
        confidential.status.success(),
        "{}",
        String::from_utf8_lossy(&confidential.stderr)
    );
    let created: serde_json::Value = serde_json::from_str(&stdout(&confidential)).expect("json");
    assert_eq!(created["client_id"], "web");
    assert_eq!(created["kind"], "confidential");
    assert_eq!(created["default_resource"], "https://api.example");
    assert_eq!(
        created["resources"],
        serde_json::json!(["https://api.example"])
    );
    let secret = created["client_secret"].as_str().expect("secret");
    assert_eq!(secret.len(), 43);

    let listed = ostiary(&db, &["client", "list", "--json"], None);
    assert!(
        !stdout(&listed).contains(secret),
        "the secret is shown only once"
    );

    let public = ostiary(
        &db,
        &[
            "client",
            "add",
            "spa",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1:3000/cb",
            "--json",
        ],
        None,
    );
    let created: serde_json::Value = serde_json::from_str(&stdout(&public)).expect("json");
    assert!(created.get("client_secret").is_none());
    assert_eq!(created["token_endpoint_auth_method"], "none");

    let insecure = ostiary(
        &db,
        &[
            "client",
            "add",
            "bad",
            "--redirect-uri",
            "http://app.example/cb",
        ],
        None,
    );
    assert!(!insecure.status.success());
    assert!(String::from_utf8_lossy(&insecure.stderr).contains("https"));
}

#[test]
fn token_verify_reports_a_machine_readable_reason_and_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig",
            "x":"TuDsb_icv905fSa7HqfmVVN6Kc3XX8gQZ4p6aJRaQJs","y":"OtGVJ3WPCYKbIWfO2klyv2IOatpHEFUhU0XPMFO6Zg4"}]}"#,
    )
    .expect("write jwks");
    let run = |token: &str| verify_token(token, &jwks, None, &[]);
    let (code, answer) = run("not-a-jwt");
    assert_eq!(code, Some(1));
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["reason"], "malformed");

    // alg "none" is never accepted, whatever the allow-list.
    let (code, answer) = run("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.c2ln");
    assert_eq!(code, Some(1));
    assert_eq!(answer["reason"], "algorithm_not_allowed");

    let missing = ostiary(
        "sqlite::memory:",
        &[
            "token",
            "verify",
            "x.y.z",
            "--jwks",
            "/nonexistent.json",
            "--issuer",
            "i",
            "--audience",
            "a",
        ],
        None,
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(stdout(&missing).contains("invalid_configuration"));
}

#[test]
fn token_verify_applies_max_age_and_max_lifetime() {
    let idp = Signer::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let jwks = idp.jwks_file(&dir);
    // Issued 100 s before `now`, living an hour.
    let now: i64 = 1_700_000_000;
    let token = idp.sign(
        &serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1"}),
        &serde_json::json!({"iss": "https://id.example", "sub": "alice",
            "aud": "https://api.example", "client_id": "app", "jti": "j1",
            "iat": now - 100, "exp": now - 100 + 3600}),
    );
    let run = |limit: &[&str]| verify_token(&token, &jwks, Some(now), limit);

    let (code, answer) = run(&[]);
    assert_eq!(code, Some(0), "{answer}");
    assert_eq!(answer["sub"], "alice");
    let (code, _) = run(&["--max-lifetime", "3600"]);
    assert_eq!(code, Some(0), "a lifetime at the limit passes");
    let (code, answer) = run(&["--max-lifetime", "3599"]);
    assert_eq!(code, Some(1));
    assert_eq!(answer["reason"], "lifetime_too_long");
    // 100 s old: 70 s plus the default 30 s leeway passes, 69 s does not.
    let (code, _) = run(&["--max-age", "70"]);
    assert_eq!(code, Some(0), "an age at the limit passes");
    let (code, answer) = run(&["--max-age", "69"]);
    assert_eq!(code, Some(1));
    assert_eq!(answer["reason"], "too_old");
}

#[test]
fn token_verify_checks_a_dpop_bound_token_with_its_proof() {
    use aws_lc_rs::digest;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde_json::json;

    let (idp, client) = (Signer::new(), Signer::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let jwks = idp.jwks_file(&dir);
    let client_jwk = client.public_jwk();
    // RFC 7638 §3, written out.
    let thumbprint_input = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        client_jwk["x"].as_str().unwrap(),
        client_jwk["y"].as_str().unwrap()
    );
    let jkt = B64.encode(digest::digest(&digest::SHA256, thumbprint_input.as_bytes()));
    let now: i64 = 1_700_000_000;
    let token = idp.sign(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1"}),
        &json!({"iss": "https://id.example", "sub": "alice", "aud": "https://api.example",
            "client_id": "app", "jti": "j1", "iat": now - 10, "exp": now + 290,
            "cnf": {"jkt": jkt}}),
    );
    let proof_for = |url: &str| {
        client.sign(
            &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": client_jwk}),
            &json!({"jti": "p1", "htm": "GET", "htu": url, "iat": now,
                "ath": B64.encode(digest::digest(&digest::SHA256, token.as_bytes()))}),
        )
    };
    let run = |extra: &[&str]| verify_token(&token, &jwks, Some(now), extra);

    let (code, answer) = run(&[]);
    assert_eq!(
        (code, answer["reason"].as_str()),
        (Some(1), Some("dpop_bound"))
    );
    let good = proof_for("https://api.example/orders");
    let (code, answer) = run(&[
        "--dpop-proof",
        &good,
        "--url",
        "https://api.example/orders?page=2",
    ]);
    assert_eq!(code, Some(0), "{answer}");
    assert_eq!(answer["cnf"]["jkt"], jkt);
    let (code, answer) = run(&["--dpop-proof", &good, "--url", "https://api.example/other"]);
    assert_eq!(
        (code, answer["reason"].as_str()),
        (Some(1), Some("invalid_dpop_proof"))
    );
    let (code, answer) = run(&[
        "--dpop-proof",
        &good,
        "--method",
        "POST",
        "--url",
        "https://api.example/orders",
    ]);
    assert_eq!(
        (code, answer["reason"].as_str()),
        (Some(1), Some("invalid_dpop_proof"))
    );
}

#[test]
fn the_audit_log_is_read_as_json_lines_with_filters() {
    let (_dir, db) = database();
    ostiary(
        &db,
        &["user", "add", "alice", "--password-stdin"],
        Some("s3cret-passw0rd\n"),
    );
    ostiary(&db, &["user", "disable", "alice"], None);
    let created = ostiary(
        &db,
        &["audit", "--user", "alice", "--kind", "user_created"],
        None,
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout(&created)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["kind"], "user_created");
    assert_eq!(lines[0]["actor"], "admin");
    let all = ostiary(&db, &["audit", "--user", "alice"], None);
    let kinds: Vec<String> = stdout(&all)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["user_created", "user_disabled_changed"]);
    assert!(!stdout(&all).contains("s3cret"));
    let bogus = ostiary(&db, &["audit", "--kind", "bogus"], None);
    assert!(!bogus.status.success());
}

#[test]
fn sessions_are_listed_and_revoked_by_the_administrator() {
    let (_dir, db) = database();
    ostiary(
        &db,
        &["user", "add", "alice", "--password-stdin"],
        Some("s3cret-passw0rd\n"),
    );
    let listed = ostiary(&db, &["session", "list", "--json"], None);
    assert!(listed.status.success());
    assert!(stdout(&listed).is_empty(), "no one has signed in yet");
    let revoked = ostiary(&db, &["session", "revoke", "--user", "alice"], None);
    assert!(revoked.status.success());
    assert!(stdout(&revoked).contains("ended 0 session(s)"));
    let unknown = ostiary(&db, &["session", "revoke", "no-such-sid"], None);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no session"));
}

#[test]
fn a_clients_policy_is_set_at_registration_shown_and_replaced() {
    let (_dir, db) = database();
    let created = ostiary(
        &db,
        &[
            "client",
            "add",
            "bank",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1:3000/cb",
            "--max-sessions-per-user",
            "1",
            "--on-session-limit",
            "refuse_new_login",
            "--absolute-lifetime",
            "3600",
            "--json",
        ],
        None,
    );
    assert!(created.status.success(), "{created:?}");
    let created: serde_json::Value = serde_json::from_str(&stdout(&created)).expect("json");
    assert_eq!(
        created["policy"],
        serde_json::json!({"absolute_lifetime": 3600, "max_sessions_per_user": 1, "on_session_limit": "refuse_new_login"})
    );

    let bad = ostiary(
        &db,
        &[
            "client",
            "set-policy",
            "bank",
            "--on-session-limit",
            "sometimes",
        ],
        None,
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("refuse_new_login"));

    let replaced = ostiary(
        &db,
        &[
            "client",
            "set-policy",
            "bank",
            "--refresh-grace",
            "0",
            "--require-dpop",
            "--require-dpop-nonce",
        ],
        None,
    );
    assert!(replaced.status.success(), "{replaced:?}");
    let listed = ostiary(&db, &["client", "list", "--json"], None);
    let listed: serde_json::Value = serde_json::from_str(stdout(&listed).trim()).expect("json");
    assert_eq!(
        listed["policy"],
        serde_json::json!({"refresh_grace": 0, "require_dpop": true, "require_dpop_nonce": true})
    );

    let audit = ostiary(&db, &["audit", "--kind", "client_policy_changed"], None);
    assert_eq!(stdout(&audit).lines().count(), 1);
}

#[test]
fn with_migrate_on_start_off_an_unmigrated_database_is_refused_until_ostiary_migrate() {
    let (_dir, db) = database();
    let without_migrations = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ostiary"))
            .args(args)
            .env("OSTIARY_DATABASE_URL", &db)
            .env("OSTIARY_MIGRATE_ON_START", "false")
            .output()
            .expect("ostiary runs")
    };
    let refused = without_migrations(&["user", "list"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("ostiary migrate"),
        "{refused:?}"
    );

    let migrated = without_migrations(&["migrate"]);
    assert!(migrated.status.success(), "{migrated:?}");
    assert!(stdout(&migrated).contains("up to date"));
    let listed = without_migrations(&["user", "list"]);
    assert!(listed.status.success(), "{listed:?}");
}

#[test]
fn signing_keys_are_sealed_listed_rotated_and_need_their_kek() {
    let (_dir, db) = database();
    let kek = stdout(&ostiary(&db, &["keys", "generate-kek"], None))
        .trim()
        .to_owned();
    assert_eq!(kek.len(), 43, "base64 of 32 bytes: {kek}");
    let with_kek = |args: &[&str], kek: &str| {
        Command::new(env!("CARGO_BIN_EXE_ostiary"))
            .args(args)
            .env("OSTIARY_DATABASE_URL", &db)
            .env("OSTIARY_KEY_ENCRYPTION_KEY", kek)
            .output()
            .expect("ostiary runs")
    };
    let parse = |output: &Output| -> Vec<serde_json::Value> {
        stdout(output)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // Listing touches no private key and makes none.
    let empty = ostiary(&db, &["keys", "list"], None);
    assert!(empty.status.success(), "{empty:?}");
    assert!(stdout(&empty).is_empty());

    let rotated = with_kek(&["keys", "rotate"], &kek);
    assert!(rotated.status.success(), "{rotated:?}");
    let keys = parse(&rotated);
    assert_eq!(
        keys.len(),
        2,
        "ES256 for access tokens, RS256 for ID tokens"
    );
    assert!(keys.iter().all(|k| k["encrypted"] == true), "{keys:?}");
    let listed = parse(&ostiary(&db, &["keys", "list"], None));
    assert_eq!(listed.len(), 2, "listed without the key-encryption key");

    let again = with_kek(&["keys", "rotate"], &kek);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already published"));

    // A compromised key: the new keys sign at once, every older one is withdrawn.
    let now = with_kek(&["keys", "rotate", "--immediately"], &kek);
    assert!(now.status.success(), "{now:?}");
    let urgent = parse(&now);
    assert!(urgent.iter().all(|k| k["state"] == "current"), "{urgent:?}");
    let remaining = parse(&with_kek(&["keys", "list"], &kek));
    let remaining_kids: Vec<&str> = remaining
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    let urgent_kids: Vec<&str> = urgent.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(remaining_kids, urgent_kids);

    // Sealed keys need their key-encryption key: missing or wrong, nothing is done.
    let missing = ostiary(&db, &["keys", "rotate"], None);
    assert!(!missing.status.success());
    let why = String::from_utf8_lossy(&missing.stderr);
    assert!(why.contains("sealed") && why.contains(".kek"), "{why}");
    let other = stdout(&ostiary(&db, &["keys", "generate-kek"], None));
    let wrong = with_kek(&["keys", "rotate"], other.trim());
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("does not open"));

    let audit = with_kek(&["audit", "--kind", "signing_key_generated"], &kek);
    assert_eq!(stdout(&audit).lines().count(), 4);
    let withdrawn = ostiary(&db, &["audit", "--kind", "signing_key_withdrawn"], None);
    assert_eq!(stdout(&withdrawn).lines().count(), 2);
}

#[test]
fn a_shared_database_without_a_key_encryption_key_is_refused_at_start() {
    let refused = Command::new(env!("CARGO_BIN_EXE_ostiary"))
        .args(["serve"])
        .env(
            "OSTIARY_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/none",
        )
        .env_remove("OSTIARY_KEY_ENCRYPTION_KEY")
        .output()
        .expect("ostiary runs");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("key-encryption key is required"),
        "{stderr}"
    );
    assert!(stderr.contains("ostiary keys generate-kek"), "{stderr}");

    // Generating the key needs neither the key nor the database.
    let kek = Command::new(env!("CARGO_BIN_EXE_ostiary"))
        .args(["keys", "generate-kek"])
        .env(
            "OSTIARY_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/none",
        )
        .env_remove("OSTIARY_KEY_ENCRYPTION_KEY")
        .output()
        .expect("ostiary runs");
    assert!(kek.status.success(), "{kek:?}");
    assert_eq!(String::from_utf8_lossy(&kek.stdout).trim().len(), 43);
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_misspelled_environment_variable_is_refused_with_the_name_meant() {
    let (_dir, db) = database();
    let refused = Command::new(env!("CARGO_BIN_EXE_ostiary"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("OSTIARY_DATABASE_URL", &db)
        .env("OSTIARY_SESSION_IDLE_TIMEOUT", "600")
        .output()
        .expect("ostiary runs");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(
            "unknown environment variable OSTIARY_SESSION_IDLE_TIMEOUT (did you mean \
             OSTIARY_SESSION__IDLE_TIMEOUT?)"
        ),
        "{refused:?}"
    );
    assert!(stdout(&refused).is_empty(), "it did not start serving");
}

#[test]
fn an_invalid_database_url_is_named_before_the_key_encryption_key_is_asked_for() {
    for (url, expected) in [
        (
            "mysql://root@127.0.0.1/idp",
            "unsupported database URL scheme",
        ),
        ("postgres://idp:s3cret@[::1/idp", "invalid database URL"),
        ("ostiary.db", "invalid database URL"),
    ] {
        for command in [&["serve"][..], &["user", "list"], &["migrate"]] {
            let refused = Command::new(env!("CARGO_BIN_EXE_ostiary"))
                .args(command)
                .env("OSTIARY_DATABASE_URL", url)
                .env_remove("OSTIARY_KEY_ENCRYPTION_KEY")
                .output()
                .expect("ostiary runs");
            assert!(!refused.status.success());
            let text = stderr(&refused);
            assert!(text.contains(expected), "{command:?} {url}: {text}");
            assert!(
                !text.contains("key-encryption"),
                "{command:?} {url}: {text}"
            );
            assert!(!text.contains("s3cret"), "{command:?} {url}: {text}");
        }
    }
}

#[test]
fn a_sqlite_database_is_created_only_in_an_existing_directory_and_the_log_says_which() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("typo");
    let refused = ostiary(
        &format!("sqlite://{}", missing.join("ostiary.db").display()),
        &["user", "list"],
        None,
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(&format!(
            "the directory {} of the SQLite database does not exist",
            missing.display()
        )),
        "{refused:?}"
    );
    assert!(!missing.exists(), "no directory was made");

    let file = dir.path().join("ostiary.db");
    let db = format!("sqlite://{}", file.display());
    let first = ostiary(&db, &["user", "list"], None);
    assert!(first.status.success(), "{first:?}");
    let log = stderr(&first);
    assert!(log.contains("new, empty database"), "{log}");
    assert!(log.contains(&file.display().to_string()), "{log}");
    assert!(log.contains("created=true"), "{log}");
    let second = ostiary(&db, &["user", "list"], None);
    let log = stderr(&second);
    assert!(log.contains("database opened"), "{log}");
    assert!(log.contains("created=false"), "{log}");
}

#[test]
fn an_unreachable_postgresql_server_is_an_error_within_seconds_naming_it() {
    // A loopback port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let started = std::time::Instant::now();
    let refused = Command::new(env!("CARGO_BIN_EXE_ostiary"))
        .args(["user", "list"])
        .env(
            "OSTIARY_DATABASE_URL",
            format!("postgres://ostiary:s3cret@127.0.0.1:{port}/idp"),
        )
        .env(
            "OSTIARY_KEY_ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .output()
        .expect("ostiary runs");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(!refused.status.success());
    let text = stderr(&refused);
    assert!(
        text.contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{port}")),
        "{text}"
    );
    assert!(text.to_ascii_lowercase().contains("refused"), "{text}");
    assert!(!text.contains("pool timed out"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

/// Runs `ostiary` with its standard output a pipe whose reader has already gone, as after
/// `ostiary … | head -1` read its line.
fn with_stdout_closed(db: &str, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_ostiary"))
        .args(args)
        .env("OSTIARY_DATABASE_URL", db)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("ostiary runs")
}

#[test]
fn every_command_ends_quietly_when_its_output_is_closed() {
    let (dir, db) = database();
    ostiary(
        &db,
        &["user", "add", "alice", "--password-stdin"],
        Some("s3cret-passw0rd\n"),
    );
    ostiary(
        &db,
        &[
            "client",
            "add",
            "app",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/cb",
        ],
        None,
    );
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, r#"{"keys":[]}"#).expect("write jwks");
    let verify = [
        "token",
        "verify",
        "not-a-jwt",
        "--jwks",
        jwks.to_str().expect("path"),
        "--issuer",
        "https://id.example",
        "--audience",
        "https://api.example",
    ];
    for (args, status) in [
        (&["user", "list"][..], 0),
        (&["user", "list", "--json"], 0),
        (&["client", "list"], 0),
        (&["audit"], 0),
        (&["keys", "list"], 0),
        (&["keys", "generate-kek"], 0),
        (&["session", "revoke", "--user", "alice"], 0),
        (&["migrate"], 0),
        // Its status is the verdict: the token is not valid, whoever reads why.
        (&verify, 1),
    ] {
        let output = with_stdout_closed(&db, args);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(status), "{args:?}: {text}");
        assert!(!text.contains("panicked"), "{args:?}: {text}");
        assert!(!text.contains("error"), "{args:?}: {text}");
    }
}

#[test]
fn serve_on_a_taken_address_says_how_to_pick_another() {
    let (_dir, db) = database();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = taken.local_addr().expect("its address").to_string();
    let refused = ostiary(&db, &["serve", "--listen", &address], None);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
}
