//! The workspace's conventions, checked on the services' sources:
//!
//! - producers append to the audit log only through the kit's `AuditLog`, which takes an
//!   `Action`: no service builds an `AppendRequest` (with a literal action) by itself, so an action
//!   cannot be written by one side only (the audit service's check is `Action::parse`);
//! - every SQL statement of the services' code (tests may build fixtures) is a plain string
//!   literal (or a constant holding one) that can be pasted into psql as it stands, with its
//!   columns written out: no `format!`, no `concat!`, no column macros;
//! - the domain modules of metadata, auth and scan speak the service's own types: gRPC stays at
//!   the boundary (`grpc.rs`) and with the peers (`peers.rs`);
//! - a store function that works on a tenant's rows takes the tenant in its transaction's type
//!   (`coffer_db::TenantTx`) and nowhere else: no org argument beside it, no pool and org to begin
//!   one itself;
//! - the user's client (`coffer`) links no service machinery: no database driver, scanner, object
//!   store, gRPC or workspace-hack among the dependencies of it and the workspace crates it uses;
//! - a service dials its peers only through `MeshClient::peers` (the ones it declares in `PEERS`,
//!   which the network policies are checked against), never `MeshClient::channel` directly;
//! - the fuzz workspace's lock file is current (its build runs `--locked`, after these tests, and
//!   a crate that gains a dependency changes it).

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

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn no_service_source_builds_its_own_append_request() {
    let mut files = Vec::new();
    for dir in ["services", "cli/src", "dev/src"] {
        rust_files(&root().join(dir), &mut files);
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

#[test]
fn statements_are_plain_literals() {
    let mut files = Vec::new();
    for service in std::fs::read_dir(root().join("services"))
        .unwrap()
        .flatten()
    {
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
        "format!(\"SELECT",
        "format!(\"INSERT",
        "format!(\"UPDATE",
        "format!(\"DELETE",
        "format!(\"WITH",
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

#[test]
fn no_domain_module_knows_tonic() {
    let domain = [
        (
            "metadata",
            &[
                "deps", "files", "folders", "shares", "sweep", "verdicts", "store",
            ][..],
        ),
        (
            "auth",
            &[
                "accounts", "api_keys", "deps", "members", "orgs", "sessions", "store",
            ],
        ),
        ("scan", &["deps", "hooks", "queue", "scans", "store"]),
    ];
    for (service, modules) in domain {
        for module in modules {
            let path = root().join(format!("services/{service}/src/{module}.rs"));
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(!text.contains("tonic"), "{} uses tonic", path.display());
        }
    }
}

#[test]
fn store_functions_take_the_org_in_the_transaction() {
    let mut checked = 0;
    let mut offenders = Vec::new();
    for service in std::fs::read_dir(root().join("services"))
        .unwrap()
        .flatten()
    {
        let Ok(text) = std::fs::read_to_string(service.path().join("src/store.rs")) else {
            continue;
        };
        for (i, _) in text.match_indices("pub async fn ") {
            let end = text[i..].find(") ->").map_or(text.len(), |e| i + e);
            let signature: String = text[i..end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let org_argument = ["org: Uuid", "org_id: Uuid", "id: Uuid"].iter().any(|a| {
                signature.contains(&format!("({a}")) || signature.contains(&format!(", {a}"))
            });
            let tenant = signature.contains("TenantTx");
            let pool = signature.contains("PgPool");
            checked += usize::from(tenant);
            // `id: Uuid` beside a pool is an org only when the function begins a tenant
            // transaction with it; the row ids beside a TenantTx are fine.
            let org_named = signature.contains("org: Uuid") || signature.contains("org_id: Uuid");
            if (tenant && org_named)
                || (pool
                    && org_argument
                    && text[end..]
                        .split("\n}\n")
                        .next()
                        .unwrap_or("")
                        .contains("tenant_tx("))
            {
                offenders.push(signature);
            }
        }
    }
    assert!(
        checked > 40,
        "found the services' tenant store functions ({checked})"
    );
    assert!(
        offenders.is_empty(),
        "take the org from the TenantTx: {offenders:#?}"
    );
}

#[test]
fn the_users_client_links_no_service_machinery() {
    let manifest = |dir: &Path| -> toml::Table {
        toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap()
    };
    let workspace = manifest(&root());
    let paths: std::collections::HashMap<String, PathBuf> = workspace["workspace"]["dependencies"]
        .as_table()
        .unwrap()
        .iter()
        .filter_map(|(name, spec)| {
            let path = spec.as_table()?.get("path")?.as_str()?;
            Some((name.clone(), root().join(path)))
        })
        .collect();
    let forbidden = [
        "sqlx",
        "yara-x",
        "s3s",
        "s3s-fs",
        "aws-sdk-s3",
        "tonic",
        "coffer-workspace-hack",
    ];
    let mut seen = vec!["coffer-cli".to_owned()];
    let mut todo = vec![root().join("cli")];
    while let Some(dir) = todo.pop() {
        let krate = manifest(&dir);
        let Some(deps) = krate.get("dependencies").and_then(|d| d.as_table()) else {
            continue;
        };
        for name in deps.keys() {
            assert!(
                !forbidden.contains(&name.as_str()),
                "{} depends on {name}, which the user's client must not link",
                dir.display()
            );
            if let Some(path) = paths.get(name)
                && !seen.contains(name)
            {
                seen.push(name.clone());
                todo.push(path.clone());
            }
        }
    }
    assert!(
        seen.len() >= 2,
        "followed the client's workspace dependencies: {seen:?}"
    );
}

#[test]
fn services_dial_only_their_declared_peers() {
    let mut files = Vec::new();
    rust_files(&root().join("services"), &mut files);
    let mut found = Vec::new();
    for file in &files {
        // Tests and the testing modules play other services on purpose.
        let path = file.to_string_lossy();
        if path.contains("/tests/") || path.ends_with("/testing.rs") || path.contains("/benches/") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        // `.channel(name, addr)`; a notification's `.channel()` is something else.
        if text
            .match_indices(".channel(")
            .any(|(at, m)| !text[at + m.len()..].starts_with(')'))
        {
            found.push(path.into_owned());
        }
    }
    assert!(files.len() > 50, "found the services' sources");
    assert!(
        found.is_empty(),
        "these dial a peer without MeshClient::peers (so without PEERS): {found:?}"
    );
}

#[test]
fn the_fuzz_workspace_lock_file_is_current() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .arg("--manifest-path")
        .arg(root().join("fuzz/Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fuzz/Cargo.lock is out of date (run `cargo metadata --manifest-path fuzz/Cargo.toml` and \
         commit it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
