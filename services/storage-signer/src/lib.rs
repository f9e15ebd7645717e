//! The storage-signer (DESIGN.md §2–§5): the only holder of object-store credentials. It presigns
//! PUTs and GETs, heads and deletes objects, always under the caller's org (the first segment of
//! the key must be the token's org) and never for anyone but metadata and scan. Bytes never pass
//! through it.

mod app;
pub mod config;
mod error;
mod grpc;
mod keys;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use app::{SECRETS, build};
pub use config::SignerConfig;
pub use grpc::policy;
