//! Keys, hand-made tokens, a movable clock and a counting JWKS server.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair, RsaPublicKeyComponents,
};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ostiary_verify::{Algorithm, Clock, JwksSource, Validator};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://id.example";
pub const AUDIENCE: &str = "https://api.example";
/// The fixed "now" of the tests, seconds since the Unix epoch.
pub const NOW: i64 = 1_700_000_000;
pub const ALL_ALGORITHMS: &[Algorithm] = &[Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256];

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn at(now: i64) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(now)))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_unix(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

enum Signer {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

/// A signing key with its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: &'static str,
    pub jwk: Value,
    signer: Signer,
}

impl TestKey {
    pub fn es256(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        assert_eq!(point[0], 4, "uncompressed point");
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        });
        Self {
            kid: kid.into(),
            alg: "ES256",
            jwk,
            signer: Signer::Es256(pair),
        }
    }

    pub fn ed25519(kid: &str) -> Self {
        let pair = Ed25519KeyPair::generate().unwrap();
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
            "x": b64(pair.public_key().as_ref()),
        });
        Self {
            kid: kid.into(),
            alg: "EdDSA",
            jwk,
            signer: Signer::Ed25519(pair),
        }
    }

    pub fn rs256(kid: &str) -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": b64(&public.n), "e": b64(&public.e),
        });
        Self {
            kid: kid.into(),
            alg: "RS256",
            jwk,
            signer: Signer::Rs256(pair),
        }
    }

    /// The DER bytes of the public key, as an attacker would find them.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.signer {
            Signer::Es256(pair) => pair.public_key().as_ref().to_vec(),
            Signer::Ed25519(pair) => pair.public_key().as_ref().to_vec(),
            Signer::Rs256(pair) => pair.public_key().as_ref().to_vec(),
        }
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Es256(pair) => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
            Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .unwrap();
                signature
            }
        }
    }

    /// The usual header: this key's `alg` and `kid`, `typ: at+jwt`.
    pub fn header(&self) -> Value {
        json!({ "alg": self.alg, "typ": "at+jwt", "kid": self.kid })
    }

    /// A correctly signed token with the usual header.
    pub fn token(&self, claims: &Value) -> String {
        self.token_with_header(&self.header(), claims)
    }

    /// A token with this header and these claims, signed by this key whatever the header says.
    pub fn token_with_header(&self, header: &Value, claims: &Value) -> String {
        sign_with(header, claims, |input| self.sign(input))
    }

    /// A token whose header and claims are these exact JSON texts (so that they can repeat a
    /// member, which a `Value` cannot), correctly signed by this key.
    pub fn token_from_json(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = self.sign(input.as_bytes());
        format!("{input}.{}", b64(signature))
    }
}

/// `b64(header).b64(claims).b64(sign(input))`.
pub fn sign_with(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

/// Valid claims at `now`: five minutes of lifetime.
pub fn claims_at(now: i64) -> Value {
    json!({
        "iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "client_id": "demo-spa",
        "exp": now + 300, "iat": now, "jti": "b1e9c0de", "scope": "openid profile",
    })
}

pub fn claims() -> Value {
    claims_at(NOW)
}

/// `claims()` with one member replaced (or removed, with `Value::Null` as `None`).
pub fn claims_with(name: &str, value: Option<Value>) -> Value {
    let mut claims = claims();
    match value {
        Some(value) => claims[name] = value,
        None => {
            claims.as_object_mut().unwrap().remove(name);
        }
    }
    claims
}

pub fn jwks_json(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|key| key.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

/// A validator over a static JWKS holding `keys`, allowing ES256, EdDSA and RS256, clock at
/// [`NOW`].
pub fn static_validator(keys: &[&TestKey]) -> Validator {
    let jwks = JwksSource::from_json(&jwks_json(keys)).unwrap();
    Validator::new(ISSUER, AUDIENCE, ALL_ALGORITHMS, jwks)
        .unwrap()
        .with_clock(TestClock::at(NOW))
}

/// What the JWKS server answers.
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
    pub cache_control: Option<String>,
}

/// A JWKS server on 127.0.0.1 that records the path of every request it receives, and can
/// hold its replies until the test releases them.
pub struct JwksServer {
    pub base: String,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<Mutex<Vec<String>>>,
    gate: Arc<Gate>,
    task: tokio::task::JoinHandle<()>,
}

/// Holds replies while `closed`; `arrived` is signalled for each held request.
struct Gate {
    closed: AtomicBool,
    arrived: tokio::sync::Notify,
    open: tokio::sync::Semaphore,
}

impl JwksServer {
    pub async fn start(keys: &[&TestKey], cache_control: Option<&str>) -> Self {
        let reply = Arc::new(Mutex::new(Reply {
            status: StatusCode::OK,
            body: jwks_json(keys),
            cache_control: cache_control.map(str::to_owned),
        }));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Gate {
            closed: AtomicBool::new(false),
            arrived: tokio::sync::Notify::new(),
            open: tokio::sync::Semaphore::new(0),
        });
        let handler = {
            let reply = Arc::clone(&reply);
            let requests = Arc::clone(&requests);
            let gate = Arc::clone(&gate);
            move |uri: Uri| async move {
                requests.lock().unwrap().push(uri.path().to_owned());
                if gate.closed.load(Ordering::SeqCst) {
                    gate.arrived.notify_one();
                    gate.open.acquire().await.unwrap().forget();
                }
                let reply = reply.lock().unwrap();
                let mut response = (reply.status, reply.body.clone()).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                if let Some(cache_control) = &reply.cache_control {
                    response.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_str(cache_control).unwrap(),
                    );
                }
                response
            }
        };
        let app = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base,
            reply,
            requests,
            gate,
            task,
        }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.base)
    }

    /// How many requests reached the server, on any path.
    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn serve_keys(&self, keys: &[&TestKey]) {
        self.reply.lock().unwrap().body = jwks_json(keys);
    }

    pub fn set_reply(&self, change: impl FnOnce(&mut Reply)) {
        change(&mut self.reply.lock().unwrap());
    }

    /// From now on, requests wait until [`release_replies`](Self::release_replies).
    pub fn hold_replies(&self) {
        self.gate.closed.store(true, Ordering::SeqCst);
    }

    /// Waits until a held request has arrived.
    pub async fn request_held(&self) {
        self.gate.arrived.notified().await;
    }

    pub fn release_replies(&self) {
        self.gate.closed.store(false, Ordering::SeqCst);
        self.gate.open.add_permits(1024);
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A validator fetching its JWKS from `url`, with its own clock at [`NOW`].
pub fn remote_validator(url: String) -> (Validator, Arc<TestClock>) {
    let clock = TestClock::at(NOW);
    let validator = Validator::new(ISSUER, AUDIENCE, ALL_ALGORITHMS, JwksSource::remote(url))
        .unwrap()
        .with_clock(clock.clone());
    (validator, clock)
}

/// A loopback URL where nothing listens.
pub async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}/jwks.json")
}
