//! The metadata service (DESIGN.md §3–§5): folders, files, shares and quotas, and the only place
//! file and folder names live. Bytes never pass through it: it asks storage-signer for presigned
//! requests under the caller's org. Every query runs under row-level security for the token's org.

mod app;
pub mod config;
mod deps;
mod error;
mod files;
mod folders;
mod grpc;
mod peers;
mod share_secrets;
mod shares;
mod store;
mod sweep;
#[cfg(feature = "testing")]
pub mod testing;
mod validate;
mod verdicts;
mod wire;

pub use app::{SECRETS, build};
pub use config::MetadataConfig;
pub use grpc::policy;
/// The listing reads, for the test that checks their plans.
pub use store::sql;
