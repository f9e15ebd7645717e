//! `coffer-dev drill restore`, the short form CI runs: the mesh on a database that archives its
//! WAL, a base backup, work before and after a time T (a purge after T among it), a restore of a
//! new cluster to T, the services on it, and the checks through the gateway. The drill fails on
//! any difference from T; this test reads its report and holds it to the numbers of its work.

use std::process::Stdio;

#[test]
fn the_vault_restores_to_a_point_in_time_with_its_files_bytes_and_audit_chains() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer-dev"))
        .args(["drill", "restore", "--dir"])
        .arg(dir.path().join("drill"))
        .arg("--report")
        .arg(&report)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the drill failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    // Two orgs, three files each at T (one of them purged after T), every one downloaded with
    // the bytes it had at T.
    assert_eq!(r["orgs"], 2);
    assert_eq!(r["files_at_target"], 6);
    assert_eq!(r["files_downloaded_with_their_bytes"], 6);
    // Per org at T: signup, three uploads and their scans, a rename, a folder (at least).
    assert!(
        r["audit_events_at_target"].as_u64().unwrap() >= 2 * 8,
        "{r}"
    );
    let checks: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(checks.len(), 2 * 5, "{checks:#?}");
    for want in [
        "the files and names of T",
        "downloads with its bytes, passport.png (purged after T) too",
        "the audit chain verifies",
        "no audit event after T",
        "its purge is not",
    ] {
        assert_eq!(
            checks.iter().filter(|c| c.contains(want)).count(),
            2,
            "{want}: {checks:#?}"
        );
    }
    assert!(r["restore_secs"].as_f64().unwrap() > 0.0);
}
