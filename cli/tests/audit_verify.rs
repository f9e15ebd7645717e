//! `coffer audit verify` on an export written by the real signer: sound → exit 0; one altered
//! byte → exit 1 with the reason; a wrong key → exit 1.

use std::process::Command;

use coffer_auditlog::{Event, EventLine, Line, Signer, event_hash, genesis, hex};
use uuid::Uuid;

fn export(signer: &Signer) -> String {
    let org = Uuid::new_v4();
    let mut prev = genesis(org);
    let mut out = String::new();
    for seq in 1..=5u64 {
        let event = Event {
            org_id: org,
            seq,
            at_us: seq as i64,
            actor: "user:1".into(),
            action: "file.upload".into(),
            target: format!("file:{seq}"),
            outcome: "success".into(),
            request_id: format!("r{seq}"),
            trace_id: String::new(),
        };
        let hash = event_hash(&prev, &event);
        out += &serde_json::to_string(&Line::Event(EventLine {
            event,
            prev_hash: hex(&prev),
            hash: hex(&hash),
        }))
        .unwrap();
        out.push('\n');
        prev = hash;
    }
    out +=
        &serde_json::to_string(&Line::Checkpoint(signer.checkpoint(org, 5, &prev, 9, 0))).unwrap();
    out.push('\n');
    out += &serde_json::to_string(&Line::Export(signer.trailer(org, 5, &prev, 1, 5, 10))).unwrap();
    out.push('\n');
    out
}

fn run(export: &std::path::Path, key: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["audit", "verify"])
        .arg(export)
        .arg("--public-key")
        .arg(key)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn verify_accepts_sound_exports_and_refuses_altered_ones() {
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::from_seed("audit-1", &[3u8; 32]).unwrap();
    // The public key as the CLI derives it from the signing key file.
    let seed = dir.path().join("audit-signing-key");
    std::fs::write(&seed, "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["audit", "public-key", "--signing-key"])
        .arg(&seed)
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.trim(), signer.public_key_text());
    let key = dir.path().join("audit.pub");
    std::fs::write(&key, printed).unwrap();
    let sound = export(&signer);
    let file = dir.path().join("export.ndjson");
    std::fs::write(&file, &sound).unwrap();
    let (ok, out) = run(&file, &key);
    assert!(ok, "{out}");
    assert!(out.starts_with("ok: "), "{out}");
    assert!(out.contains("5 events, 1 checkpoints"), "{out}");

    let altered = sound.replacen("file:3", "file:4", 1);
    std::fs::write(&file, altered).unwrap();
    let (ok, out) = run(&file, &key);
    assert!(!ok);
    assert!(out.contains("FAILED") && out.contains("line 3"), "{out}");

    std::fs::write(&file, &sound).unwrap();
    let other = dir.path().join("other.pub");
    std::fs::write(
        &other,
        Signer::from_seed("audit-1", &[4u8; 32])
            .unwrap()
            .public_key_text(),
    )
    .unwrap();
    let (ok, out) = run(&file, &other);
    assert!(!ok, "{out}");
}
