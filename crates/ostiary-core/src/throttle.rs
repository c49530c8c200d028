//! Brute-force protection for the login form: defences that slow the attacker, not the owner.
//!
//! # The model
//!
//! Failed logins are counted in three kinds of counter. A counter is forgotten
//! [`ThrottlePolicy::window`] seconds after its last failure, so a patient attacker keeps it
//! alive and a forgetful owner sees it go.
//!
//! - **One username from one address** (an IPv4 address, or an IPv6 /64, which one client
//!   commonly holds whole): after [`ThrottlePolicy::max_failures_per_user_and_ip`] failures,
//!   every further attempt must wait after the last failure, twice as long each time (1 s,
//!   2 s, 4 s, …, at most [`ThrottlePolicy::max_delay`]). Until then the attempt is refused
//!   (`429` with `Retry-After`) without the password being checked. This is the only counter
//!   that refuses anything, and it refuses only this username from this address: the owner
//!   signing in from anywhere else is not affected.
//! - **One username from every address** (the ceiling for distributed guessing): after
//!   [`ThrottlePolicy::max_failures_per_user`] failures, each *failed* attempt for the username
//!   is answered late, after a delay doubling from 1 s to [`ThrottlePolicy::max_failure_delay`].
//!   A correct password is answered at once, so it never locks the owner out.
//! - **One address, every username** (password spraying): after
//!   [`ThrottlePolicy::max_failures_per_ip`] failures, the failed attempts from it are answered
//!   late in the same way. A correct password for any account, from behind that address (an
//!   office, a carrier NAT), still signs in at once.
//!
//! What an attacker can do with the defaults (5 free failures per username and address, a
//! 300 s longest wait, a 900 s window): from **one address**, against one account, about 15
//! guesses in the first quarter hour and then one every 5 minutes (≈ 300 a day); the owner
//! elsewhere notices nothing. With **100 addresses** or **10,000 addresses**, a hundred or ten
//! thousand times that: address-based counting cannot tell a botnet's addresses from the
//! owner's, and refusing a username for everyone would hand any stranger a way to lock the
//! owner out. Past 100 failures on the username every failed guess costs a delay, but
//! connections in parallel are not limited. Distributed guessing of one password is what a
//! second factor is for; spraying one password across many accounts from one address is
//! slowed per address as above. The argon2 pool bounds how many guesses an instance checks at
//! all (about 75 per core and second).
//!
//! The refusal and the delays depend only on the counters, which are kept per username text
//! whether or not the user exists, and a missing user's "password" is checked against a dummy
//! hash: the answers and their timing reveal nothing about which usernames exist.
//! `ostiary user unlock` (and the admin API) clears a username's counters; setting a new
//! password does too.
//!
//! # Where they live
//!
//! The counters are rows in the database ([`Store::begin_login_attempt`]), so that several IdP
//! instances sharing it enforce one limit together. An attempt is counted as failed *before*
//! the password is checked, in the same transaction as the decision, so parallel attempts
//! cannot all slip under a limit; a successful login takes its count back. The decision itself
//! is [`evaluate`], a function of the counters and the clock.
//!
//! # What is audited
//!
//! Each failure is audited on its own (`login_failed`) until one of its counters has passed its
//! free failures. From then on the attempts that counter sees are counted into it and audited
//! together, one `login_throttled` event per counter per [`REPORT_INTERVAL`] with how many there
//! were, so that an attacker cannot grow the audit log at request rate (the metrics still count
//! every one).

use crate::clock::UnixTime;
use crate::store::{LoginAttempt, LoginCounters, Store, StoreError, ThrottleKey};

/// Seconds between two `login_throttled` reports of one counter.
pub const REPORT_INTERVAL: i64 = 60;

/// Longest username kept in a counter key, characters (junk input cannot make keys large).
const MAX_KEY_USERNAME: usize = 64;

/// Which kind of counter a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterKind {
    /// One username from one address: refuses, with growing waits.
    UserAndAddress,
    /// One username from every address: delays failed answers.
    User,
    /// One address, every username: delays failed answers.
    Address,
}

impl CounterKind {
    /// The kind of a stored counter key (`pair:`, `user:`, `ip:`).
    pub fn of_key(key: &str) -> Self {
        if key.starts_with("pair:") {
            Self::UserAndAddress
        } else if key.starts_with("user:") {
            Self::User
        } else {
            Self::Address
        }
    }

    /// Stable name, for the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserAndAddress => "user_and_address",
            Self::User => "user",
            Self::Address => "address",
        }
    }
}

/// The username as counters know it: lower-case (usernames are case-insensitive), cut to 64
/// characters.
pub fn username_key(username: &str) -> String {
    username
        .chars()
        .take(MAX_KEY_USERNAME)
        .collect::<String>()
        .to_lowercase()
}

/// The address as counters know it: IPv6 addresses by their /64 network (one client commonly
/// holds a whole /64, and could otherwise spray from as many addresses as it likes),
/// IPv4-mapped IPv6 as IPv4; anything else cut to 64 characters.
fn address_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>().map(|a| a.to_canonical()) {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.chars().take(64).collect(),
    }
}

/// Limits for failed logins (see the module documentation for the model). Seconds and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottlePolicy {
    /// A counter is forgotten this long after its last failure, seconds. Default 900.
    pub window: i64,
    /// Failures of one username from one address before each further attempt from there must
    /// wait (refused until then). Default 5.
    pub max_failures_per_user_and_ip: u32,
    /// Failures of one username from all addresses before its failed attempts are answered
    /// late. Default 100.
    pub max_failures_per_user: u32,
    /// Failures from one address (all usernames) before its failed attempts are answered
    /// late. Default 100.
    pub max_failures_per_ip: u32,
    /// Longest wait imposed on one username from one address, seconds (the wait doubles from
    /// 1 s). Default 300.
    pub max_delay: i64,
    /// Longest delay before a failed attempt is answered, seconds (doubling from 1 s); 0: no
    /// delays. Default 8.
    pub max_failure_delay: i64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: 900,
            max_failures_per_user_and_ip: 5,
            max_failures_per_user: 100,
            max_failures_per_ip: 100,
            max_delay: 300,
            max_failure_delay: 8,
        }
    }
}

impl ThrottlePolicy {
    /// Rejects values that make no sense (a window shorter than the longest wait would let
    /// a counter be forgotten while it still holds an attacker back).
    pub fn validate(&self) -> Result<(), String> {
        if self.window <= 0 || self.max_delay <= 0 || self.max_failure_delay < 0 {
            return Err("login_throttle: window and max_delay must be positive, max_failure_delay 0 or more".into());
        }
        if self.window < self.max_delay {
            return Err(format!(
                "login_throttle.window ({} s) must be at least login_throttle.max_delay ({} s)",
                self.window, self.max_delay
            ));
        }
        if self.max_failures_per_user_and_ip == 0
            || self.max_failures_per_user == 0
            || self.max_failures_per_ip == 0
        {
            return Err("login_throttle: the max_failures_* limits must be at least 1".into());
        }
        Ok(())
    }

    fn free_failures(&self, kind: CounterKind) -> u32 {
        match kind {
            CounterKind::UserAndAddress => self.max_failures_per_user_and_ip,
            CounterKind::User => self.max_failures_per_user,
            CounterKind::Address => self.max_failures_per_ip,
        }
    }
}

/// `2^(excess - 1)` seconds for the `excess`-th failure beyond the free ones, at most `max`.
fn doubling(excess: u32, max: i64) -> i64 {
    if excess == 0 || max <= 0 {
        return 0;
    }
    1_i64.checked_shl(excess - 1).unwrap_or(i64::MAX).min(max)
}

/// What [`evaluate`] decides about one attempt, given its counters as they stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Refused: seconds until an attempt is allowed again. Nothing is counted but the refusal.
    pub refused_for: Option<i64>,
    /// Seconds to wait before answering this attempt if it fails (0: at once).
    pub failure_delay: i64,
    /// The counter (index into the keys) that has passed its free failures and takes this
    /// attempt into its aggregate instead of an audit event of its own; `None`: audit it alone.
    pub aggregate_into: Option<usize>,
}

/// Decides about an attempt under `policy` at `now`. `counters[i]` is the stored state of
/// `keys[i]` (`None`: no failures, or forgotten).
pub fn evaluate(
    policy: &ThrottlePolicy,
    keys: &[ThrottleKey],
    counters: &[Option<LoginCounters>],
    now: UnixTime,
) -> Evaluation {
    let mut refused_for: Option<i64> = None;
    let mut failure_delay = 0;
    let mut aggregate_into = None;
    for (index, (key, counter)) in keys.iter().zip(counters).enumerate() {
        let Some(counter) =
            counter.filter(|c| now < c.last_failure_at.saturating_add(policy.window))
        else {
            continue;
        };
        let free = policy.free_failures(key.kind);
        if counter.failures < free {
            continue;
        }
        let excess = counter.failures - free + 1;
        match key.kind {
            CounterKind::UserAndAddress => {
                let allowed_at = counter
                    .last_failure_at
                    .saturating_add(doubling(excess, policy.max_delay));
                if now < allowed_at {
                    refused_for = Some(refused_for.unwrap_or(0).max(allowed_at - now));
                }
            }
            CounterKind::User | CounterKind::Address => {
                failure_delay = failure_delay.max(doubling(excess, policy.max_failure_delay));
            }
        }
        // The broadest counter that is engaged takes the aggregate: keys come narrowest first,
        // so a distributed attack on one username is counted on the username, a spray on the
        // address.
        aggregate_into = Some(index);
    }
    Evaluation {
        refused_for,
        failure_delay: if refused_for.is_some() {
            0
        } else {
            failure_delay
        },
        aggregate_into,
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

    /// The policy.
    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// The counters an attempt for `username` from `ip` is checked against, narrowest first:
    /// username and address, username, address.
    pub fn keys(&self, username: &str, ip: Option<&str>) -> Vec<ThrottleKey> {
        let user = username_key(username);
        let mut keys = Vec::with_capacity(3);
        if let Some(ip) = ip {
            let address = address_key(ip);
            keys.push(ThrottleKey {
                key: format!("pair:{user}|{address}"),
                username: Some(user.clone()),
                kind: CounterKind::UserAndAddress,
            });
            keys.push(ThrottleKey {
                key: format!("user:{user}"),
                username: Some(user),
                kind: CounterKind::User,
            });
            keys.push(ThrottleKey {
                key: format!("ip:{address}"),
                username: None,
                kind: CounterKind::Address,
            });
        } else {
            keys.push(ThrottleKey {
                key: format!("user:{user}"),
                username: Some(user),
                kind: CounterKind::User,
            });
        }
        keys
    }

    /// Starts a login attempt (see the module documentation): refused, or counted as a failure
    /// before the password is checked, with what to do if it fails.
    pub async fn begin_attempt(
        &self,
        store: &dyn Store,
        username: &str,
        ip: Option<&str>,
        now: UnixTime,
    ) -> Result<(Vec<ThrottleKey>, LoginAttempt), StoreError> {
        let keys = self.keys(username, ip);
        let attempt = store.begin_login_attempt(&keys, now, &self.policy).await?;
        Ok((keys, attempt))
    }

    /// After a successful login: forgets this username's failures from this address, and
    /// takes this attempt's count back from the username's and the address's counters (many
    /// users behind one address keep signing in).
    pub async fn record_success(
        &self,
        store: &dyn Store,
        keys: &[ThrottleKey],
        aggregated_into: Option<usize>,
    ) -> Result<(), StoreError> {
        store.record_login_success(keys, aggregated_into).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(failures: u32, last_failure_at: UnixTime) -> Option<LoginCounters> {
        Some(LoginCounters {
            failures,
            last_failure_at,
        })
    }

    #[test]
    fn keys_are_narrowest_first_case_insensitive_and_bounded() {
        let throttle = LoginThrottle::new(ThrottlePolicy::default());
        let keys = throttle.keys("ALICE", Some("10.0.0.1"));
        let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(names, ["pair:alice|10.0.0.1", "user:alice", "ip:10.0.0.1"]);
        assert_eq!(keys[0].username.as_deref(), Some("alice"));
        assert_eq!(keys[2].username, None);
        let long = throttle.keys(&"x".repeat(10_000), Some(&"1".repeat(10_000)));
        assert!(long.iter().all(|k| k.key.len() <= 140));
        assert_eq!(throttle.keys("bob", None).len(), 1);
        // One IPv6 /64 is one client; IPv4-mapped addresses are their IPv4 address.
        let a = throttle.keys("x", Some("2001:db8:1:2::1"));
        let b = throttle.keys("x", Some("2001:db8:1:2:ffff::9"));
        assert_eq!(a[2].key, "ip:2001:db8:1:2::/64");
        assert_eq!(a[0].key, b[0].key);
        assert_ne!(a[2].key, throttle.keys("x", Some("2001:db8:1:3::1"))[2].key);
        assert_eq!(
            throttle.keys("x", Some("::ffff:10.0.0.1"))[2].key,
            "ip:10.0.0.1"
        );
    }

    #[test]
    fn one_username_from_one_address_waits_twice_as_long_after_each_failure() {
        let policy = ThrottlePolicy::default();
        let keys = LoginThrottle::new(policy).keys("alice", Some("10.0.0.1"));
        let at = |failures| [counters(failures, 1000), None, None];
        // Four failures: the fifth attempt goes ahead, audited on its own.
        let fifth = evaluate(&policy, &keys, &at(4), 1000);
        assert_eq!(
            fifth,
            Evaluation {
                refused_for: None,
                failure_delay: 0,
                aggregate_into: None
            }
        );
        // Five: the sixth waits 1 s after the last failure, the seventh 2 s, then 4 s, ...
        for (failures, wait) in [
            (5, 1),
            (6, 2),
            (7, 4),
            (8, 8),
            (12, 128),
            (13, 256),
            (14, 300),
            (40, 300),
        ] {
            assert_eq!(
                evaluate(&policy, &keys, &at(failures), 1000).refused_for,
                Some(wait),
                "{failures}"
            );
            let due = evaluate(&policy, &keys, &at(failures), 1000 + wait);
            assert_eq!(due.refused_for, None, "{failures}");
            assert_eq!(due.aggregate_into, Some(0), "counted together from now on");
        }
        // Forgotten a window after the last failure.
        let forgotten = evaluate(&policy, &keys, &at(40), 1000 + policy.window);
        assert_eq!(forgotten.aggregate_into, None);
    }

    #[test]
    fn the_username_and_address_ceilings_only_delay_failed_answers() {
        let policy = ThrottlePolicy::default();
        let keys = LoginThrottle::new(policy).keys("alice", Some("10.0.0.1"));
        // Another address, never failed for alice, while alice's ceiling is passed.
        let user = evaluate(&policy, &keys, &[None, counters(100, 1000), None], 1001);
        assert_eq!(
            user,
            Evaluation {
                refused_for: None,
                failure_delay: 1,
                aggregate_into: Some(1)
            }
        );
        let later = evaluate(&policy, &keys, &[None, counters(103, 1000), None], 1001);
        assert_eq!(later.failure_delay, 8);
        let spray = evaluate(&policy, &keys, &[None, None, counters(101, 1000)], 1001);
        assert_eq!(
            spray,
            Evaluation {
                refused_for: None,
                failure_delay: 2,
                aggregate_into: Some(2)
            }
        );
        // Both engaged: the broadest takes the aggregate; a refusal answers at once.
        let all = evaluate(
            &policy,
            &keys,
            &[counters(9, 1000), counters(150, 1000), counters(150, 1000)],
            1001,
        );
        assert_eq!(all.refused_for, Some(15));
        assert_eq!(all.failure_delay, 0);
        assert_eq!(all.aggregate_into, Some(2));
        let off = ThrottlePolicy {
            max_failure_delay: 0,
            ..policy
        };
        assert_eq!(
            evaluate(&off, &keys, &[None, counters(500, 1000), None], 1001).failure_delay,
            0
        );
    }

    #[test]
    fn nonsensical_policies_are_refused() {
        assert!(ThrottlePolicy::default().validate().is_ok());
        let short = ThrottlePolicy {
            window: 60,
            max_delay: 300,
            ..ThrottlePolicy::default()
        };
        assert!(short.validate().is_err());
        let zero = ThrottlePolicy {
            max_failures_per_user_and_ip: 0,
            ..ThrottlePolicy::default()
        };
        assert!(zero.validate().is_err());
    }
}
