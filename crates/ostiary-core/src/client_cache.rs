//! Registered clients, cached for a second: the token, revocation, introspection and browser
//! endpoints authenticate a client on every request, and a client's registration changes
//! rarely (by an operator).
//!
//! - A change made through this process's [`crate::Idp`] applies at once (its entry is
//!   dropped).
//! - A change made by another process (the CLI, another instance) applies as soon as the store
//!   announces it ([`crate::store::Store::listen`]: PostgreSQL's `NOTIFY`), and where it
//!   cannot (SQLite, or while the notification connection is lost) within [`CLIENT_CACHE_TTL`]
//!   seconds at most, as a logout made by another process reaches this one's feed.
//! - A client read from the store while a change was announced is not kept: it may be the
//!   version from before the change ([`ClientCache::read_ticket`]).
//!
//! Only clients that exist are kept, so the cache is bounded by the registrations.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::client::{Client, ClientId};
use crate::clock::UnixTime;

/// How long a client read from the store is used without reading it again, seconds.
pub const CLIENT_CACHE_TTL: i64 = 1;

/// Clients by id, each with the time it was read.
#[derive(Debug, Default)]
pub(crate) struct ClientCache {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<ClientId, (UnixTime, Client)>,
    /// Counts the changes heard of: a read that started before one is not kept.
    changes: u64,
}

/// Taken before reading a client from the store, given back to [`ClientCache::put`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadTicket(u64);

impl ClientCache {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client, if it was read less than [`CLIENT_CACHE_TTL`] ago.
    pub(crate) fn get(&self, id: &ClientId, now: UnixTime) -> Option<Client> {
        self.state()
            .entries
            .get(id)
            .filter(|(read_at, _)| (0..CLIENT_CACHE_TTL).contains(&(now - read_at)))
            .map(|(_, client)| client.clone())
    }

    /// To take before reading a client from the store: the read's result is kept only if no
    /// change was heard of in between.
    pub(crate) fn read_ticket(&self) -> ReadTicket {
        ReadTicket(self.state().changes)
    }

    /// Remembers a client just read from the store, unless a change was heard of since
    /// `ticket` was taken.
    pub(crate) fn put(&self, client: &Client, now: UnixTime, ticket: ReadTicket) {
        let mut state = self.state();
        if state.changes == ticket.0 {
            state
                .entries
                .insert(client.id.clone(), (now, client.clone()));
        }
    }

    /// Forgets a client (it was changed).
    pub(crate) fn forget(&self, id: &str) {
        let mut state = self.state();
        state.changes += 1;
        if let Ok(id) = ClientId::parse(id) {
            state.entries.remove(&id);
        }
    }

    /// Forgets every client (changes may have been missed).
    pub(crate) fn clear(&self) {
        let mut state = self.state();
        state.changes += 1;
        state.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientKind;

    fn client(id: &str) -> Client {
        Client {
            id: ClientId::parse(id).unwrap(),
            kind: ClientKind::Public,
            secret_hash: None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            allowed_resources: Vec::new(),
            extra_scopes: Vec::new(),
            web_origins: Vec::new(),
            backchannel_logout_uri: None,
            policy: Default::default(),
            created_at: 0,
        }
    }

    #[test]
    fn a_client_is_used_for_one_ttl_then_read_again() {
        let cache = ClientCache::default();
        let id = ClientId::parse("app").unwrap();
        assert!(cache.get(&id, 100).is_none());
        cache.put(&client("app"), 100, cache.read_ticket());
        assert_eq!(cache.get(&id, 100).unwrap().id, id);
        assert!(cache.get(&id, 100 + CLIENT_CACHE_TTL).is_none());
        // A clock that went back does not make an entry fresh for longer.
        assert!(cache.get(&id, 99).is_none());
    }

    #[test]
    fn a_forgotten_client_is_read_again() {
        let cache = ClientCache::default();
        let id = ClientId::parse("app").unwrap();
        cache.put(&client("app"), 100, cache.read_ticket());
        cache.put(&client("web"), 100, cache.read_ticket());
        cache.forget("app");
        assert!(cache.get(&id, 100).is_none());
        let web = ClientId::parse("web").unwrap();
        assert!(
            cache.get(&web, 100).is_some(),
            "only the changed client is forgotten"
        );
        cache.clear();
        assert!(cache.get(&web, 100).is_none());
    }

    #[test]
    fn a_read_that_overlapped_a_change_is_not_kept() {
        let cache = ClientCache::default();
        let id = ClientId::parse("app").unwrap();
        // The read starts, the change is announced, then the read's (old) result arrives.
        let ticket = cache.read_ticket();
        cache.forget("app");
        cache.put(&client("app"), 100, ticket);
        assert!(cache.get(&id, 100).is_none());
        // A read started after the change is kept.
        cache.put(&client("app"), 100, cache.read_ticket());
        assert!(cache.get(&id, 100).is_some());
    }
}
