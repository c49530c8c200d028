//! Typed, layered settings: defaults < config file (`--config FILE`, TOML) < `OSTIARY_*`
//! environment variables < command-line flags. Validated once at start-up and passed
//! explicitly; there is no global configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ostiary_core::IdpConfig;
use ostiary_core::hashing::HashingPolicy;
use ostiary_core::keys::{KeyEncryptionKey, KeyPolicy, SigningAlgorithm};
use ostiary_core::retention::RetentionPolicy;
use ostiary_core::session::SessionPolicy;
use ostiary_core::throttle::ThrottlePolicy;
use ostiary_server::HttpTimeouts;
use ostiary_server::proxy::TrustedProxies;
use serde::{Deserialize, Serialize};

/// Every setting of `ostiary`. In a config file, top-level keys are these field names and the
/// session policy is a `[session]` table; as environment variables they are upper-cased with
/// the `OSTIARY_` prefix, and nested keys use `__` (`OSTIARY_SESSION__IDLE_TIMEOUT=3600`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Socket address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Public issuer URL (`iss`). Default `http://{listen}`. Must be `https://` in production.
    pub issuer: Option<String>,
    /// Database URL. Default `sqlite://ostiary.db` (a file in the working directory, created
    /// with its schema on first start).
    pub database_url: String,
    /// Apply pending database migrations whenever a command opens the database. Default
    /// `true`; with `false`, commands refuse a database whose schema is behind this build, and
    /// `ostiary migrate` applies them (for deployments that migrate as a separate step).
    pub migrate_on_start: bool,
    /// Log format: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// Access-token lifetime, seconds. Default 300.
    pub access_token_ttl: i64,
    /// ID-token lifetime, seconds. Default 300.
    pub id_token_ttl: i64,
    /// Authorization-code lifetime, seconds. Default 60.
    pub authorization_code_ttl: i64,
    /// Access-token signing algorithm: `ES256` (default), `EdDSA` or `RS256`.
    pub access_token_alg: SigningAlgorithm,
    /// How old a DPoP proof's `iat` may be, seconds (RFC 9449 §11.1): each proof's `jti` is
    /// remembered this long. Default 60.
    pub dpop_proof_max_age: i64,
    /// Session idle timeout, absolute lifetime and refresh grace window, seconds.
    pub session: SessionPolicy,
    /// Development only: cookies without `Secure` and the `__Host-` prefix, for non-browser
    /// clients on plain HTTP. Default `false`; never enable in production.
    pub dangerous_insecure_cookies: bool,
    /// Bearer token of the admin API (`/admin/…`), at least 32 characters; unset (the
    /// default), the admin API is off. Prefer the environment (`OSTIARY_ADMIN_TOKEN`) to a file.
    pub admin_token: Option<SecretSetting>,
    /// Failed-login limits (`[login_throttle]`: window, max_failures_per_user_and_ip,
    /// max_delay, max_failures_per_user, max_failures_per_ip, max_failure_delay; see
    /// `ostiary_core::throttle` for the model).
    pub login_throttle: ThrottlePolicy,
    /// How password hashing gives way to other requests (`[password_hashing]`:
    /// busy_share_percent, 1 to 100, default 20: the largest share of a hashing thread's time
    /// spent hashing while other requests are in flight; see `ostiary_core::hashing`).
    pub password_hashing: HashingPolicy,
    /// How long records are kept and how often the retention job runs (`[retention]`:
    /// audit_events, ended_sessions, authorization_codes, backchannel_deliveries, interval in
    /// seconds; batch_size, max_batches; see `ostiary_core::retention`).
    pub retention: RetentionPolicy,
    /// Signing-key rotation (`[keys]`: rotation_interval, publish_ahead; seconds).
    pub keys: KeyPolicy,
    /// Key-encryption key sealing the signing keys at rest: base64 of 32 random bytes
    /// (`ostiary keys generate-kek`). Prefer the environment (`OSTIARY_KEY_ENCRYPTION_KEY`) or
    /// `key_encryption_key_file`. Required with PostgreSQL, and whenever the stored keys are
    /// sealed; optional with SQLite (keys are then stored in the clear, in a 0600 file).
    pub key_encryption_key: Option<SecretSetting>,
    /// A file holding the key-encryption key (for example a mounted secret).
    pub key_encryption_key_file: Option<PathBuf>,
    /// Bearer token Prometheus scrapes `/metrics` with, at least 32 characters and not the
    /// admin token; unset (the default), `/metrics` is off (404). Prefer the environment
    /// (`OSTIARY_METRICS_TOKEN`) to a file.
    pub metrics_token: Option<SecretSetting>,
    /// Reverse proxies (IP addresses or CIDR ranges) whose `X-Forwarded-For` gives the
    /// client's address; a TOML array, or one comma-separated string
    /// (`OSTIARY_TRUSTED_PROXIES=10.0.0.0/8,192.0.2.7`). Default empty: the TCP peer is the
    /// client and forwarding headers are ignored.
    pub trusted_proxies: ListSetting,
    /// The listener's timeouts (`[http]`: header_read_timeout, request_body_timeout,
    /// keep_alive_idle_timeout; seconds).
    pub http: HttpSettings,
}

/// How long a connection may take to send a request, and stay idle between requests
/// (`[http]`; `OSTIARY_HTTP__HEADER_READ_TIMEOUT=5`). Each from 1 s to a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Time to receive a complete request head (request line and headers), from the
    /// connection's start for its first request and from the first byte of each later one,
    /// seconds. Default 10.
    pub header_read_timeout: u64,
    /// Time to receive a whole request body after its head, seconds. Default 10.
    pub request_body_timeout: u64,
    /// How long a keep-alive connection may wait for its next request before it is closed,
    /// seconds. Default 75 (above nginx's default 60 s for idle upstream connections).
    pub keep_alive_idle_timeout: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        let timeouts = HttpTimeouts::default();
        Self {
            header_read_timeout: timeouts.header_read_timeout.as_secs(),
            request_body_timeout: timeouts.request_body_timeout.as_secs(),
            keep_alive_idle_timeout: timeouts.keep_alive_idle_timeout.as_secs(),
        }
    }
}

impl HttpSettings {
    /// The timeouts for [`ostiary_server::ServerConfig::http`].
    pub fn timeouts(&self) -> HttpTimeouts {
        HttpTimeouts {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout),
            request_body_timeout: std::time::Duration::from_secs(self.request_body_timeout),
            keep_alive_idle_timeout: std::time::Duration::from_secs(self.keep_alive_idle_timeout),
        }
    }
}

/// A list of strings, given as an array or as one comma-separated string (the form an
/// environment variable can take). Blank items are dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "ListInput")]
pub struct ListSetting(Vec<String>);

#[derive(Deserialize)]
#[serde(untagged)]
enum ListInput {
    One(String),
    Many(Vec<String>),
}

impl From<ListInput> for ListSetting {
    fn from(input: ListInput) -> Self {
        let items = match input {
            ListInput::One(one) => vec![one],
            ListInput::Many(many) => many,
        };
        Self(
            items
                .iter()
                .flat_map(|item| item.split(','))
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

impl Serialize for ListSetting {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl ListSetting {
    /// The items.
    pub fn items(&self) -> &[String] {
        &self.0
    }
}

/// A secret setting: `Debug` and serialization never show it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretSetting(String);

impl SecretSetting {
    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for SecretSetting {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        let idp = IdpConfig::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: None,
            database_url: "sqlite://ostiary.db".into(),
            migrate_on_start: true,
            log_format: LogFormat::Text,
            access_token_ttl: idp.access_token_ttl,
            dpop_proof_max_age: idp.dpop_proof_max_age,
            id_token_ttl: idp.id_token_ttl,
            authorization_code_ttl: idp.authorization_code_ttl,
            access_token_alg: idp.access_token_alg,
            session: idp.session,
            login_throttle: idp.login_throttle,
            password_hashing: idp.password_hashing,
            retention: idp.retention,
            dangerous_insecure_cookies: false,
            admin_token: None,
            keys: idp.keys,
            key_encryption_key: None,
            key_encryption_key_file: None,
            metrics_token: None,
            trusted_proxies: ListSetting::default(),
            http: HttpSettings::default(),
        }
    }
}

/// Values given as flags: the top layer. `None` means "not given".
#[derive(Debug, Default, Clone, Serialize)]
pub struct FlagOverrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--issuer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `--database-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

/// The prefix of every environment variable of Ostiary.
const ENV_PREFIX: &str = "OSTIARY_";

/// `OSTIARY_` variables that are not settings, and who reads them: accepted, never read as
/// settings. Every other `OSTIARY_` variable must name a setting ([`env_names`]), or Ostiary
/// refuses to start, naming the nearest valid name. A name ending in `*` stands for every
/// variable it begins.
pub const NOT_SETTINGS: &[(&str, &str)] = &[
    ("OSTIARY_LOG", "the log filter (tracing EnvFilter syntax)"),
    ("OSTIARY_CONFIG", "the config file, as --config"),
    (
        "OSTIARY_DEMO_PASSWORD",
        "the demo user's password (ostiary demo)",
    ),
    (
        "OSTIARY_BIN",
        "the binary the interop and browser tests run (scripts/interop.sh, scripts/browser-tests.sh)",
    ),
    (
        "OSTIARY_TEST_*",
        "the test suites (OSTIARY_TEST_DATABASE_URL: the PostgreSQL server of the tests)",
    ),
    ("OSTIARY_LOADTEST_*", "scripts/loadtest.sh"),
];

/// The environment variable of every setting, derived from the [`Settings`] type itself (a
/// new field is a new variable without anyone listing it): each key of
/// `Settings::default()`, upper-cased with the `OSTIARY_` prefix, a nested table's keys
/// joined to the table's name with `__` (`OSTIARY_SESSION__IDLE_TIMEOUT`).
pub fn env_names() -> Vec<String> {
    fn walk(prefix: &str, value: &serde_json::Value, names: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(table) => {
                for (key, value) in table {
                    walk(
                        &format!("{prefix}{}__", key.to_ascii_uppercase()),
                        value,
                        names,
                    );
                }
            }
            _ => names.push(prefix.trim_end_matches("__").to_owned()),
        }
    }
    let defaults = serde_json::to_value(Settings::default())
        .expect("the default settings serialize to a JSON object");
    let mut names = Vec::new();
    walk(ENV_PREFIX, &defaults, &mut names);
    names
}

/// Whether `name` (upper-cased) is one of [`NOT_SETTINGS`].
fn is_not_a_setting(name: &str) -> bool {
    NOT_SETTINGS
        .iter()
        .any(|(known, _)| match known.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *known,
        })
}

/// The valid name closest to a misspelled one, if one is close enough to be what was meant.
fn nearest_name<'a>(name: &str, valid: &'a [String]) -> Option<&'a str> {
    let bare = |n: &str| n.strip_prefix(ENV_PREFIX).unwrap_or(n).to_owned();
    let wanted = bare(name);
    // A nested setting given without its table (`OSTIARY_IDLE_TIMEOUT`).
    if let Some(nested) = valid
        .iter()
        .find(|v| v.rsplit_once("__").is_some_and(|(_, key)| key == wanted))
    {
        return Some(nested);
    }
    valid
        .iter()
        .map(|v| (v, strsim::normalized_damerau_levenshtein(&wanted, &bare(v))))
        .filter(|(_, similarity)| *similarity >= 0.7)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(v, _)| v.as_str())
}

/// Refuses `OSTIARY_` variables that are neither a setting nor one of [`NOT_SETTINGS`]: a
/// misspelled variable would otherwise leave its setting at the default without a word. Names
/// are compared without regard to case, as the settings are read. Values are never shown.
fn check_env_names() -> anyhow::Result<()> {
    let settings = env_names();
    let mut valid = settings.clone();
    valid.extend(
        NOT_SETTINGS
            .iter()
            .filter(|(name, _)| !name.ends_with('*'))
            .map(|(name, _)| (*name).to_owned()),
    );
    let mut unknown: Vec<String> = std::env::vars_os()
        .map(|(name, _)| name.to_string_lossy().trim().to_owned())
        .filter(|name| {
            let upper = name.to_ascii_uppercase();
            upper.starts_with(ENV_PREFIX) && !settings.contains(&upper) && !is_not_a_setting(&upper)
        })
        .map(
            |name| match nearest_name(&name.to_ascii_uppercase(), &valid) {
                Some(nearest) => format!("{name} (did you mean {nearest}?)"),
                None => name,
            },
        )
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    anyhow::bail!(
        "unknown environment variable{} {}: not a setting (`ostiary serve --help` lists them; \
         a nested setting is TABLE__KEY, with two underscores)",
        if unknown.len() == 1 { "" } else { "s" },
        unknown.join(", ")
    )
}

impl Settings {
    /// Loads the layers in order and validates the result. Refuses unknown `OSTIARY_`
    /// variables first, and checks the database URL before any other value.
    pub fn load(config_file: Option<&PathBuf>, flags: &FlagOverrides) -> anyhow::Result<Self> {
        check_env_names()?;
        let settings_env = env_names();
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = config_file {
            if !path.is_file() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Only the settings' variables (the others, such as OSTIARY_LOG, are not settings).
        // Keys arrive lower-cased, with `__` already turned into `.` by `split`.
        let env = Env::prefixed(ENV_PREFIX).split("__").filter(move |key| {
            let name = format!(
                "{ENV_PREFIX}{}",
                key.as_str().replace('.', "__").to_ascii_uppercase()
            );
            settings_env.contains(&name)
        });
        figment = figment.merge(env).merge(Serialized::defaults(flags));
        let settings: Settings = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid settings: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        // First: a wrong URL is the thing to fix, whatever else the settings say (a scheme
        // that is not sqlite would otherwise be met by the key-encryption-key requirement).
        ostiary_store::check_url(&self.database_url)?;
        let positive = [
            ("access_token_ttl", self.access_token_ttl),
            ("id_token_ttl", self.id_token_ttl),
            ("authorization_code_ttl", self.authorization_code_ttl),
            ("dpop_proof_max_age", self.dpop_proof_max_age),
            ("session.idle_timeout", self.session.idle_timeout),
            ("session.absolute_lifetime", self.session.absolute_lifetime),
        ];
        for (name, value) in positive {
            if value <= 0 {
                anyhow::bail!("{name} must be a positive number of seconds, got {value}");
            }
        }
        if self.session.refresh_grace < 0 {
            anyhow::bail!("session.refresh_grace must be 0 or more seconds");
        }
        if self.authorization_code_ttl > 600 {
            anyhow::bail!("authorization_code_ttl must be at most 600 seconds (RFC 6749 §4.1.2)");
        }
        if self
            .admin_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 32)
        {
            anyhow::bail!("admin_token must be at least 32 characters (use a random value)");
        }
        self.keys.validate().map_err(|e| anyhow::anyhow!(e))?;
        self.login_throttle
            .validate()
            .map_err(|e| anyhow::anyhow!(e))?;
        self.retention.validate().map_err(|e| anyhow::anyhow!(e))?;
        self.password_hashing
            .validate()
            .map_err(|e| anyhow::anyhow!(e))?;
        if self.key_encryption_key.is_some() && self.key_encryption_key_file.is_some() {
            anyhow::bail!("set key_encryption_key or key_encryption_key_file, not both");
        }
        if let Some(token) = &self.metrics_token {
            if token.expose().len() < 32 {
                anyhow::bail!("metrics_token must be at least 32 characters (use a random value)");
            }
            if self
                .admin_token
                .as_ref()
                .is_some_and(|admin| admin.expose() == token.expose())
            {
                anyhow::bail!(
                    "metrics_token must not be the admin token: the scraper needs no admin rights"
                );
            }
        }
        self.trusted_proxies()?;
        self.http
            .timeouts()
            .validate()
            .map_err(|e| anyhow::anyhow!("http.{e} (seconds)"))?;
        if let Some(issuer) = &self.issuer {
            let url = url::Url::parse(issuer)
                .map_err(|_| anyhow::anyhow!("issuer {issuer:?} is not a URL"))?;
            if !matches!(url.scheme(), "http" | "https")
                || url.query().is_some()
                || url.fragment().is_some()
            {
                anyhow::bail!("issuer {issuer:?} must be an http(s) URL without query or fragment");
            }
        }
        Ok(())
    }

    /// The issuer, defaulting to `http://{listen}`.
    pub fn issuer(&self) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// The key-encryption key the settings give (the setting or its file), if any. Which key
    /// a command uses, and when one is required, is `crate::kek::resolve`'s business: only
    /// the commands that use the signing keys ask for it.
    pub fn configured_key_encryption_key(&self) -> anyhow::Result<Option<KeyEncryptionKey>> {
        let text = match (&self.key_encryption_key, &self.key_encryption_key_file) {
            (Some(value), _) => value.expose().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read key_encryption_key_file {}: {e}",
                    path.display()
                )
            })?,
            (None, None) => return Ok(None),
        };
        Ok(Some(KeyEncryptionKey::parse(&text)?))
    }

    /// The trusted reverse proxies, parsed.
    pub fn trusted_proxies(&self) -> anyhow::Result<TrustedProxies> {
        Ok(TrustedProxies::parse(
            self.trusted_proxies.items().iter().map(String::as_str),
        )?)
    }

    /// The IdP part of the settings, without a key-encryption key (commands that need one add
    /// what `crate::kek::resolve` finds). An unset issuer stays empty here, so that the
    /// server derives it from the address it actually bound (which matters with port 0).
    pub fn idp_config(&self) -> anyhow::Result<IdpConfig> {
        Ok(IdpConfig {
            issuer: self.issuer.clone().unwrap_or_default(),
            access_token_ttl: self.access_token_ttl,
            id_token_ttl: self.id_token_ttl,
            authorization_code_ttl: self.authorization_code_ttl,
            access_token_alg: self.access_token_alg,
            dpop_proof_max_age: self.dpop_proof_max_age,
            session: self.session,
            login_throttle: self.login_throttle,
            password_hashing: self.password_hashing,
            retention: self.retention,
            keys: self.keys,
            key_encryption_key: None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closure signature, not ours
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order_defaults_file_env_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("ostiary.toml", "listen = \"127.0.0.1:9000\"\nissuer = \"https://file.example\"\naccess_token_ttl = 120\n[session]\nrefresh_grace = 3\n")?;
            jail.set_env("OSTIARY_ISSUER", "https://env.example");
            jail.set_env("OSTIARY_SESSION__IDLE_TIMEOUT", "600");
            jail.set_env("OSTIARY_TEST_DATABASE_URL", "ignored");
            let flags = FlagOverrides {
                listen: Some("127.0.0.1:9100".parse().unwrap()),
                ..Default::default()
            };
            let settings = Settings::load(Some(&PathBuf::from("ostiary.toml")), &flags)
                .map_err(|e| e.to_string())?;
            assert_eq!(settings.listen.port(), 9100); // flag beats file
            assert_eq!(settings.issuer(), "https://env.example"); // env beats file
            assert_eq!(settings.access_token_ttl, 120); // file beats default
            assert_eq!(settings.session.refresh_grace, 3);
            assert_eq!(settings.session.idle_timeout, 600);
            assert_eq!(settings.database_url, "sqlite://ostiary.db"); // default
            Ok(())
        });
    }

    fn load_error() -> String {
        match Settings::load(None, &FlagOverrides::default()) {
            Ok(_) => panic!("the settings loaded"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn a_misspelled_variable_is_refused_with_the_nearest_valid_name_and_without_its_value() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("OSTIARY_SESSION_IDLE_TIMEOUT", "600");
            let error = load_error();
            assert!(
                error.contains(
                    "OSTIARY_SESSION_IDLE_TIMEOUT (did you mean OSTIARY_SESSION__IDLE_TIMEOUT?)"
                ),
                "{error}"
            );
            assert!(!error.contains("600"), "{error}");

            jail.clear_env();
            jail.set_env("OSTIARY_LISTN", "127.0.0.1:9000");
            assert!(
                load_error().contains("OSTIARY_LISTN (did you mean OSTIARY_LISTEN?)"),
                "{}",
                load_error()
            );

            // A nested setting without its table.
            jail.clear_env();
            jail.set_env("OSTIARY_PUBLISH_AHEAD", "600");
            assert!(
                load_error().contains("did you mean OSTIARY_KEYS__PUBLISH_AHEAD?"),
                "{}",
                load_error()
            );

            jail.clear_env();
            let secret = "a".repeat(40);
            jail.set_env("OSTIARY_ADMIN_TOKN", &secret);
            jail.set_env("OSTIARY_NOTHING_LIKE_ANY_SETTING", "1");
            let error = load_error();
            assert!(
                error.contains("OSTIARY_ADMIN_TOKN (did you mean OSTIARY_ADMIN_TOKEN?)"),
                "{error}"
            );
            assert!(
                error.contains("OSTIARY_NOTHING_LIKE_ANY_SETTING:"),
                "{error}"
            );
            assert!(!error.contains(&secret), "{error}");

            // Named as it was set.
            jail.clear_env();
            jail.set_env("ostiary_listn", "127.0.0.1:9000");
            assert!(
                load_error().contains("ostiary_listn (did you mean OSTIARY_LISTEN?)"),
                "{}",
                load_error()
            );
            Ok(())
        });
    }

    #[test]
    fn the_projects_variables_that_are_not_settings_are_accepted_and_not_read() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            for name in [
                "OSTIARY_LOG",
                "OSTIARY_CONFIG",
                "OSTIARY_DEMO_PASSWORD",
                "OSTIARY_BIN",
                "OSTIARY_TEST_DATABASE_URL",
                "OSTIARY_TEST_ANYTHING",
                "OSTIARY_LOADTEST_ADMIN_URL",
            ] {
                jail.set_env(name, "x");
            }
            let settings =
                Settings::load(None, &FlagOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(settings.database_url, "sqlite://ostiary.db");
            // Names are matched without regard to case, as figment reads them.
            jail.set_env("ostiary_access_token_ttl", "120");
            let settings =
                Settings::load(None, &FlagOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(settings.access_token_ttl, 120);
            Ok(())
        });
    }

    #[test]
    fn every_setting_has_a_variable_derived_from_the_settings_type() {
        let names = env_names();
        for expected in [
            "OSTIARY_LISTEN",
            "OSTIARY_DATABASE_URL",
            "OSTIARY_ADMIN_TOKEN",
            "OSTIARY_KEY_ENCRYPTION_KEY_FILE",
            "OSTIARY_TRUSTED_PROXIES",
            "OSTIARY_SESSION__IDLE_TIMEOUT",
            "OSTIARY_SESSION__ON_SESSION_LIMIT",
            "OSTIARY_LOGIN_THROTTLE__MAX_FAILURES_PER_IP",
            "OSTIARY_KEYS__ROTATION_INTERVAL",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
        }
        assert!(!names.iter().any(|n| is_not_a_setting(n)), "{names:?}");
        // Each one is read: a value that does not parse is refused.
        figment::Jail::expect_with(|jail| {
            for name in names.iter().filter(|n| {
                !matches!(
                    n.as_str(),
                    "OSTIARY_ISSUER"
                        | "OSTIARY_DATABASE_URL"
                        | "OSTIARY_ADMIN_TOKEN"
                        | "OSTIARY_METRICS_TOKEN"
                        | "OSTIARY_KEY_ENCRYPTION_KEY"
                        | "OSTIARY_KEY_ENCRYPTION_KEY_FILE"
                        | "OSTIARY_TRUSTED_PROXIES"
                )
            }) {
                jail.clear_env();
                jail.set_env(name, "[not, a, value]");
                assert!(
                    Settings::load(None, &FlagOverrides::default()).is_err(),
                    "{name} is not read"
                );
            }
            Ok(())
        });
    }

    #[test]
    fn an_invalid_database_url_is_reported_before_any_other_setting() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("OSTIARY_ACCESS_TOKEN_TTL", "0");
            jail.set_env("OSTIARY_DATABASE_URL", "mysql://root@127.0.0.1/idp");
            let error = load_error();
            assert!(
                error.contains("unsupported database URL scheme \"mysql\""),
                "{error}"
            );
            jail.set_env("OSTIARY_DATABASE_URL", "postgres://idp:s3cret@[::1/idp");
            let error = load_error();
            assert!(error.contains("invalid database URL"), "{error}");
            assert!(!error.contains("s3cret"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn trusted_proxies_come_as_a_toml_array_or_a_comma_separated_variable() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "proxies.toml",
                "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
            )?;
            let settings = Settings::load(
                Some(&PathBuf::from("proxies.toml")),
                &FlagOverrides::default(),
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(settings.trusted_proxies.items(), ["10.0.0.0/8", "::1"]);
            jail.set_env(
                "OSTIARY_TRUSTED_PROXIES",
                "127.0.0.1, 192.0.2.0/24,fd00::/8",
            );
            let settings =
                Settings::load(None, &FlagOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                settings.trusted_proxies.items(),
                ["127.0.0.1", "192.0.2.0/24", "fd00::/8"]
            );
            let proxies = settings.trusted_proxies().map_err(|e| e.to_string())?;
            assert!(proxies.contains("192.0.2.9".parse().unwrap()));
            jail.set_env("OSTIARY_TRUSTED_PROXIES", "10.0.0.1");
            let settings =
                Settings::load(None, &FlagOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(settings.trusted_proxies.items(), ["10.0.0.1"]);
            jail.set_env("OSTIARY_TRUSTED_PROXIES", "proxy.internal");
            assert!(Settings::load(None, &FlagOverrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn the_metrics_token_is_long_and_not_the_admin_token() {
        figment::Jail::expect_with(|jail| {
            let long = "m".repeat(32);
            jail.set_env("OSTIARY_METRICS_TOKEN", "short");
            assert!(Settings::load(None, &FlagOverrides::default()).is_err());
            jail.set_env("OSTIARY_METRICS_TOKEN", &long);
            let settings =
                Settings::load(None, &FlagOverrides::default()).map_err(|e| e.to_string())?;
            assert!(settings.metrics_token.is_some());
            assert!(!format!("{settings:?}").contains(&long), "redacted");
            jail.set_env("OSTIARY_ADMIN_TOKEN", &long);
            assert!(Settings::load(None, &FlagOverrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn http_timeouts_come_from_an_http_table_or_the_environment_and_must_be_positive() {
        figment::Jail::expect_with(|jail| {
            let defaults =
                Settings::load(None, &FlagOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(defaults.http.timeouts(), HttpTimeouts::default());
            jail.create_file(
                "http.toml",
                "[http]\nheader_read_timeout = 5\nkeep_alive_idle_timeout = 120\n",
            )?;
            jail.set_env("OSTIARY_HTTP__REQUEST_BODY_TIMEOUT", "30");
            let settings =
                Settings::load(Some(&PathBuf::from("http.toml")), &FlagOverrides::default())
                    .map_err(|e| e.to_string())?;
            let timeouts = settings.http.timeouts();
            assert_eq!(timeouts.header_read_timeout.as_secs(), 5);
            assert_eq!(timeouts.request_body_timeout.as_secs(), 30);
            assert_eq!(timeouts.keep_alive_idle_timeout.as_secs(), 120);

            jail.set_env("OSTIARY_HTTP__REQUEST_BODY_TIMEOUT", "0");
            let zero = Settings::load(None, &FlagOverrides::default()).unwrap_err();
            assert_eq!(
                zero.to_string(),
                "http.request_body_timeout must be more than zero and at most a day (seconds)"
            );
            jail.set_env("OSTIARY_HTTP__REQUEST_BODY_TIMEOUT", "-1");
            assert!(Settings::load(None, &FlagOverrides::default()).is_err());
            jail.set_env("OSTIARY_HTTP__REQUEST_BODY_TIMEOUT", "86401");
            assert!(Settings::load(None, &FlagOverrides::default()).is_err());
            jail.set_env("OSTIARY_HTTP__REQUEST_BODY_TIMEOUT", "10");
            jail.create_file("typo.toml", "[http]\nheader_timeout = 5\n")?;
            assert!(
                Settings::load(Some(&PathBuf::from("typo.toml")), &FlagOverrides::default())
                    .is_err()
            );
            Ok(())
        });
    }

    #[test]
    fn invalid_values_are_refused_at_start_up() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "access_token_ttl = 0\n")?;
            assert!(
                Settings::load(Some(&PathBuf::from("bad.toml")), &FlagOverrides::default())
                    .is_err()
            );
            jail.create_file("typo.toml", "acess_token_ttl = 10\n")?;
            assert!(
                Settings::load(Some(&PathBuf::from("typo.toml")), &FlagOverrides::default())
                    .is_err()
            );
            Ok(())
        });
    }
}
