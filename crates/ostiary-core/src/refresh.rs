//! The refresh-token state machine: rotation, idempotent replay inside the grace window,
//! recovery of a lost response, and reuse (theft) detection. See PRODUCT.md, "The refresh
//! state machine".
//!
//! A *family* is the chain of refresh tokens one client holds within one IdP session. Every
//! token of the chain is stored only as a hash, together with its *generation* (0, 1, 2, …);
//! the family records which generation is current.
//!
//! - Presenting the current generation rotates: generation `g + 1` becomes current, by a
//!   compare-and-swap on the generation in the store, so exactly one of many concurrent
//!   rotations wins, across processes.
//! - Presenting generation `g - 1` within [`SessionPolicy::refresh_grace`] seconds of the
//!   rotation returns the *same* successor. The successor is kept sealed (AES-256-GCM) under
//!   a key derived (HKDF-SHA256) from the previous token itself, so the store never holds a
//!   usable credential in clear and only the previous token's holder can open it.
//! - Presenting generation `g - 1` after the grace window, while generation `g` has never
//!   been presented, also returns the same successor (*recovery*, for at most
//!   [`SessionPolicy::refresh_recovery`] seconds after the rotation); see below.
//! - Anything else that is known (an older generation, or `g - 1` once `g` has been used) is
//!   reuse: someone copied a token, and the whole session is ended.
//!
//! # Why recovery keeps theft detection
//!
//! A rotation commits before its response reaches the client. If the process dies or the
//! connection is cut in between, the client still holds only `g - 1`, and retries with it
//! once the IdP answers again, often long after the grace window. Treating that retry as
//! theft ends an innocent session for every outage. The state tells the two cases apart
//! well enough:
//!
//! - While the successor `g` has never been presented, nobody can have *used* the rotation:
//!   whoever presents `g - 1` either lost the response, or copied `g - 1` and races the
//!   owner for a successor the owner may already hold. Either way the answer is the one
//!   successor that exists; no second branch is created, so there is still exactly one
//!   current token.
//! - The handing out is recorded: the family's current token is marked *reissued*
//!   (`current_reissued`), because it may now be held by two parties. A reissued token keeps
//!   no late privilege: once it has rotated, presenting it again after the grace window is
//!   reuse, never another recovery. So if a thief and the owner both end up with the
//!   successor, the second of them to use it ends the session, exactly as if the thief had
//!   copied the current token itself (the baseline risk of any bearer credential).
//! - Once `g` has been presented, `g - 1` is two generations old and always reuse: a copy of
//!   the previous token cannot reach a successor its owner already uses.
//! - The grace window is for concurrency (two tabs, a retry within seconds) and cannot tell
//!   a second holder from a second tab; a replay within it of a reissued token marks the
//!   successor it hands out as reissued too, so the privilege never launders through it.
//! - Recovery is bounded in time ([`ClientPolicy::refresh_recovery`]), and off where the
//!   grace window is 0 unless set explicitly: a deployment that allows no replay at all gets
//!   none.
//!
//! The cost: a client that loses the response to a rotation *twice in a row*, the second time
//! on a token it had recovered, is treated as a second holder and its session ends. Every
//! other guarantee is unchanged: one successor per generation, decided by compare-and-swap in
//! the store, so it holds across instances and restarts.

use aws_lc_rs::{aead, hkdf};

use crate::client::ClientId;
use crate::clock::UnixTime;
use crate::scope::Scope;
use crate::secret::{Credential, CredentialHash};
use crate::session::{ClientPolicy, EndReason, Session, SessionPolicy, SessionState};

/// One client's chain of refresh tokens within one IdP session.
#[derive(Debug, Clone)]
pub struct RefreshFamily {
    /// Random identifier of the family.
    pub id: String,
    /// The IdP session the family belongs to.
    pub sid: String,
    /// The client the tokens were issued to.
    pub client_id: ClientId,
    /// The user (`sub`).
    pub user_id: String,
    /// Scope granted; refreshes may narrow it, never widen it.
    pub scope: Scope,
    /// Resource (audience) of the access tokens minted from this family.
    pub resource: String,
    /// Generation of the current refresh token (0 for the first one).
    pub generation: i64,
    /// When the current generation was issued (Unix seconds).
    pub rotated_at: UnixTime,
    /// The current token sealed under the previous one (None for generation 0).
    pub sealed_successor: Option<Vec<u8>>,
    /// When the family was created (Unix seconds).
    pub created_at: UnixTime,
    /// When it ended, if it did.
    pub ended_at: Option<UnixTime>,
    /// Why it ended (an [`EndReason::as_str`]).
    pub end_reason: Option<String>,
    /// Hash of the authorization code the family was issued from.
    pub code_hash: Option<CredentialHash>,
    /// IP of the request that received the current token (evidence if an older one returns).
    pub last_use_ip: Option<String>,
    /// `User-Agent` of that request.
    pub last_use_user_agent: Option<String>,
    /// The thumbprint (RFC 7638) of the DPoP key the family is bound to (RFC 9449 §5): set for
    /// a public client that presented a proof at the code exchange; every refresh must then
    /// come with a proof by that key.
    pub dpop_jkt: Option<String>,
    /// Whether the current token was handed out again by a recovery (or by a grace replay of a
    /// reissued token), so that it may be held by two parties (see the module documentation).
    pub current_reissued: bool,
    /// Whether the previous token had been reissued before it rotated: it gets no recovery.
    pub previous_reissued: bool,
}

/// What to do with a presented refresh token of a known family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshDecision {
    /// The current token: rotate to the next generation.
    Rotate,
    /// The immediately previous token within the grace window: hand out the same successor.
    ReplayWithinGrace,
    /// The immediately previous token after the grace window, its successor never used: the
    /// response to the rotation was lost. Hand out the same successor, marked reissued.
    RecoverLostResponse,
    /// A token that must not be used any more: end the session. The fields are the evidence.
    Reuse {
        /// Generation of the presented token.
        presented_generation: i64,
        /// Generation that was current when it was presented.
        current_generation: i64,
        /// Seconds since the current generation was issued.
        seconds_since_rotation: i64,
    },
    /// The family or its session has ended (revoked, logged out, or reuse detected earlier).
    Ended,
    /// The session ran out of time; the reason says which limit.
    Expired(EndReason),
    /// This client's own limits ([`ClientPolicy`]) ended the family; the session goes on.
    FamilyExpired(EndReason),
}

/// Decides what a refresh token of generation `presented_generation` gets, at `now`, under
/// the global `policy` and the family's client's overrides `client`.
pub fn decide(
    family: &RefreshFamily,
    session: &Session,
    presented_generation: i64,
    now: UnixTime,
    policy: &SessionPolicy,
    client: &ClientPolicy,
) -> RefreshDecision {
    if family.ended_at.is_some() {
        return RefreshDecision::Ended;
    }
    match session.state_at(now, policy) {
        SessionState::Active => {}
        SessionState::Ended => return RefreshDecision::Ended,
        SessionState::Expired(reason) => return RefreshDecision::Expired(reason),
    }
    if let Some((ends_at, reason)) = client.family_expiry(family.created_at, family.rotated_at)
        && now >= ends_at
    {
        return RefreshDecision::FamilyExpired(reason);
    }
    let since_rotation = now.saturating_sub(family.rotated_at);
    if presented_generation == family.generation {
        RefreshDecision::Rotate
    } else if presented_generation == family.generation - 1
        && within_grace(since_rotation, client.refresh_grace(policy))
    {
        RefreshDecision::ReplayWithinGrace
    } else if presented_generation == family.generation - 1
        && !family.previous_reissued
        && within_recovery(since_rotation, client.refresh_recovery(policy))
    {
        // The successor has never been presented: had it been, the family would be at least
        // one generation further and this token older than the previous one.
        RefreshDecision::RecoverLostResponse
    } else {
        RefreshDecision::Reuse {
            presented_generation,
            current_generation: family.generation,
            seconds_since_rotation: since_rotation,
        }
    }
}

/// Whether a replay `since_rotation` seconds after the rotation is within a grace window of
/// `grace` seconds. Times have one-second precision, so a window of N > 0 seconds accepts
/// replays up to N whole seconds later; a window of 0 accepts none at all (not even within
/// the same second).
fn within_grace(since_rotation: i64, grace: i64) -> bool {
    grace > 0 && since_rotation <= grace
}

/// Whether a replay `since_rotation` seconds after the rotation is within a recovery window
/// of `recovery` seconds; 0 turns recovery off.
fn within_recovery(since_rotation: i64, recovery: i64) -> bool {
    recovery > 0 && since_rotation <= recovery
}

const SEAL_SALT: &[u8] = b"ostiary/refresh-successor/v1";
const NONCE_LEN: usize = 12;

fn sealing_key(previous: &Credential, family_id: &str) -> aead::LessSafeKey {
    let info = [family_id.as_bytes()];
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SEAL_SALT).extract(previous.expose().as_bytes());
    let okm = prk.expand(&info, &aead::AES_256_GCM);
    // Both can only fail for an output length that AES_256_GCM's own key length rules out.
    #[allow(clippy::expect_used)]
    let okm = okm.expect("HKDF output length fits AES-256");
    aead::LessSafeKey::new(aead::UnboundKey::from(okm))
}

/// Seals `successor` so that only the holder of `previous` can open it.
pub fn seal_successor(previous: &Credential, successor: &Credential, family_id: &str) -> Vec<u8> {
    let key = sealing_key(previous, family_id);
    let nonce_bytes = crate::secret::random_bytes::<NONCE_LEN>();
    let nonce = aead::Nonce::assume_unique_for_key(nonce_bytes);
    let mut in_out = successor.expose().as_bytes().to_vec();
    #[allow(clippy::expect_used)]
    key.seal_in_place_append_tag(nonce, aead::Aad::from(family_id.as_bytes()), &mut in_out)
        .expect("AES-GCM sealing of a 43-byte message cannot fail");
    let mut sealed = nonce_bytes.to_vec();
    sealed.extend_from_slice(&in_out);
    sealed
}

/// Opens a sealed successor with the previous token. `None` if the token is not the one it
/// was sealed under, or the data was altered.
pub fn open_successor(previous: &Credential, sealed: &[u8], family_id: &str) -> Option<Credential> {
    if sealed.len() <= NONCE_LEN {
        return None;
    }
    let (nonce_bytes, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce_bytes).ok()?;
    let key = sealing_key(previous, family_id);
    let mut in_out = ciphertext.to_vec();
    let plain = key
        .open_in_place(nonce, aead::Aad::from(family_id.as_bytes()), &mut in_out)
        .ok()?;
    let text = std::str::from_utf8(plain).ok()?;
    Some(Credential::from_presented(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    const POLICY: SessionPolicy = SessionPolicy {
        idle_timeout: 3600,
        absolute_lifetime: 86400,
        refresh_grace: 10,
        refresh_recovery: Some(1800),
        max_sessions_per_user: 0,
        on_session_limit: crate::session::SessionLimitAction::EndOldest,
    };

    const NO_OVERRIDES: ClientPolicy = ClientPolicy {
        idle_timeout: None,
        absolute_lifetime: None,
        refresh_grace: None,
        refresh_recovery: None,
        max_sessions_per_user: None,
        on_session_limit: None,
        require_dpop: None,
        require_dpop_nonce: None,
    };

    fn fixture(clock: &ManualClock) -> (RefreshFamily, Session) {
        let now = clock.now();
        let session = Session {
            sid: "sid-1".into(),
            user_id: "user-1".into(),
            cookie_hash: None,
            auth_time: now,
            created_at: now,
            last_used_at: now,
            ended_at: None,
            end_reason: None,
            user_agent: None,
            ip: None,
        };
        let family = RefreshFamily {
            id: "fam-1".into(),
            sid: "sid-1".into(),
            client_id: ClientId::parse("app").unwrap(),
            user_id: "user-1".into(),
            scope: Scope::parse("openid offline_access").unwrap(),
            resource: "https://api.example".into(),
            generation: 0,
            rotated_at: now,
            sealed_successor: None,
            created_at: now,
            ended_at: None,
            end_reason: None,
            code_hash: None,
            last_use_ip: None,
            last_use_user_agent: None,
            dpop_jkt: None,
            current_reissued: false,
            previous_reissued: false,
        };
        (family, session)
    }

    /// Applies a rotation the way the store does after a successful compare-and-swap.
    fn rotate(family: &mut RefreshFamily, session: &mut Session, now: UnixTime) {
        family.generation += 1;
        family.rotated_at = now;
        family.previous_reissued = family.current_reissued;
        family.current_reissued = false;
        session.last_used_at = now;
    }

    /// Applies a recovery the way the store does ([`crate::Store::reissue_successor`]).
    fn reissue(family: &mut RefreshFamily) {
        family.current_reissued = true;
    }

    #[test]
    fn the_current_token_rotates() {
        let clock = ManualClock::new(1_000_000);
        let (family, session) = fixture(&clock);
        assert_eq!(
            decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::Rotate
        );
    }

    #[test]
    fn the_previous_token_inside_the_grace_window_is_an_idempotent_replay() {
        let clock = ManualClock::new(1_000_000);
        let (mut family, mut session) = fixture(&clock);
        clock.advance(60);
        rotate(&mut family, &mut session, clock.now());
        clock.advance(POLICY.refresh_grace);
        assert_eq!(
            decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::ReplayWithinGrace
        );
    }

    #[test]
    fn the_previous_token_after_the_grace_window_recovers_a_successor_never_used() {
        let clock = ManualClock::new(1_000_000);
        let (mut family, mut session) = fixture(&clock);
        rotate(&mut family, &mut session, clock.now());
        clock.advance(POLICY.refresh_grace + 1);
        assert_eq!(
            decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::RecoverLostResponse
        );
        // Up to the recovery window, not beyond.
        clock.set(family.rotated_at + POLICY.refresh_recovery());
        assert_eq!(
            decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::RecoverLostResponse
        );
        clock.advance(1);
        assert_eq!(
            decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::Reuse {
                presented_generation: 0,
                current_generation: 1,
                seconds_since_rotation: POLICY.refresh_recovery() + 1
            }
        );
    }

    #[test]
    fn the_previous_token_is_reuse_once_its_successor_was_used() {
        let clock = ManualClock::new(1_000_000);
        let (mut family, mut session) = fixture(&clock);
        rotate(&mut family, &mut session, clock.now());
        clock.advance(30);
        // The owner uses the successor: generation 0 is now two behind.
        rotate(&mut family, &mut session, clock.now());
        clock.advance(30);
        assert!(matches!(
            decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::Reuse {
                presented_generation: 0,
                current_generation: 2,
                ..
            }
        ));
    }

    #[test]
    fn a_recovered_token_never_recovers_again() {
        // The owner's response to a rotation is lost, it recovers, and the response to its next
        // rotation is lost too: the retry looks exactly like a second holder, and is reuse.
        let clock = ManualClock::new(1_000_000);
        let (mut family, mut session) = fixture(&clock);
        rotate(&mut family, &mut session, clock.now());
        clock.advance(60);
        assert_eq!(
            decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::RecoverLostResponse
        );
        reissue(&mut family);
        clock.advance(60);
        assert_eq!(
            decide(&family, &session, 1, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::Rotate
        );
        rotate(&mut family, &mut session, clock.now());
        // Within the grace window the reissued token is still a concurrent replay ...
        assert_eq!(
            decide(&family, &session, 1, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::ReplayWithinGrace
        );
        // ... after it, reuse.
        clock.advance(POLICY.refresh_grace + 1);
        assert!(matches!(
            decide(&family, &session, 1, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::Reuse {
                presented_generation: 1,
                current_generation: 2,
                ..
            }
        ));
    }

    #[test]
    fn a_thief_and_the_owner_holding_one_successor_end_the_session_at_the_second_use() {
        // A thief copied generation 0; the owner rotated to 1 and has not used it yet.
        for thief_first in [true, false] {
            let clock = ManualClock::new(1_000_000);
            let (mut family, mut session) = fixture(&clock);
            rotate(&mut family, &mut session, clock.now());
            clock.advance(600);
            // The thief presents generation 0: it gets the one successor, marked reissued.
            assert_eq!(
                decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES),
                RefreshDecision::RecoverLostResponse
            );
            reissue(&mut family);
            // Both now hold generation 1. Whoever uses it first rotates ...
            clock.advance(if thief_first { 5 } else { 300 });
            assert_eq!(
                decide(&family, &session, 1, clock.now(), &POLICY, &NO_OVERRIDES),
                RefreshDecision::Rotate
            );
            rotate(&mut family, &mut session, clock.now());
            // ... and the other's use of it, beyond the grace window, is reuse.
            clock.advance(POLICY.refresh_grace + 1);
            assert!(
                matches!(
                    decide(&family, &session, 1, clock.now(), &POLICY, &NO_OVERRIDES),
                    RefreshDecision::Reuse { .. }
                ),
                "thief first: {thief_first}"
            );
        }
    }

    #[test]
    fn no_grace_window_means_no_recovery_unless_a_recovery_window_is_set() {
        let strict = ClientPolicy {
            refresh_grace: Some(0),
            ..NO_OVERRIDES
        };
        let clock = ManualClock::new(1_000_000);
        let (mut family, mut session) = fixture(&clock);
        rotate(&mut family, &mut session, clock.now());
        clock.advance(60);
        assert!(matches!(
            decide(&family, &session, 0, clock.now(), &POLICY, &strict),
            RefreshDecision::Reuse { .. }
        ));
        let recovering = ClientPolicy {
            refresh_recovery: Some(120),
            ..strict
        };
        assert_eq!(
            decide(&family, &session, 0, clock.now(), &POLICY, &recovering),
            RefreshDecision::RecoverLostResponse
        );
        // The global default follows the global grace window the same way.
        let global_strict = SessionPolicy {
            refresh_grace: 0,
            refresh_recovery: None,
            ..POLICY
        };
        assert_eq!(global_strict.refresh_recovery(), 0);
        assert!(matches!(
            decide(
                &family,
                &session,
                0,
                clock.now(),
                &global_strict,
                &NO_OVERRIDES
            ),
            RefreshDecision::Reuse { .. }
        ));
        assert_eq!(
            SessionPolicy::default().refresh_recovery(),
            crate::session::DEFAULT_REFRESH_RECOVERY
        );
    }

    #[test]
    fn an_older_generation_is_reuse_even_inside_the_grace_window() {
        let clock = ManualClock::new(1_000_000);
        let (mut family, mut session) = fixture(&clock);
        rotate(&mut family, &mut session, clock.now());
        rotate(&mut family, &mut session, clock.now());
        let decision = decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES);
        assert!(matches!(
            decision,
            RefreshDecision::Reuse {
                presented_generation: 0,
                current_generation: 2,
                ..
            }
        ));
    }

    #[test]
    fn a_generation_from_the_future_is_reuse() {
        let clock = ManualClock::new(1_000_000);
        let (family, session) = fixture(&clock);
        assert!(matches!(
            decide(&family, &session, 5, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::Reuse { .. }
        ));
    }

    #[test]
    fn idle_and_absolute_expiry_stop_refreshes() {
        let clock = ManualClock::new(1_000_000);
        let (mut family, mut session) = fixture(&clock);
        clock.advance(POLICY.idle_timeout);
        assert_eq!(
            decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::Expired(EndReason::IdleTimeout)
        );

        // Used every half hour, the session still ends at its absolute lifetime.
        let clock = ManualClock::new(1_000_000);
        let (f, s) = fixture(&clock);
        (family, session) = (f, s);
        for generation in 0..47 {
            clock.advance(1800);
            assert_eq!(
                decide(
                    &family,
                    &session,
                    generation,
                    clock.now(),
                    &POLICY,
                    &NO_OVERRIDES
                ),
                RefreshDecision::Rotate
            );
            rotate(&mut family, &mut session, clock.now());
        }
        clock.advance(1800);
        assert_eq!(
            decide(&family, &session, 47, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::Expired(EndReason::AbsoluteLifetime)
        );
    }

    #[test]
    fn a_clients_own_limits_end_its_family_and_its_grace_replaces_the_global_one() {
        let client = ClientPolicy {
            idle_timeout: Some(600),
            absolute_lifetime: Some(3000),
            refresh_grace: Some(0),
            ..NO_OVERRIDES
        };
        let clock = ManualClock::new(1_000_000);
        let (mut family, mut session) = fixture(&clock);
        clock.advance(599);
        assert_eq!(
            decide(&family, &session, 0, clock.now(), &POLICY, &client),
            RefreshDecision::Rotate
        );
        rotate(&mut family, &mut session, clock.now());
        // The global grace is 10 s; this client allows none, not even within the same second.
        assert!(matches!(
            decide(&family, &session, 0, clock.now(), &POLICY, &client),
            RefreshDecision::Reuse { .. }
        ));
        clock.advance(1);
        assert!(matches!(
            decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::ReplayWithinGrace
        ));
        assert!(matches!(
            decide(&family, &session, 0, clock.now(), &POLICY, &client),
            RefreshDecision::Reuse { .. }
        ));
        // Not refreshed for the client's idle timeout (the session's is an hour).
        clock.advance(599);
        assert_eq!(
            decide(&family, &session, 1, clock.now(), &POLICY, &client),
            RefreshDecision::FamilyExpired(EndReason::IdleTimeout)
        );
        // Refreshed often, the family still ends at the client's absolute lifetime.
        let clock = ManualClock::new(1_000_000);
        let (mut family, mut session) = fixture(&clock);
        for generation in 0..5 {
            clock.advance(500);
            assert_eq!(
                decide(&family, &session, generation, clock.now(), &POLICY, &client),
                RefreshDecision::Rotate
            );
            rotate(&mut family, &mut session, clock.now());
        }
        clock.advance(500);
        assert_eq!(
            decide(&family, &session, 5, clock.now(), &POLICY, &client),
            RefreshDecision::FamilyExpired(EndReason::AbsoluteLifetime)
        );
        // The session's own limits still apply first.
        session.ended_at = Some(clock.now());
        assert_eq!(
            decide(&family, &session, 5, clock.now(), &POLICY, &client),
            RefreshDecision::Ended
        );
    }

    #[test]
    fn an_ended_session_or_family_refreshes_nothing() {
        let clock = ManualClock::new(1_000_000);
        let (mut family, mut session) = fixture(&clock);
        session.ended_at = Some(clock.now());
        assert_eq!(
            decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::Ended
        );
        session.ended_at = None;
        family.ended_at = Some(clock.now());
        assert_eq!(
            decide(&family, &session, 0, clock.now(), &POLICY, &NO_OVERRIDES),
            RefreshDecision::Ended
        );
    }

    #[test]
    fn only_the_previous_token_opens_the_sealed_successor() {
        let previous = Credential::generate();
        let successor = Credential::generate();
        let sealed = seal_successor(&previous, &successor, "fam-1");
        assert!(
            !sealed
                .windows(successor.expose().len())
                .any(|w| w == successor.expose().as_bytes())
        );
        let opened = open_successor(&previous, &sealed, "fam-1").unwrap();
        assert_eq!(opened.expose(), successor.expose());
        assert!(open_successor(&Credential::generate(), &sealed, "fam-1").is_none());
        assert!(open_successor(&previous, &sealed, "fam-2").is_none());
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(open_successor(&previous, &tampered, "fam-1").is_none());
    }
}
