//! Password hashing: Argon2id (m = 19 MiB, t = 2, p = 1, the OWASP baseline; about 14–20 ms
//! per hash on one core of this project's machine in a release build) on threads of its own,
//! which give way to everything else the IdP does.
//!
//! A sign-in costs one hash, a refresh about 0.2 ms: a flood of sign-ins could take all the
//! CPU that refreshes, logouts and every other request need. Two things keep it from that:
//!
//! - **Priority.** The hashing threads are one fewer than the cores the process may use (at
//!   least one) and run at nice 10 (per thread on Linux), so they take the CPU the rest of the
//!   process leaves over while it wants the CPU itself.
//! - **Pacing** ([`HashingPolicy::busy_share_percent`]). Priority only helps while the server
//!   itself is runnable. When it waits for its database (PostgreSQL on the same machine), the
//!   hashes filled that time, and the database's work and the caches paid for it: a flood of
//!   sign-ins cut the refresh rate to 0.46–0.65× (BENCHMARKS.md, "Refresh during a flood of
//!   sign-ins"). So while other requests are being served, a hashing thread hashes at most
//!   that share of its time: after a hash that took `d` of the thread's CPU time, it waits up
//!   to `d × (100 / share − 1)` before it takes the next, and stops waiting as soon as no
//!   other request is in flight. (CPU time, not wall time: on a core the server keeps busy, a
//!   hash at nice 10 already takes longer, and pacing by its wall time would count that
//!   twice.)
//!   Sign-ins then queue rather than slow the rest down (0.80–0.89× the refresh rate during a
//!   flood of sign-ins, on both backends); with no other traffic, a hash waits only while
//!   other sign-ins' other steps run.
//!
//! The server tells the hasher which requests are in flight through [`Demand`]: every request
//! holds a [`Serving`] guard from the end of its body until its response is made, and one
//! that waits for a hash or out a deliberate delay (a failed sign-in held back) also holds a
//! [`Waiting`] guard, so that it is not counted as other work: idle requests cannot slow
//! sign-ins down.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version};

use crate::secret::Password;
use crate::user::PasswordHashString;

/// How the hashing threads give way to other requests (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HashingPolicy {
    /// The largest share of a hashing thread's time spent hashing while other requests are in
    /// flight, percent, 1 to 100 (100: no pacing). Default 20: after a hash of 20 ms a thread
    /// waits up to 80 ms, as long as other requests are being served.
    pub busy_share_percent: u32,
}

impl Default for HashingPolicy {
    fn default() -> Self {
        Self {
            busy_share_percent: 20,
        }
    }
}

impl HashingPolicy {
    /// Checks the share is within 1 to 100 percent.
    ///
    /// # Errors
    /// What is wrong, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        if (1..=100).contains(&self.busy_share_percent) {
            Ok(())
        } else {
            Err(format!(
                "password_hashing.busy_share_percent must be 1 to 100, got {}",
                self.busy_share_percent
            ))
        }
    }

    /// The longest wait after a hash that took `took` while other requests are in flight.
    fn pause_after(&self, took: Duration) -> Duration {
        let share = self.busy_share_percent.clamp(1, 100);
        took * (100 - share) / share
    }
}

/// How long a pacing hashing thread sleeps before it looks at the demand again.
const PACING_STEP: Duration = Duration::from_millis(2);

/// The requests being served, as the hasher sees them: those in flight, and those of them
/// that only wait, for (or in) a hash or out a deliberate delay ([`Demand::waiting`]).
/// Shared by the server (one [`Serving`] per request) and the hashing threads. Two atomic
/// counters; nothing is locked.
#[derive(Debug, Default)]
pub struct Demand {
    requests: AtomicUsize,
    waiting: AtomicUsize,
}

impl Demand {
    /// Counts a request as in flight until the guard is dropped.
    pub fn serving(self: &Arc<Self>) -> Serving {
        self.requests.fetch_add(1, Ordering::Relaxed);
        Serving(Arc::clone(self))
    }

    /// Counts a request in flight as not working until the guard is dropped: one that waits
    /// out a deliberate delay (a failed sign-in held back) must not slow the hashes down.
    pub fn waiting(self: &Arc<Self>) -> Waiting {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(Arc::clone(self))
    }

    /// Requests in flight that are not waiting (for a hash, or out a delay): while there are
    /// any, hashing threads pace themselves.
    pub fn others(&self) -> usize {
        let waiting = self.waiting.load(Ordering::Relaxed);
        self.requests
            .load(Ordering::Relaxed)
            .saturating_sub(waiting)
    }
}

/// A request in flight (see [`Demand::serving`]).
#[derive(Debug)]
pub struct Serving(Arc<Demand>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request in flight that only waits (see [`Demand::waiting`]); a hash queued or running
/// holds one for as long as its caller waits for it.
#[derive(Debug)]
pub struct Waiting(Arc<Demand>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// After a hash that took `took`: waits (with `sleep`, in steps of [`PACING_STEP`]) for at
/// most the policy's pause, for as long as `others()` says other requests are in flight.
/// Returns how long it waited.
fn pace(
    policy: &HashingPolicy,
    took: Duration,
    others: impl Fn() -> usize,
    mut sleep: impl FnMut(Duration),
) -> Duration {
    let mut left = policy.pause_after(took);
    let mut waited = Duration::ZERO;
    while !left.is_zero() && others() > 0 {
        let step = left.min(PACING_STEP);
        sleep(step);
        left -= step;
        waited += step;
    }
    waited
}

/// Failure of the password hasher itself (not a wrong password).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingError(String);

/// Hashes and verifies passwords on threads of their own, at a lower priority and paced
/// while other requests are served (see the module documentation). Requests beyond the
/// threads wait in turn.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    threads: Arc<HashingThreads>,
    dummy_hash: Arc<PasswordHashString>,
}

type HashJob = Box<dyn FnOnce() + Send>;

/// The hashing threads and the queue they take work from.
struct HashingThreads {
    jobs: std::sync::mpsc::Sender<HashJob>,
    demand: Arc<Demand>,
}

impl std::fmt::Debug for HashingThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashingThreads")
    }
}

impl HashingThreads {
    fn start(count: usize, policy: HashingPolicy) -> Result<Self, HashingError> {
        let (jobs, queue) = std::sync::mpsc::channel::<HashJob>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        let demand = Arc::new(Demand::default());
        for _ in 0..count {
            let queue = Arc::clone(&queue);
            let demand = Arc::clone(&demand);
            std::thread::Builder::new()
                .name("ostiary-argon2".into())
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else {
                            return; // the hasher is gone
                        };
                        let started = busy_time();
                        job();
                        let took = busy_time().saturating_sub(started);
                        pace(&policy, took, || demand.others(), std::thread::sleep);
                    }
                })
                .map_err(|e| HashingError(e.to_string()))?;
        }
        Ok(Self { jobs, demand })
    }

    /// Runs `work` on a hashing thread.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let _waiting = self.demand.waiting();
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = answer.send(work());
            }))
            .map_err(|_| HashingError("the hashing threads have stopped".into()))?;
        answered
            .await
            .map_err(|_| HashingError("a hashing thread stopped".into()))
    }
}

/// The CPU time the calling thread has used (Unix): what a hash cost its thread, not counting
/// the time it waited for a core while other threads ran. Elsewhere, the time since the
/// process's first call.
fn busy_time() -> Duration {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    }
    #[cfg(not(unix))]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}

/// Makes the calling thread yield to the process's other threads (nice 10; on Linux the
/// niceness is per thread). Best effort: a refusal leaves it at normal priority.
fn lower_priority() {
    #[cfg(unix)]
    if let Err(e) = rustix::process::setpriority_process(None, 10) {
        tracing::debug!(error = %e, "could not lower the priority of a hashing thread");
    }
}

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet baseline for Argon2id.
    #[allow(clippy::expect_used)]
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &Password) -> Result<PasswordHashString, HashingError> {
    use argon2::PasswordHasher as _;
    let salt = crate::secret::random_bytes::<16>();
    argon2()
        .hash_password_with_salt(password.expose().as_bytes(), &salt)
        .map(|hash| PasswordHashString::from_stored(hash.to_string()))
        .map_err(|e| HashingError(e.to_string()))
}

fn verify_blocking(password: &Password, hash: &PasswordHashString) -> bool {
    match PasswordHash::new(hash.as_str()) {
        Ok(parsed) => argon2()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

impl PasswordHasher {
    /// A hasher running at most `max_concurrent` hashes at once (at least 1), each on a
    /// thread of its own, paced by `policy`.
    pub fn new(max_concurrent: usize, policy: HashingPolicy) -> Result<Self, HashingError> {
        let dummy = hash_blocking(&Password::new(crate::secret::random_id()))?;
        Ok(Self {
            threads: Arc::new(HashingThreads::start(max_concurrent.max(1), policy)?),
            dummy_hash: Arc::new(dummy),
        })
    }

    /// A hasher with [`PasswordHasher::default_concurrency`] threads, paced by `policy`: the
    /// IdP's.
    pub fn for_this_machine(policy: HashingPolicy) -> Result<Self, HashingError> {
        Self::new(Self::default_concurrency(), policy)
    }

    /// How many hashes an IdP runs at once on this machine: one fewer than the cores the
    /// process may use (at least one), so that sign-ins never take every core.
    pub fn default_concurrency() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1))
            .unwrap_or(1)
            .max(1)
    }

    /// The requests in flight, which the server counts ([`Demand::serving`]) and the hashing
    /// threads give way to.
    pub fn demand(&self) -> &Arc<Demand> {
        &self.threads.demand
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: Password) -> Result<PasswordHashString, HashingError> {
        self.threads.run(move || hash_blocking(&password)).await?
    }

    /// Verifies a password against a stored hash. With `None` (unknown user) it verifies
    /// against a dummy hash and returns `false`, so that response time does not reveal
    /// whether a username exists.
    pub async fn verify(&self, password: Password, hash: Option<PasswordHashString>) -> bool {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| (*self.dummy_hash).clone());
        let verified = self
            .threads
            .run(move || verify_blocking(&password, &hash))
            .await
            .unwrap_or(false);
        known && verified
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hasher = PasswordHasher::new(2, HashingPolicy::default()).unwrap();
        let hash = hasher.hash(Password::new("s3cret-pass")).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert!(
            hasher
                .verify(Password::new("s3cret-pass"), Some(hash.clone()))
                .await
        );
        assert!(!hasher.verify(Password::new("wrong"), Some(hash)).await);
        assert!(!hasher.verify(Password::new("s3cret-pass"), None).await);
    }

    fn policy(percent: u32) -> HashingPolicy {
        HashingPolicy {
            busy_share_percent: percent,
        }
    }

    #[test]
    fn the_pause_keeps_hashing_to_its_share_of_the_time() {
        let took = Duration::from_millis(20);
        assert_eq!(policy(25).pause_after(took), Duration::from_millis(60));
        assert_eq!(policy(50).pause_after(took), Duration::from_millis(20));
        assert_eq!(policy(100).pause_after(took), Duration::ZERO);
        assert_eq!(policy(1).pause_after(took), Duration::from_millis(1980));
    }

    #[test]
    fn a_thread_waits_out_its_pause_while_other_requests_are_in_flight() {
        let slept = RefCell::new(Vec::new());
        let waited = pace(
            &policy(25),
            Duration::from_millis(3),
            || 1,
            |d| slept.borrow_mut().push(d),
        );
        assert_eq!(waited, Duration::from_millis(9));
        let ms = |n| Duration::from_millis(n);
        assert_eq!(*slept.borrow(), [ms(2), ms(2), ms(2), ms(2), ms(1)]);
    }

    #[test]
    fn a_thread_stops_waiting_when_nothing_else_is_in_flight() {
        // Other work for the first two looks, then none.
        let looks = Cell::new(0);
        let others = || {
            looks.set(looks.get() + 1);
            usize::from(looks.get() <= 2)
        };
        let waited = pace(&policy(25), Duration::from_millis(20), others, |_| {});
        assert_eq!(waited, PACING_STEP * 2);
        // With nothing in flight to begin with, no wait at all.
        let waited = pace(&policy(25), Duration::from_millis(20), || 0, |_| {});
        assert_eq!(waited, Duration::ZERO);
        // Without pacing, no wait even under load.
        let waited = pace(&policy(100), Duration::from_millis(20), || 5, |_| {});
        assert_eq!(waited, Duration::ZERO);
    }

    #[tokio::test]
    async fn a_request_waiting_for_a_hash_is_not_other_work() {
        let hasher = PasswordHasher::new(1, HashingPolicy::default()).unwrap();
        let demand = Arc::clone(hasher.demand());
        let sign_in = demand.serving();
        assert_eq!(demand.others(), 1);
        let during = {
            let demand = Arc::clone(&demand);
            hasher.threads.run(move || demand.others()).await.unwrap()
        };
        assert_eq!(during, 0, "the request in the hash is not counted");
        assert_eq!(demand.others(), 1, "after its hash it is other work again");
        let refresh = demand.serving();
        assert_eq!(demand.others(), 2);
        drop(sign_in);
        drop(refresh);
        assert_eq!(demand.others(), 0);
    }

    #[test]
    fn a_request_waiting_out_a_delay_is_not_other_work() {
        let demand = Arc::new(Demand::default());
        let failed_sign_in = demand.serving();
        assert_eq!(demand.others(), 1);
        let held_back = demand.waiting();
        assert_eq!(demand.others(), 0);
        drop(held_back);
        assert_eq!(demand.others(), 1);
        drop(failed_sign_in);
        assert_eq!(demand.others(), 0);
    }

    #[test]
    fn the_share_is_validated() {
        assert!(policy(25).validate().is_ok());
        assert!(policy(100).validate().is_ok());
        assert!(policy(0).validate().is_err());
        assert!(policy(101).validate().is_err());
    }
}
