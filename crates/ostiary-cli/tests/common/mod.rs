//! What the process tests share: `ostiary` commands on one database, `ostiary serve`
//! instances, and sign-in and refresh over HTTP.
#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

#[path = "../../../ostiary-server/examples/support/sign_in.rs"]
mod support;
pub use support::{SignIn, sign_in};

/// Every instance announces this issuer: they are one IdP.
pub const ISSUER: &str = "http://127.0.0.1:9";
pub const REDIRECT: &str = "http://127.0.0.1/cb";

pub struct Env {
    pub database: String,
    /// The key-encryption key given to every process; `None`: a SQLite database's own.
    pub kek: Option<String>,
}

impl Env {
    /// `ostiary` with this environment's database and key-encryption key.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ostiary"));
        command.env("OSTIARY_DATABASE_URL", &self.database);
        match &self.kek {
            Some(kek) => command.env("OSTIARY_KEY_ENCRYPTION_KEY", kek),
            None => command.env_remove("OSTIARY_KEY_ENCRYPTION_KEY"),
        };
        command
    }

    pub fn ostiary(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ostiary runs");
        if let Some(text) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write stdin");
        }
        let output = child.wait_with_output().expect("ostiary exits");
        assert!(output.status.success(), "ostiary {args:?}: {output:?}");
        output
    }

    /// Registers the public client `app` (redirect URI [`REDIRECT`]) the tests sign in to.
    pub fn add_app(&self) {
        self.ostiary(
            &[
                "client",
                "add",
                "app",
                "--public",
                "--redirect-uri",
                REDIRECT,
            ],
            None,
        );
    }

    /// Starts `ostiary serve` on a free port and returns it with its base URL.
    pub fn serve(&self) -> Instance {
        let mut child = self
            .command()
            .args(["serve", "--listen", "127.0.0.1:0", "--issuer", ISSUER])
            .env("OSTIARY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ostiary serve runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the listening line");
        let address = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Instance {
            child,
            base: address,
        }
    }
}

pub struct Instance {
    pub child: Child,
    pub base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signing_in<'a>(base: &'a str, client_id: &'a str) -> SignIn<'a> {
    SignIn {
        base,
        client_id,
        redirect_uri: REDIRECT,
        scope: "openid offline_access",
        username: "alice",
        password: "a-long-passw0rd",
    }
}

pub async fn refresh(base: &str, token: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", "app"),
        ])
        .send()
        .await
        .expect("token endpoint");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

pub fn rt(body: &serde_json::Value) -> String {
    body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned()
}
