//! `coffer-dev drill faults`, as CI runs it: a Postgres crash, each service killed in turn, the
//! store down mid-PUT and mid-scan, clamd killed, audit stopped, all under the load of sixteen
//! clients. The drill fails on any answer that is neither a success nor retryable and on any
//! lost or inconsistent item; this test reads its report and holds it to what it promises.

use std::process::Stdio;

#[test]
fn faults_under_load_leave_only_retryable_answers_and_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer-dev"))
        .args(["drill", "faults", "--dir"])
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
    let faults: Vec<&str> = r["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fault"].as_str().unwrap())
        .collect();
    let mut want = vec!["postgres restart (immediate)".to_owned()];
    for svc in [
        "auth",
        "metadata",
        "storage-signer",
        "audit",
        "scan",
        "gateway",
    ] {
        want.push(format!("{svc} killed (SIGKILL)"));
    }
    want.extend(["store down mid-PUT".into(), "store down mid-scan".into()]);
    // scripts/install-deps installs clamd; without it the drill has nothing to kill.
    if std::path::Path::new("/usr/sbin/clamd").exists() {
        want.push("clamd killed".into());
    }
    want.push("audit stopped (SIGTERM)".into());
    assert_eq!(faults, want);
    assert_eq!(r["faults_injected"], want.len());

    // The goal: no answer but successes and retryable ones, nothing lost or inconsistent.
    assert_eq!(r["non_retryable"], 0, "{:#}", r["non_retryable_examples"]);
    assert_eq!(r["lost_or_inconsistent"], 0, "{:#}", r["problems"]);
    let bound = r["recovery_bound_secs"].as_f64().unwrap();
    for f in r["faults"].as_array().unwrap() {
        // Every fault met the clients' work, and the mesh worked again within the bound.
        assert!(f["during"]["requests"].as_u64().unwrap() > 0, "{f}");
        assert!(f["recovered_after_secs"].as_f64().unwrap() <= bound, "{f}");
    }
    // The faults were felt: retryable answers, and the store cut PUTs and GETs.
    assert!(r["retryable_during_faults"].as_u64().unwrap() > 0);
    assert!(!r["store_failures"].as_object().unwrap().is_empty());
    for action in [
        "file.upload",
        "file.download",
        "file.rename",
        "share.create",
    ] {
        assert!(r["successes"][action].as_u64().unwrap() > 0, "{action}");
    }
    assert!(r["files_checked"].as_u64().unwrap() > 0);
    assert!(r["objects_checked"].as_u64().unwrap() > 0);
    assert!(r["audit_events_checked"].as_u64().unwrap() > 0);
    let checks = r["checks"].to_string();
    for want in [
        "the scan queue drained",
        "the stale-upload sweep removed every pending upload",
        "object and one verdict each",
        "each has its row",
        "quota = the sum of its files",
        "each has its audit event; both chains verify",
        "no scan job running past its lease",
    ] {
        assert!(checks.contains(want), "{want}: {checks}");
    }
}
