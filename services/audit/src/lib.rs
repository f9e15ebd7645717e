//! The audit service (DESIGN.md §5 "Audit"): an append-only log per org whose events form a hash
//! chain (format in `libs/auditlog`), with Ed25519-signed checkpoints and exports that
//! `coffer audit verify` checks offline. Rows cannot be changed or removed: grants and triggers.

mod app;
mod appender;
pub mod config;
mod error;
mod grpc;
mod metrics;
mod retention;
mod store;

/// The statements of the hot paths, for the floor of `coffer-dev bench`, which must run the very
/// SQL this service runs rather than copies of it. Not an API: nothing else calls these.
#[doc(hidden)]
pub mod floor {
    pub use crate::appender::Appender;
    pub use crate::store::NewEvent;
}
#[cfg(feature = "testing")]
pub mod testing;

pub use app::{PEERS, SECRETS, build};

/// Registers the audit service's metrics in the shared registry (`build` does it; for tests and
/// tools that check every metric name the observability files use).
pub fn register_metrics() {
    metrics::metrics();
}
pub use config::AuditConfig;
pub use grpc::policy;
/// The chain's reads, for the test that checks their plans.
pub use store::sql;
