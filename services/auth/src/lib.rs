//! The auth service (DESIGN.md §3, API.md "Authentication"): orgs, users, memberships, passwords,
//! sessions and API keys, and the only minter of user tokens.
//!
//! It stores no plaintext credential: passwords as Argon2id hashes, session ids and API key
//! secrets as SHA-256 hashes. It never logs an email, a password, a session id or a key.

mod accounts;
mod api_keys;
pub mod config;
mod credentials;
mod deps;
mod error;
mod grpc;
mod members;
mod metrics;
mod orgs;
mod passwords;
mod purge;
mod sessions;
mod store;
mod throttle;
mod totp;
mod wire;

/// The statements of the hot paths, for the floor of `coffer-dev bench`, which must run the very
/// SQL this service runs rather than copies of it. Not an API: nothing else calls these.
#[doc(hidden)]
pub mod floor {
    pub use crate::store::resolve_session;
}

mod app;
#[cfg(feature = "testing")]
pub mod testing;

/// Registers the auth service's metrics in the shared registry (`build` does it; for tests and
/// tools that check every metric name the observability files use).
pub fn register_metrics() {
    metrics::metrics();
}

pub use app::{PEERS, SECRETS, build};
pub use config::AuthConfig;
pub use grpc::policy;
pub use passwords::Hasher;
