//! Integration tests of `ostiary-verify`: tokens are built by hand from keys generated with
//! aws-lc-rs, so that broken ones can be crafted; remote JWKS tests talk to a small counting
//! axum server on 127.0.0.1; time only moves through the injected clock.

mod harness;

#[cfg(feature = "axum")]
mod extractor;
mod remote_jwks;
mod revocation_feed;
mod validation;
