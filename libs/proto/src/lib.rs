//! Generated gRPC code for `proto/coffer/v1`. Nothing here is written by hand except this file.

#![allow(clippy::all, missing_docs, rust_2018_idioms)]

/// Package `coffer.v1`.
pub mod v1 {
    tonic::include_proto!("coffer.v1");
}

/// The encoded descriptor set of every Coffer proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/coffer_descriptor.bin"));
