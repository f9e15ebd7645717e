//! The fuzz targets, one function each; `src/bin/<target>.rs` hands AFL++'s inputs to them.
//! Each target states what must hold for any input: no panic, no hang, no unbounded memory,
//! and the property named in its docs.

use std::path::PathBuf;
use std::sync::LazyLock;

use coffer_scan::engines::{Finding, archive, sensitive, truetype};

/// An audience ring derived from a fixed master ring: seeds can carry tokens that verify.
static VERIFIER: LazyLock<coffer_token::Verifier> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("ring.toml");
    std::fs::write(&path, MASTER_RING).expect("the ring is written");
    let ring = coffer_token::MasterKeyRing::from_file(&path).expect("the fixed ring loads");
    coffer_token::Verifier::new(
        &ring.derive_audience_ring(coffer_token::Audience::Metadata),
        coffer_token::VerifyOptions::default(),
    )
});

/// A fixed, public master ring: for fuzzing only.
pub const MASTER_RING: &str = r#"kind = "master"
active = "fuzz"

[[keys]]
id = "fuzz"
secret = "ZnV6ei1vbmx5LWZ1enotb25seS1mdXp6LW9ubHktZnV6ei1vbmx5IQ=="
"#;

/// The time tokens are verified at (seeds are minted just before).
pub const NOW: i64 = 1_800_000_000;

/// A user token: parsed, decoded and checked; a forged or malformed one is refused, never a
/// panic.
pub fn token(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = VERIFIER.verify(text, NOW);
    }
}

/// A webhook delivery's headers and body (lines: id, timestamp, signatures, then the body).
pub fn webhook(data: &[u8]) {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let (Some(id), Some(ts), Some(sigs)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let body = parts.next().unwrap_or_default();
    let (Ok(id), Ok(ts), Ok(sigs)) = (
        std::str::from_utf8(id),
        std::str::from_utf8(ts),
        std::str::from_utf8(sigs),
    ) else {
        return;
    };
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let _ = coffer_scan::webhook::verify(secret, id, ts, sigs, body, NOW);
}

struct ArchiveCtx {
    dir: tempfile::TempDir,
    rules: coffer_scan::engines::yara::Ruleset,
    patterns: sensitive::Patterns,
    limits: archive::ArchiveLimits,
}

static ARCHIVE: LazyLock<ArchiveCtx> = LazyLock::new(|| ArchiveCtx {
    dir: tempfile::tempdir().expect("a temp dir"),
    rules: coffer_scan::engines::yara::Ruleset::load(None).expect("the shipped rules compile"),
    patterns: sensitive::Patterns::new(),
    // Smaller totals than the service's: each input must finish in milliseconds.
    limits: archive::ArchiveLimits {
        max_entries: 1_000,
        max_total_bytes: 16 << 20,
        ..archive::ArchiveLimits::default()
    },
});

/// A zip, gzip or tar (and what nests in it): inspected within the limits, every entry's bytes
/// through the rules and the sensitive-data pass, nothing left in the unpack directory.
pub fn archive(data: &[u8]) {
    let Some(kind) = archive::Kind::of(data) else {
        return;
    };
    let ctx = &*ARCHIVE;
    let input = ctx.dir.path().join("input");
    let tmp: PathBuf = ctx.dir.path().join("unpack");
    std::fs::write(&input, data).expect("the input is written");
    std::fs::create_dir_all(&tmp).expect("the unpack dir exists");
    let mut findings: Vec<Finding> = Vec::new();
    let _ = archive::inspect(
        &input,
        kind,
        &archive::Ctx {
            tmp: &tmp,
            rules: &ctx.rules,
            patterns: &ctx.patterns,
            limits: &ctx.limits,
            images: None,
        },
        &mut findings,
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

const DECLARED: [(&str, &str); 6] = [
    ("application/octet-stream", "bin"),
    ("application/pdf", "pdf"),
    ("image/png", "png"),
    ("text/plain", "txt"),
    ("application/x-msdownload", "exe"),
    ("", ""),
];

/// A file's first bytes against a declared type (the first input byte picks it): detected, and a
/// hidden executable reported once at most.
pub fn truetype(data: &[u8]) {
    let Some((&pick, head)) = data.split_first() else {
        return;
    };
    let (ct, ext) = DECLARED[usize::from(pick) % DECLARED.len()];
    let mut findings = Vec::new();
    let _ = truetype::check(head, ct, ext, &mut findings);
    assert!(findings.len() <= 1);
}

static PATTERNS: LazyLock<sensitive::Patterns> = LazyLock::new(sensitive::Patterns::new);

/// The sensitive-data pass over a stream cut into blocks (the first byte sets the block size),
/// as the scanner feeds it.
pub fn sensitive(data: &[u8]) {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let block = usize::from(size).max(1) * 16;
    let mut seen = sensitive::Seen::default();
    for chunk in rest.chunks(block) {
        PATTERNS.scan(chunk, &mut seen);
    }
    let mut findings = Vec::new();
    seen.finish(&mut findings);
}

/// A fixed public key for the audit export target; its seeds are signed with the matching seed.
pub const AUDIT_SIGNING_SEED: [u8; 32] = [7; 32];

/// The signer of the audit export seeds.
pub fn audit_signer() -> coffer_auditlog::Signer {
    coffer_auditlog::Signer::from_seed("audit-1", &AUDIT_SIGNING_SEED).expect("a fixed seed")
}

static AUDIT_KEY: LazyLock<[u8; 32]> = LazyLock::new(|| audit_signer().public_key());

/// An audit export (JSON lines): verified or refused, never a panic.
pub fn audit_export(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = coffer_auditlog::verify_export(text, &AUDIT_KEY);
    }
}

pub const ORG: uuid::Uuid = uuid::Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001);

/// An object key and a prefix: accepted only in their one canonical spelling, and only under
/// the caller's org.
pub fn object_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if coffer_storage_signer::keys::check(text, ORG).is_ok() {
        let rest = text.strip_prefix("scans/").unwrap_or(text);
        assert!(
            rest.starts_with(&ORG.hyphenated().to_string()),
            "another org's key passed"
        );
        assert_eq!(rest.len(), 36 + 1 + 36, "a key in another spelling passed");
    }
    let _ = coffer_storage_signer::keys::check_prefix(text, ORG);
}

/// Every JSON body of the public API.
pub fn gateway_json(data: &[u8]) {
    coffer_gateway::fuzzing::bodies(data);
}

/// Every query string of the public API.
pub fn gateway_query(data: &[u8]) {
    coffer_gateway::fuzzing::queries(data);
}

/// An image for the NSFW engine: refused or decoded within the limits, never more.
pub fn image(data: &[u8]) {
    let limits = coffer_nsfw::picture::Limits::default();
    let _ = coffer_nsfw::picture::prepare(data, &limits);
}

/// Every target by name, for `scripts/fuzz` and the replay of seeds and regressions.
pub const TARGETS: [(&str, fn(&[u8])); 10] = [
    ("token", token),
    ("webhook", webhook),
    ("archive", archive),
    ("truetype", truetype),
    ("sensitive", sensitive),
    ("audit_export", audit_export),
    ("object_key", object_key),
    ("gateway_json", gateway_json),
    ("gateway_query", gateway_query),
    ("image", image),
];
