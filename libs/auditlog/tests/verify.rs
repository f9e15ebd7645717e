//! Exports built with the real signer verify; every random tampering is caught.

use coffer_auditlog::{
    Event, EventLine, Line, Signer, VerifyError, event_hash, genesis, hex, verify_export,
};
use rand::SeedableRng as _;
use uuid::Uuid;

fn signer() -> Signer {
    Signer::from_seed("audit-1", &[7u8; 32]).unwrap()
}

/// An export of `n` events with a checkpoint every `every` events.
fn export(org: Uuid, n: u64, every: u64, signer: &Signer) -> String {
    let mut out = String::new();
    let mut prev = genesis(org);
    let mut heads = Vec::new();
    for seq in 1..=n {
        let event = Event {
            org_id: org,
            seq,
            at_us: 1_795_000_000_000_000 + seq as i64 * 1000,
            actor: format!("user:{}", Uuid::from_u128(seq as u128)),
            action: ["file.upload", "file.download", "share.create"][seq as usize % 3].into(),
            target: format!("file:{}", Uuid::from_u128(1000 + seq as u128)),
            outcome: if seq % 5 == 0 { "failure" } else { "success" }.into(),
            request_id: format!("req-{seq}"),
            trace_id: format!("{seq:032x}"),
        };
        let hash = event_hash(&prev, &event);
        let line = Line::Event(EventLine {
            event,
            prev_hash: hex(&prev),
            hash: hex(&hash),
        });
        out += &serde_json::to_string(&line).unwrap();
        out.push('\n');
        heads.push(hash);
        prev = hash;
    }
    let mut last = 0;
    let mut count = 0;
    for seq in (every..=n).step_by(every.max(1) as usize) {
        let c = signer.checkpoint(
            org,
            seq,
            &heads[seq as usize - 1],
            1_795_000_000_000_000 + seq as i64,
            last,
        );
        out += &serde_json::to_string(&Line::Checkpoint(c)).unwrap();
        out.push('\n');
        last = seq;
        count += 1;
    }
    let t = signer.trailer(org, n, &prev, count, last, 1_795_000_100_000_000);
    out += &serde_json::to_string(&Line::Export(t)).unwrap();
    out.push('\n');
    out
}

#[test]
fn untouched_exports_verify() {
    let s = signer();
    let org = Uuid::new_v4();
    for (n, every) in [(0, 10), (1, 1), (30, 10), (31, 10), (100, 7)] {
        let e = export(org, n, every, &s);
        let summary = verify_export(&e, &s.public_key()).unwrap_or_else(|err| panic!("{n}: {err}"));
        assert_eq!(summary.events, n);
        assert_eq!(summary.org_id, org);
    }
}

#[test]
fn another_key_or_another_org_does_not_verify() {
    let s = signer();
    let org = Uuid::new_v4();
    let e = export(org, 20, 5, &s);
    let other = Signer::from_seed("audit-1", &[8u8; 32]).unwrap();
    assert!(matches!(
        verify_export(&e, &other.public_key()),
        Err(VerifyError::CheckpointSignature(_))
    ));
    // A line of another org's (valid) export spliced in.
    let other_org = export(Uuid::new_v4(), 20, 5, &s);
    let mut lines: Vec<&str> = e.lines().collect();
    lines[3] = other_org.lines().nth(3).unwrap();
    let spliced = lines.join("\n") + "\n";
    assert!(verify_export(&spliced, &s.public_key()).is_err());
}

#[test]
fn a_thousand_random_tamperings_are_all_detected() {
    let s = signer();
    let org = Uuid::new_v4();
    let original = export(org, 40, 8, &s);
    assert!(verify_export(&original, &s.public_key()).is_ok());
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let mut applied = std::collections::BTreeMap::<&str, usize>::new();
    let mut total = 0;
    while total < 1000 {
        let Some((tampered, kind)) = coffer_auditlog::tamper::tamper(&original, &mut rng) else {
            continue;
        };
        total += 1;
        *applied.entry(kind).or_default() += 1;
        assert!(
            verify_export(&tampered, &s.public_key()).is_err(),
            "not detected: {kind}"
        );
    }
    // Every kind was exercised.
    assert_eq!(
        applied.len(),
        coffer_auditlog::tamper::KINDS.len(),
        "{applied:?}"
    );
    assert!(applied.values().all(|n| *n >= 30), "{applied:?}");
}
