//! Registered clients, cached for a second: the token, revocation, introspection and browser
//! endpoints authenticate a client on every request, and a client's registration changes
//! rarely (by an operator). A change made through this process's [`crate::Idp`] applies at
//! once (its entry is dropped); one made elsewhere (the CLI, another instance) within
//! [`CLIENT_CACHE_TTL`] seconds, as a logout made by another process reaches this one's feed.
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
    entries: Mutex<HashMap<ClientId, (UnixTime, Client)>>,
}

impl ClientCache {
    /// The client, if it was read less than [`CLIENT_CACHE_TTL`] ago.
    pub(crate) fn get(&self, id: &ClientId, now: UnixTime) -> Option<Client> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(id)
            .filter(|(read_at, _)| (0..CLIENT_CACHE_TTL).contains(&(now - read_at)))
            .map(|(_, client)| client.clone())
    }

    /// Remembers a client just read from the store.
    pub(crate) fn put(&self, client: &Client, now: UnixTime) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(client.id.clone(), (now, client.clone()));
    }

    /// Forgets a client (it was changed).
    pub(crate) fn forget(&self, id: &ClientId) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(id);
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
        cache.put(&client("app"), 100);
        assert_eq!(cache.get(&id, 100).unwrap().id, id);
        assert!(cache.get(&id, 100 + CLIENT_CACHE_TTL).is_none());
        // A clock that went back does not make an entry fresh for longer.
        assert!(cache.get(&id, 99).is_none());
    }

    #[test]
    fn a_forgotten_client_is_read_again() {
        let cache = ClientCache::default();
        let id = ClientId::parse("app").unwrap();
        cache.put(&client("app"), 100);
        cache.forget(&id);
        assert!(cache.get(&id, 100).is_none());
    }
}
