//! Producers append only through the kit's `AuditLog`, which takes an `Action`: no service builds
//! an `AppendRequest` (with a literal action) by itself, so an action cannot be written by one
//! side only. The audit service's check is the kit's `Action::parse` (its own tests).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_service_source_builds_its_own_append_request() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["services", "cli/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found the workspace's sources");
    let offenders: Vec<_> = files
        .iter()
        .filter(|p| {
            !p.components()
                .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "benches")
        })
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.contains("AppendRequest {")
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "append through coffer_kit::audit::AuditLog: {offenders:?}"
    );
}
