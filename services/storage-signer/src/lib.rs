//! The storage-signer (DESIGN.md §2–§5): the only holder of object-store credentials. It presigns
//! PUTs and GETs, heads and deletes objects, always under the caller's org (the first segment of
//! the key must be the token's org) and never for anyone but metadata and scan. Bytes never pass
//! through it.

mod app;
pub mod config;
mod error;
mod grpc;
#[doc(hidden)]
pub mod keys;
mod metrics;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use app::{PEERS, SECRETS, build};
pub use config::SignerConfig;
pub use grpc::policy;

/// Registers storage-signer's metrics in the shared registry (`build` does it; for tests and
/// tools that check every metric name the observability files use).
pub fn register_metrics() {
    metrics::register();
}
