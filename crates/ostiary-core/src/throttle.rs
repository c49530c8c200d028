//! Brute-force protection for the login form.
//!
//! Failed logins are counted per username and per client IP in a fixed window. Past the limit,
//! further attempts for that key are refused without checking the password until the window
//! ends, so an attacker can try at most [`ThrottlePolicy::max_failures_per_user`] passwords per
//! window against one account, whatever their IP. Counters live in this process's memory: with
//! several IdP instances each keeps its own (a shared counter is a later step).
//!
//! Memory is bounded: at most [`MAX_TRACKED_KEYS`] keys are tracked; when full, expired
//! windows are dropped first and, if that is not enough, the table is reset.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::UnixTime;

/// Most keys (usernames plus IPs) tracked at once.
pub const MAX_TRACKED_KEYS: usize = 100_000;

/// The counter key of a username: usernames are case-insensitive, and at most 64 characters
/// (anything longer is cut, so that junk input cannot make keys large).
fn normalize(username: &str) -> String {
    username.chars().take(64).collect::<String>().to_lowercase()
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

#[derive(Debug, Clone, Copy)]
struct Window {
    started_at: UnixTime,
    failures: u32,
}

/// The failure counters.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    windows: Mutex<HashMap<String, Window>>,
}

impl LoginThrottle {
    /// Counters under `policy`.
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            windows: Mutex::default(),
        }
    }

    fn keys(username: &str, ip: Option<&str>) -> Vec<(String, bool)> {
        let username = normalize(username);
        let mut keys = vec![(format!("user:{username}"), true)];
        if let Some(ip) = ip {
            keys.push((format!("ip:{ip}"), false));
        }
        keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn blocked(
        &self,
        windows: &HashMap<String, Window>,
        username: &str,
        ip: Option<&str>,
        now: UnixTime,
    ) -> Option<i64> {
        Self::keys(username, ip)
            .into_iter()
            .filter_map(|(key, is_user)| {
                let window = windows.get(&key)?;
                let limit = if is_user {
                    self.policy.max_failures_per_user
                } else {
                    self.policy.max_failures_per_ip
                };
                let ends = window.started_at + self.policy.window;
                (window.failures >= limit && now < ends).then_some(ends - now)
            })
            .max()
    }

    /// Starts a login attempt: `Err(seconds to wait)` if this username or IP is blocked at
    /// `now`; otherwise the attempt is counted as a failure *before* the password is checked,
    /// in the same critical section as the check, so that parallel attempts cannot all slip
    /// under the limit. A successful login takes its count back ([`record_success`]).
    ///
    /// [`record_success`]: Self::record_success
    pub fn begin_attempt(
        &self,
        username: &str,
        ip: Option<&str>,
        now: UnixTime,
    ) -> Result<(), i64> {
        let mut windows = self.lock();
        if let Some(wait) = self.blocked(&windows, username, ip, now) {
            return Err(wait);
        }
        if windows.len() >= MAX_TRACKED_KEYS {
            let window = self.policy.window;
            windows.retain(|_, w| now < w.started_at + window);
            if windows.len() >= MAX_TRACKED_KEYS {
                windows.clear();
            }
        }
        for (key, _) in Self::keys(username, ip) {
            let entry = windows.entry(key).or_insert(Window {
                started_at: now,
                failures: 0,
            });
            if now >= entry.started_at + self.policy.window {
                *entry = Window {
                    started_at: now,
                    failures: 0,
                };
            }
            entry.failures = entry.failures.saturating_add(1);
        }
        Ok(())
    }

    /// After a successful login: forgets the username's failures and takes back this
    /// attempt's count from the IP (many users behind one address keep signing in).
    pub fn record_success(&self, username: &str, ip: Option<&str>) {
        let mut windows = self.lock();
        windows.remove(&format!("user:{}", normalize(username)));
        if let Some(window) = ip.and_then(|ip| windows.get_mut(&format!("ip:{ip}"))) {
            window.failures = window.failures.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: ThrottlePolicy = ThrottlePolicy {
        window: 900,
        max_failures_per_user: 3,
        max_failures_per_ip: 5,
    };

    #[test]
    fn a_username_is_blocked_after_its_limit_until_the_window_ends() {
        let throttle = LoginThrottle::new(POLICY);
        for _ in 0..3 {
            assert_eq!(
                throttle.begin_attempt("alice", Some("10.0.0.1"), 100),
                Ok(())
            );
        }
        assert_eq!(
            throttle.begin_attempt("alice", Some("10.0.0.9"), 100),
            Err(900),
            "another IP does not help"
        );
        assert_eq!(throttle.begin_attempt("bob", Some("10.0.0.9"), 100), Ok(()));
        assert_eq!(
            throttle.begin_attempt("alice", None, 1000),
            Ok(()),
            "the window ended"
        );
    }

    #[test]
    fn attempts_count_before_the_password_is_checked() {
        // Parallel attempts each pass begin_attempt in turn: the limit holds however many are
        // in flight, since none of them has to finish first.
        let throttle = LoginThrottle::new(POLICY);
        let admitted = (0..20)
            .filter(|_| throttle.begin_attempt("alice", None, 0).is_ok())
            .count();
        assert_eq!(admitted, 3);
    }

    #[test]
    fn an_ip_is_blocked_after_its_limit_across_usernames() {
        let throttle = LoginThrottle::new(POLICY);
        for i in 0..5 {
            assert!(
                throttle
                    .begin_attempt(&format!("user{i}"), Some("10.0.0.1"), 0)
                    .is_ok()
            );
        }
        assert!(
            throttle
                .begin_attempt("someone-else", Some("10.0.0.1"), 10)
                .is_err()
        );
        assert!(
            throttle
                .begin_attempt("someone-else", Some("10.0.0.2"), 10)
                .is_ok()
        );
    }

    #[test]
    fn usernames_are_counted_without_regard_to_case() {
        let throttle = LoginThrottle::new(POLICY);
        for name in ["Alice", "ALICE", "alice"] {
            assert!(throttle.begin_attempt(name, None, 0).is_ok());
        }
        assert!(throttle.begin_attempt("aLiCe", None, 1).is_err());
    }

    #[test]
    fn success_takes_the_attempt_back() {
        let throttle = LoginThrottle::new(POLICY);
        for _ in 0..4 {
            assert!(throttle.begin_attempt("alice", Some("10.0.0.1"), 0).is_ok());
            throttle.record_success("alice", Some("10.0.0.1"));
        }
        // Four successful logins from one address leave both counters low.
        assert!(throttle.begin_attempt("alice", Some("10.0.0.1"), 0).is_ok());
        assert!(throttle.begin_attempt("bob", Some("10.0.0.1"), 0).is_ok());
    }
}
