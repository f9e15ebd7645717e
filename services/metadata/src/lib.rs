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
mod metrics;
mod peers;
mod share_secrets;
mod shares;
mod store;
mod sweep;
#[cfg(feature = "testing")]
pub mod testing;
mod validate;
mod verdicts;
pub(crate) mod wire;

/// The statements of the hot paths, for the floor of `coffer-dev bench`, which must run the very
/// SQL this service runs rather than copies of it. Not an API: nothing else calls these.
#[doc(hidden)]
pub mod floor {
    pub use crate::error::MetadataError;
    pub use crate::store::{
        NewFile, Trashed, delete_file, ensure_org, file, file_alone, insert_file, reserve_quota,
        set_object, transition,
    };
}

pub use app::{PEERS, SECRETS, build};
pub use config::MetadataConfig;
pub use grpc::policy;
/// The listing reads, for the test that checks their plans.
pub use store::sql;
