//! The scan service (DESIGN.md §5 "Scan"): a Postgres job queue, workers that read each upload
//! through a presigned GET into a bounded temporary file, content engines, and verdicts sent to
//! metadata. It holds no object-store credentials, and it never logs, stores or sends a file
//! name or a file's bytes: findings name rules and kinds of data only.

mod app;
pub mod config;
mod deps;
pub mod engines;
mod error;
pub mod events;
mod grpc;
mod hooks;
mod metrics;
mod peers;
mod queue;
pub mod sandbox;
pub mod scanner;
mod scans;
mod settings;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhook;
pub mod worker;

pub use app::{PEERS, SECRETS, build, engines};
pub use config::ScanConfig;
pub use grpc::policy;
pub use scans::scan_key;

/// Registers the scan service's metrics in the shared registry (`build` does it; for tests and
/// tools that check every metric name the observability files use).
pub fn register_metrics() {
    metrics::metrics();
}
