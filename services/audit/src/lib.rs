//! The audit service (DESIGN.md §5 "Audit"): an append-only log per org whose events form a hash
//! chain (format in `libs/auditlog`), with Ed25519-signed checkpoints and exports that
//! `coffer audit verify` checks offline. Rows cannot be changed or removed: grants and triggers.

mod app;
mod appender;
pub mod config;
mod error;
mod grpc;
mod retention;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use app::{SECRETS, build};
pub use config::AuditConfig;
pub use grpc::policy;
/// The chain's reads, for the test that checks their plans.
pub use store::sql;
