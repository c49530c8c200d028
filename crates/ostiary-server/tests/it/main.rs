//! Integration tests: the real server on 127.0.0.1 port 0 with a fresh SQLite database per
//! test, driven over HTTP as a client would.

mod harness;

mod account;
mod audit;
mod authorize;
mod backchannel;
mod bad_input;
mod browser;
mod browser_client;
mod caching;
mod client_policy;
mod dpop;
mod dpop_nonce;
mod flow;
mod http_timeouts;
mod keys;
mod metrics;
mod policy;
mod refresh;
mod request_id;
mod retention;
mod revocation_feed;
mod throttle;
mod token_endpoint;
mod trusted_proxies;
mod verifier;
mod verify_dpop;
