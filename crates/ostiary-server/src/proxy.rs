//! Trusted reverse proxies, and the client address every handler sees.
//!
//! The client's IP address is recorded with sessions, counted by the login throttle and
//! written to the audit log. Behind a reverse proxy the TCP peer is the proxy, so the client's
//! address has to come from the proxy's `X-Forwarded-For` header; but anyone can send that
//! header, so it is believed only from a **trusted proxy** (setting `trusted_proxies`, IP
//! addresses or CIDR ranges, default none):
//!
//! - When the TCP peer is not a trusted proxy, `X-Forwarded-For` is ignored completely: the
//!   client is the peer.
//! - When it is, the header's addresses are read from the right (each proxy appends the
//!   address it received the request from), skipping those that are themselves trusted
//!   proxies: the first address that is not is the client. Everything left of it was written
//!   by the client or by proxies we do not know, and is not believed.
//! - If every address is a trusted proxy, the left-most one is the client. An entry that is
//!   not an IP address (or `IP:port`) stops the walk: the client is then the last address
//!   that could be vouched for (the peer, if the malformed entry is the right-most one). A
//!   malformed header never fails a request.
//!
//! `X-Forwarded-Proto` is not read at all, from any peer: every URL the IdP writes comes from
//! the configured issuer, and cookies are `Secure` by configuration, so the scheme a proxy saw
//! would change nothing. The standard `Forwarded` header (RFC 7239) is not supported.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, seen on dual-stack sockets) are taken as
//! the IPv4 address they carry, both for matching and for recording.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderMap;
use ipnet::IpNet;

/// At most this many `X-Forwarded-For` entries are looked at, from the right.
const MAX_HOPS: usize = 32;

/// The proxies whose `X-Forwarded-For` is believed. Empty (the default): none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// A `trusted_proxies` entry that is neither an IP address nor a CIDR range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trusted proxy {0:?} is not an IP address or CIDR range (such as 10.0.0.0/8)")]
pub struct InvalidProxy(pub String);

impl TrustedProxies {
    /// No trusted proxy: forwarding headers are never believed.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses IP addresses (`10.0.0.7`, `::1`) and CIDR ranges (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidProxy> {
        let mut nets = Vec::new();
        for entry in entries {
            let entry = entry.trim();
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => entry
                    .parse::<IpAddr>()
                    .map(|ip| IpNet::from(ip.to_canonical()))
                    .map_err(|_| InvalidProxy(entry.to_owned()))?,
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from the TCP peer `peer` with these headers, by the
    /// rule in the module documentation.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        // Header lines in order, each a comma-separated list; a line that is not text is one
        // malformed entry.
        let mut hops: Vec<Option<IpAddr>> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            match value.to_str() {
                Ok(text) => hops.extend(text.split(',').map(parse_hop)),
                Err(_) => hops.push(None),
            }
        }
        let mut client = peer;
        for hop in hops.iter().rev().take(MAX_HOPS) {
            match hop {
                Some(ip) if self.contains(*ip) => client = *ip,
                Some(ip) => return *ip,
                None => return client,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an IP address, optionally with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`) or in brackets.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse::<IpAddr>().ok())
        })?;
    Some(ip.to_canonical())
}

/// The client's address, as decided by [`resolve_client`]; read it with
/// [`crate::endpoints::client_ip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Middleware putting the [`ClientAddr`] of each request in its extensions (nothing when the
/// server was not started with connection info, as in `oneshot` tests).
pub async fn resolve_client(
    State(proxies): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = proxies.client_ip(peer, request.headers());
        request.extensions_mut().insert(ClientAddr(client));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse(["10.0.0.0/8", "192.0.2.7", "fd00::/8"]).unwrap()
    }

    #[test]
    fn entries_are_addresses_or_ranges() {
        let parsed = proxies();
        assert!(parsed.contains(ip("10.1.2.3")));
        assert!(parsed.contains(ip("192.0.2.7")));
        assert!(!parsed.contains(ip("192.0.2.8")));
        assert!(parsed.contains(ip("fd12::1")));
        assert!(parsed.contains(ip("::ffff:10.9.9.9")), "IPv4-mapped");
        assert_eq!(
            TrustedProxies::parse(["10.0.0.0/33"]),
            Err(InvalidProxy("10.0.0.0/33".into()))
        );
        assert!(TrustedProxies::parse(["proxy.example"]).is_err());
        assert!(TrustedProxies::none().is_empty());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let headers = forwarded(&[b"203.0.113.9"]);
        assert_eq!(
            proxies().client_ip(ip("198.51.100.1"), &headers),
            ip("198.51.100.1")
        );
        assert_eq!(
            TrustedProxies::none().client_ip(ip("10.0.0.1"), &headers),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn from_a_trusted_peer_the_right_most_untrusted_address_is_the_client() {
        let p = proxies();
        let peer = ip("10.0.0.1");
        // The client claims to be 1.1.1.1; the edge proxy saw 203.0.113.9; an inner proxy
        // (10.0.0.2, trusted) forwarded to us.
        let headers = forwarded(&[b"1.1.1.1, 203.0.113.9", b"10.0.0.2"]);
        assert_eq!(p.client_ip(peer, &headers), ip("203.0.113.9"));
        // Ports and brackets are allowed; IPv4-mapped addresses are unwrapped.
        let headers = forwarded(&[b"[2001:db8::5]:4711"]);
        assert_eq!(p.client_ip(peer, &headers), ip("2001:db8::5"));
        let headers = forwarded(&[b"203.0.113.9:80, ::ffff:10.0.0.3"]);
        assert_eq!(p.client_ip(peer, &headers), ip("203.0.113.9"));
        // Only trusted hops: the left-most.
        let headers = forwarded(&[b"10.0.0.9, 10.0.0.8"]);
        assert_eq!(p.client_ip(peer, &headers), ip("10.0.0.9"));
        // No header: the proxy itself.
        assert_eq!(p.client_ip(peer, &HeaderMap::new()), peer);
    }

    #[test]
    fn malformed_entries_stop_the_walk_and_never_fail() {
        let p = proxies();
        let peer = ip("10.0.0.1");
        for garbage in [
            &b"not-an-ip"[..],
            b"",
            b",,,",
            b"unknown",
            b"1.2.3.4.5",
            b"\xff\xfe",
            b"203.0.113.9, <script>",
        ] {
            assert_eq!(
                p.client_ip(peer, &forwarded(&[garbage])),
                peer,
                "{garbage:?}"
            );
        }
        // Garbage left of the client does not matter.
        let headers = forwarded(&[b"garbage, 203.0.113.9"]);
        assert_eq!(p.client_ip(peer, &headers), ip("203.0.113.9"));
        // Garbage behind a trusted hop: that hop is the last address we can vouch for.
        let headers = forwarded(&[b"garbage, 10.0.0.5"]);
        assert_eq!(p.client_ip(peer, &headers), ip("10.0.0.5"));
    }

    #[test]
    fn only_the_last_hops_are_read() {
        let p = proxies();
        let mut value = "203.0.113.9".to_owned();
        for _ in 0..100 {
            value.push_str(", 10.0.0.5");
        }
        let headers = forwarded(&[value.as_bytes()]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &headers), ip("10.0.0.5"));
    }
}
