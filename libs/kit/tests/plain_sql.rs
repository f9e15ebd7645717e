//! One way to write SQL in the services: every statement of their code (tests may build fixtures) is a plain string literal (or a
//! constant holding one) that can be pasted into psql as it stands, with its columns written out:
//! no `format!`, no `concat!`, no column macros.

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
fn statements_are_plain_literals() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../services");
    let mut files = Vec::new();
    for service in std::fs::read_dir(&root).unwrap().flatten() {
        let src = service.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(files.len() > 50, "found the services' sources");
    let built = [
        "query(&format!",
        "query_as(&format!",
        "query_scalar(&format!",
        "concat!(",
        "_columns!(",
    ];
    let mut offenders = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path)
            .unwrap()
            .replace(char::is_whitespace, "");
        for pattern in built {
            if text.contains(pattern) {
                offenders.push(format!("{}: {pattern}", path.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "statements built at run time: {offenders:?}"
    );
}
