//! Compiles the wire contract (`proto/coffer/v1`) with protox (pure Rust, no system protoc) and
//! generates tonic code; compiles the test-only protos (`proto/testing`) apart, into their own
//! module and descriptor set, so that no production server carries or reflects them.

use std::path::{Path, PathBuf};

fn protos(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    Ok(files)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../../proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    let fds = protox::compile(protos(&root.join("coffer/v1"))?, [&root])?;
    std::fs::write(
        out.join("coffer_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;

    let testing_root = root.join("testing");
    let testing = protox::compile(
        protos(&testing_root.join("coffer/testing/v1"))?,
        [&testing_root, &root],
    )?;
    // Reflection gets only the test files: the contract's files are in the main set already.
    let mut own = testing.clone();
    own.file
        .retain(|f| f.package().starts_with("coffer.testing."));
    std::fs::write(
        out.join("testing_descriptor.bin"),
        prost::Message::encode_to_vec(&own),
    )?;
    let testing_out = out.join("testing");
    std::fs::create_dir_all(&testing_out)?;
    // Code for the test package only; the contract's types it uses are `crate::v1`'s.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(&testing_out)
        .extern_path(".coffer.v1", "crate::v1")
        .compile_fds(testing)?;
    Ok(())
}
