//! Brute-force protection for the login form.
//!
//! Failed logins are counted per username and per client IP in a fixed window. Past the limit,
//! further attempts for that key are refused without checking the password until the window
//! ends, so an attacker can try at most [`ThrottlePolicy::max_failures_per_user`] passwords per
//! window against one account, whatever their IP.
//!
//! The counters live in the database ([`Store::begin_login_attempt`]), so that several IdP
//! instances sharing it enforce one limit together. An attempt is counted as failed *before*
//! the password is checked, in the same transaction as the limit check, so parallel attempts
//! cannot all slip under it; a successful login takes its count back. Counters whose window
//! ended are deleted as attempts come in, so the table holds at most the keys seen within one
//! window.

use crate::clock::UnixTime;
use crate::store::{LoginAttempt, Store, StoreError, ThrottleKey};

/// The counter key of a username: usernames are case-insensitive, and at most 64 characters
/// (anything longer is cut, so that junk input cannot make keys large).
fn user_key(username: &str) -> String {
    let username: String = username.chars().take(64).collect::<String>().to_lowercase();
    format!("user:{username}")
}

/// The counter key of a client IP (at most 64 characters). IPv6 addresses count by their /64
/// network: one client commonly holds a whole /64, and could otherwise spray passwords from
/// as many addresses as it likes.
fn ip_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>().map(|a| a.to_canonical()) {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V4(v4)) => format!("ip:{v4}"),
        Err(_) => format!("ip:{}", ip.chars().take(64).collect::<String>()),
    }
}

/// Limits for failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottlePolicy {
    /// Length of a counting window, seconds. Default 900 (15 minutes).
    pub window: i64,
    /// Failed logins allowed per username per window. Default 10.
    pub max_failures_per_user: u32,
    /// Failed logins allowed per client IP per window. Default 50.
    pub max_failures_per_ip: u32,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: 900,
            max_failures_per_user: 10,
            max_failures_per_ip: 50,
        }
    }
}

/// The failed-login limits, applied through the store's shared counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
}

impl LoginThrottle {
    /// Counters under `policy`.
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self { policy }
    }

    /// The counters an attempt for `username` from `ip` is checked against.
    pub fn keys(&self, username: &str, ip: Option<&str>) -> Vec<ThrottleKey> {
        let mut keys = vec![ThrottleKey {
            key: user_key(username),
            max_failures: self.policy.max_failures_per_user,
        }];
        if let Some(ip) = ip {
            keys.push(ThrottleKey {
                key: ip_key(ip),
                max_failures: self.policy.max_failures_per_ip,
            });
        }
        keys
    }

    /// Starts a login attempt: `Ok(Err(seconds to wait))` if this username or IP is blocked
    /// at `now`; otherwise the attempt is counted as a failure before the password is checked
    /// (see the module documentation), and [`record_success`](Self::record_success) takes it
    /// back.
    pub async fn begin_attempt(
        &self,
        store: &dyn Store,
        username: &str,
        ip: Option<&str>,
        now: UnixTime,
    ) -> Result<Result<(), i64>, StoreError> {
        let keys = self.keys(username, ip);
        Ok(
            match store
                .begin_login_attempt(&keys, now, self.policy.window)
                .await?
            {
                LoginAttempt::Allowed => Ok(()),
                LoginAttempt::Blocked { retry_after } => Err(retry_after),
            },
        )
    }

    /// After a successful login: forgets the username's failures and takes back this
    /// attempt's count from the IP (many users behind one address keep signing in).
    pub async fn record_success(
        &self,
        store: &dyn Store,
        username: &str,
        ip: Option<&str>,
    ) -> Result<(), StoreError> {
        store
            .record_login_success(&user_key(username), ip.map(ip_key).as_deref())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_counted_without_regard_to_case_and_keys_are_bounded() {
        let throttle = LoginThrottle::new(ThrottlePolicy::default());
        let keys = throttle.keys("ALICE", Some("10.0.0.1"));
        assert_eq!(keys[0].key, "user:alice");
        assert_eq!(keys[0].max_failures, 10);
        assert_eq!(keys[1].key, "ip:10.0.0.1");
        assert_eq!(keys[1].max_failures, 50);
        let long = throttle.keys(&"x".repeat(10_000), Some(&"1".repeat(10_000)));
        assert!(long.iter().all(|k| k.key.len() <= 70));
        assert_eq!(throttle.keys("bob", None).len(), 1);
        // One IPv6 /64 is one client; IPv4-mapped addresses are their IPv4 address.
        let a = throttle.keys("x", Some("2001:db8:1:2::1"));
        let b = throttle.keys("x", Some("2001:db8:1:2:ffff::9"));
        assert_eq!(a[1].key, "ip:2001:db8:1:2::/64");
        assert_eq!(a[1].key, b[1].key);
        assert_ne!(a[1].key, throttle.keys("x", Some("2001:db8:1:3::1"))[1].key);
        assert_eq!(
            throttle.keys("x", Some("::ffff:10.0.0.1"))[1].key,
            "ip:10.0.0.1"
        );
    }
}
