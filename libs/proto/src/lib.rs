//! Generated gRPC code for `proto/coffer/v1`. Nothing here is written by hand except this file.

#![allow(clippy::all, missing_docs, rust_2018_idioms)]

/// Package `coffer.v1`.
pub mod v1 {
    tonic::include_proto!("coffer.v1");
}

/// The encoded descriptor set of every Coffer proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/coffer_descriptor.bin"));

/// Test-only services (`proto/testing`), outside the wire contract.
#[cfg(feature = "testing")]
pub mod testing {
    /// Package `coffer.testing.v1`.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/testing/coffer.testing.v1.rs"));
    }

    /// The encoded descriptor set of the test-only protos (without the contract's files).
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/testing_descriptor.bin"));
}
