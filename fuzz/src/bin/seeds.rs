//! Writes the seeds that need the fixed keys of `coffer_fuzz` (a token that verifies, a signed
//! webhook delivery, a signed audit export) into `fuzz/seeds/<target>/`. The other seeds are
//! plain files, written by `scripts/fuzz seeds`.
use std::path::Path;

use coffer_auditlog::{Event, EventLine, Line, event_hash, genesis, hex};
use coffer_token::{Audience, Credential, MasterKeyRing, Minter, Role, Scopes, Subject};
use uuid::Uuid;

fn write(dir: &Path, target: &str, name: &str, data: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("the seed dir");
    std::fs::write(dir.join(name), data).expect("the seed is written");
}

fn main() {
    let out = std::env::args().nth(1).expect("usage: seeds <dir>");
    let out = Path::new(&out);

    let ring_dir = tempfile::tempdir().expect("a temp dir");
    let ring_path = ring_dir.path().join("ring.toml");
    std::fs::write(&ring_path, coffer_fuzz::MASTER_RING).expect("ring");
    let ring = MasterKeyRing::from_file(&ring_path).expect("the fixed ring");
    let subject = Subject {
        user_id: Uuid::from_u128(7),
        org_id: coffer_fuzz::ORG,
        role: Role::Admin,
        scopes: Scopes::all(),
        credential: Credential::Session,
        request_id: "req-fuzz".into(),
    };
    let token = Minter::new(&ring)
        .mint(&subject, &[Audience::Metadata], coffer_fuzz::NOW - 10, 60)
        .expect("a token");
    write(out, "token", "valid", token.as_bytes());

    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = br#"{"type":"scan.completed","data":{"scan_id":"s1","verdict":"clean"}}"#;
    let sig = coffer_scan::webhook::sign(secret, "msg_1", coffer_fuzz::NOW, body).expect("sig");
    let mut delivery = format!("msg_1\n{}\n{sig}\n", coffer_fuzz::NOW).into_bytes();
    delivery.extend_from_slice(body);
    write(out, "webhook", "valid", &delivery);

    let signer = coffer_fuzz::audit_signer();
    let org = coffer_fuzz::ORG;
    let mut export = String::new();
    let mut prev = genesis(org);
    let mut checkpoint = None;
    for seq in 1..=3u64 {
        let event = Event {
            org_id: org,
            seq,
            at_us: 1_795_000_000_000_000 + seq as i64,
            actor: format!("user:{}", Uuid::from_u128(7)),
            action: "file.download".into(),
            target: format!("file:{}", Uuid::from_u128(100 + u128::from(seq))),
            outcome: "success".into(),
            request_id: format!("req-{seq}"),
            trace_id: format!("{seq:032x}"),
        };
        let hash = event_hash(&prev, &event);
        let line = Line::Event(EventLine {
            event,
            prev_hash: hex(&prev),
            hash: hex(&hash),
        });
        export += &serde_json::to_string(&line).expect("json");
        export.push('\n');
        if seq == 2 {
            checkpoint = Some(signer.checkpoint(org, seq, &hash, 1_795_000_000_000_100, 0));
        }
        prev = hash;
    }
    let checkpoint = checkpoint.expect("a checkpoint at seq 2");
    export += &serde_json::to_string(&Line::Checkpoint(checkpoint)).expect("json");
    export.push('\n');
    let t = signer.trailer(org, 3, &prev, 1, 2, 1_795_000_100_000_000);
    export += &serde_json::to_string(&Line::Export(t)).expect("json");
    export.push('\n');
    assert!(coffer_auditlog::verify_export(&export, &signer.public_key()).is_ok());
    write(out, "audit_export", "valid", export.as_bytes());

    // Small pictures of each format the NSFW engine decodes (small: fuzzing wants short inputs).
    let img = image::RgbImage::from_fn(8, 6, |x, y| {
        image::Rgb([(x * 30) as u8, (y * 40) as u8, 99])
    });
    for (name, format) in [
        ("png", image::ImageFormat::Png),
        ("gif", image::ImageFormat::Gif),
        ("webp", image::ImageFormat::WebP),
    ] {
        let mut bytes = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, format).expect("encoded");
        write(out, "image", name, &bytes.into_inner());
    }
    for progressive in [false, true] {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_size(8, 6);
        c.set_quality(80.0);
        if progressive {
            c.set_progressive_mode();
        } else {
            c.set_fastest_defaults();
        }
        let mut s = c.start_compress(Vec::new()).expect("jpeg");
        s.write_scanlines(img.as_raw()).expect("jpeg");
        let name = if progressive {
            "jpeg-progressive"
        } else {
            "jpeg"
        };
        write(out, "image", name, &s.finish().expect("jpeg"));
    }
}
