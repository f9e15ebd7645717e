//! Archives: a zip (and the zips inside it, to a depth) is opened and every entry streamed through
//! the content pass, within limits on depth, entry count, total uncompressed bytes and
//! compression ratio. The bytes really produced are counted, not the sizes an archive claims,
//! and reading stops as soon as a limit is passed: a bomb is a finding, never an out-of-memory.
//! Symlinks, paths that climb out (`../`) and encrypted entries are findings too.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::content::Pass;
use super::sensitive::Patterns;
use super::yara::Ruleset;
use super::{Engine, Finding, Verdict};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveLimits {
    /// Zips inside zips: the outer file is depth 0.
    pub max_depth: u32,
    /// Entries across the whole archive, nested ones included.
    pub max_entries: u64,
    /// Uncompressed bytes across the whole archive, nested ones included.
    pub max_total_bytes: u64,
    /// Largest uncompressed/compressed ratio of one entry once it is larger than `ratio_min_bytes`.
    pub max_ratio: u64,
    pub ratio_min_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_depth: 3,
            max_entries: 10_000,
            max_total_bytes: 1 << 30,
            max_ratio: 100,
            ratio_min_bytes: 1 << 20,
        }
    }
}

/// Counts shared by an archive and the archives inside it.
#[derive(Debug, Default)]
struct Budget {
    entries: u64,
    bytes: u64,
}

/// Why inspection stopped early: the finding is already recorded.
struct Stop;

fn finding(findings: &mut Vec<Finding>, signature: &str) {
    findings.push(Finding {
        engine: Engine::Archive,
        signature: signature.to_owned(),
        verdict: Verdict::Suspicious,
    });
}

/// Inspects the zip at `path`; nested zips are unpacked into `tmp` (bounded by the limits).
pub fn inspect(
    path: &Path,
    tmp: &Path,
    rules: &Ruleset,
    patterns: &Patterns,
    limits: &ArchiveLimits,
    findings: &mut Vec<Finding>,
) -> io::Result<()> {
    let mut budget = Budget::default();
    match inspect_at(path, tmp, 0, rules, patterns, limits, &mut budget, findings)? {
        Ok(()) | Err(Stop) => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn inspect_at(
    path: &Path,
    tmp: &Path,
    depth: u32,
    rules: &Ruleset,
    patterns: &Patterns,
    limits: &ArchiveLimits,
    budget: &mut Budget,
    findings: &mut Vec<Finding>,
) -> io::Result<Result<(), Stop>> {
    let mut file = File::open(path)?;
    // The central directory is read whole by the zip reader: check its claimed size first.
    if let Some(claimed) = claimed_entries(&mut file)?
        && claimed.saturating_add(budget.entries) > limits.max_entries
    {
        finding(findings, "archive-too-many-entries");
        return Ok(Err(Stop));
    }
    file.seek(SeekFrom::Start(0))?;
    let mut zip = match zip::ZipArchive::new(BufReader::new(file)) {
        Ok(z) => z,
        Err(zip::result::ZipError::Io(e)) => return Err(e),
        Err(_) => {
            finding(findings, "archive-malformed");
            return Ok(Err(Stop));
        }
    };
    for i in 0..zip.len() {
        budget.entries += 1;
        if budget.entries > limits.max_entries {
            finding(findings, "archive-too-many-entries");
            return Ok(Err(Stop));
        }
        let (encrypted, symlink, dir, escapes, compressed) = match zip.by_index_raw(i) {
            Ok(e) => (
                e.encrypted(),
                e.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000),
                e.is_dir(),
                e.enclosed_name().is_none(),
                e.compressed_size(),
            ),
            Err(_) => {
                finding(findings, "archive-malformed");
                return Ok(Err(Stop));
            }
        };
        if escapes {
            finding(findings, "archive-path-traversal");
        }
        if symlink {
            finding(findings, "archive-symlink");
            continue;
        }
        if encrypted {
            finding(findings, "archive-encrypted");
            continue;
        }
        if dir {
            continue;
        }
        let mut entry = match zip.by_index(i) {
            Ok(e) => e,
            Err(zip::result::ZipError::Io(e)) => return Err(e),
            Err(_) => {
                finding(findings, "archive-malformed");
                return Ok(Err(Stop));
            }
        };
        // Stop reading an entry at whichever comes first: the ratio limit or the total budget.
        let by_ratio = compressed
            .max(1)
            .saturating_mul(limits.max_ratio)
            .max(limits.ratio_min_bytes);
        let by_budget = limits.max_total_bytes.saturating_sub(budget.bytes);
        let limit = by_ratio.min(by_budget);
        let mut pass = Pass::new(rules, patterns, false);
        // An entry that is itself a zip is kept (bounded by `limit`) to be opened in turn.
        let mut nested: Option<tempfile::NamedTempFile> = None;
        let mut first = [0u8; 4];
        let got = read_prefix(&mut entry, &mut first)?;
        let is_zip = got == 4 && (first == *b"PK\x03\x04" || first == *b"PK\x05\x06");
        if is_zip {
            nested = Some(tempfile::NamedTempFile::new_in(tmp)?);
        }
        let mut chained = (&first[..got]).chain(&mut entry);
        let within = match nested.as_mut() {
            Some(t) => pass.read_from(&mut chained, limit, Some(t.as_file_mut()))?,
            None => pass.read_from(&mut chained, limit, None)?,
        };
        let summary = pass.finish(findings)?;
        budget.bytes += summary.bytes;
        if !within {
            if limit == by_budget && by_budget < by_ratio {
                finding(findings, "archive-too-large");
            } else {
                finding(findings, "archive-compression-ratio");
            }
            return Ok(Err(Stop));
        }
        if let Some(t) = nested {
            if depth + 1 > limits.max_depth {
                finding(findings, "archive-too-deep");
                return Ok(Err(Stop));
            }
            if let Err(Stop) = inspect_at(
                t.path(),
                tmp,
                depth + 1,
                rules,
                patterns,
                limits,
                budget,
                findings,
            )? {
                return Ok(Err(Stop));
            }
        }
    }
    Ok(Ok(()))
}

fn read_prefix(r: &mut dyn Read, out: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < out.len() {
        match r.read(&mut out[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The entry count the end-of-central-directory record claims (zip64 too), if one is found.
fn claimed_entries(file: &mut File) -> io::Result<Option<u64>> {
    let len = file.seek(SeekFrom::End(0))?;
    let tail_len = len.min(22 + 65_535);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail)?;
    let Some(at) = tail.windows(4).rposition(|w| w == b"PK\x05\x06") else {
        return Ok(None);
    };
    let Some(rec) = tail.get(at..at + 22) else {
        return Ok(None);
    };
    let count = u64::from(u16::from_le_bytes([rec[10], rec[11]]));
    if count != 0xffff || at < 20 || &tail[at - 20..at - 16] != b"PK\x06\x07" {
        return Ok(Some(count));
    }
    let loc = &tail[at - 20..at];
    let offset = u64::from_le_bytes(loc[8..16].try_into().expect("8 bytes"));
    if offset.saturating_add(56) > len {
        return Ok(Some(u64::MAX));
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut rec64 = [0u8; 56];
    file.read_exact(&mut rec64)?;
    if &rec64[..4] != b"PK\x06\x06" {
        return Ok(Some(u64::MAX));
    }
    Ok(Some(u64::from_le_bytes(
        rec64[32..40].try_into().expect("8 bytes"),
    )))
}

/// Builders of test archives (plain, zero-filled, nested bombs), shared with the integration
/// tests and `coffer bench`.
pub mod build {
    use std::io::{Cursor, Write};

    use zip::write::SimpleFileOptions;

    fn opts() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
    }

    /// A zip of `(name, bytes)` entries.
    pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, opts()).expect("start entry");
            w.write_all(data).expect("write entry");
        }
        w.finish().expect("finish zip").into_inner()
    }

    /// A zip with a symlink entry `name` → `target`.
    pub fn symlink(name: &str, target: &str) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_symlink(name, target, SimpleFileOptions::default())
            .expect("add symlink");
        w.finish().expect("finish zip").into_inner()
    }

    /// A zip with one entry of `n` zero bytes, written without holding them in memory.
    pub fn zeros(name: &str, n: u64) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file(name, opts().large_file(n >= u64::from(u32::MAX)))
            .expect("start entry");
        let block = vec![0u8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(block.len() as u64) as usize;
            w.write_all(&block[..k]).expect("write");
            left -= k as u64;
        }
        w.finish().expect("finish zip").into_inner()
    }

    /// A classic nested bomb: `fanout` copies of the level below, `levels` deep, over a core of
    /// `core` zero bytes.
    pub fn nested_bomb(levels: u32, fanout: usize, core: u64) -> Vec<u8> {
        let mut inner = zeros("core.bin", core);
        for level in 0..levels {
            let names: Vec<String> = (0..fanout).map(|i| format!("l{level}-{i}.zip")).collect();
            let entries: Vec<(&str, &[u8])> = names
                .iter()
                .map(|n| (n.as_str(), inner.as_slice()))
                .collect();
            inner = zip(&entries);
        }
        inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8], limits: &ArchiveLimits) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.zip");
        std::fs::write(&p, data).unwrap();
        let rules = Ruleset::load(None).unwrap();
        let patterns = Patterns::new();
        let mut f = Vec::new();
        inspect(&p, dir.path(), &rules, &patterns, limits, &mut f).unwrap();
        f.into_iter().map(|f| f.signature).collect()
    }

    #[test]
    fn a_plain_zip_is_clean_and_its_entries_are_scanned() {
        let l = ArchiveLimits::default();
        assert!(
            run(
                &build::zip(&[("a.txt", b"hello"), ("b/c.txt", b"world")]),
                &l
            )
            .is_empty()
        );
        let e = crate::engines::yara::tests::eicar();
        let inner = build::zip(&[("e.com", &e)]);
        let outer = build::zip(&[
            ("inner.zip", &inner),
            ("k.pem", b"-----BEGIN EC PRIVATE KEY-----"),
        ]);
        let mut sigs = run(&outer, &l);
        sigs.sort();
        assert_eq!(sigs, ["eicar_test_file", "pem-private-key"]);
    }

    #[test]
    fn bombs_and_tricks_are_findings() {
        let l = ArchiveLimits::default();
        // 64 MiB of zeros compress about 1000:1.
        assert_eq!(
            run(&build::zeros("z", 64 << 20), &l),
            ["archive-compression-ratio"]
        );
        // 10 levels of 10: claims 10^10 cores; depth stops it long before.
        let sigs = run(&build::nested_bomb(5, 4, 1024), &l);
        assert_eq!(sigs, ["archive-too-deep"]);
        let many: Vec<(String, Vec<u8>)> = (0..50).map(|i| (format!("f{i}"), vec![])).collect();
        let entries: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let few = ArchiveLimits {
            max_entries: 20,
            ..ArchiveLimits::default()
        };
        assert_eq!(
            run(&build::zip(&entries), &few),
            ["archive-too-many-entries"]
        );
        let small = ArchiveLimits {
            max_total_bytes: 3 << 20,
            max_ratio: 10_000,
            ..ArchiveLimits::default()
        };
        let big = build::zeros("z", 8 << 20);
        assert_eq!(run(&big, &small), ["archive-too-large"]);
        assert_eq!(
            run(b"PK\x03\x04 not really a zip", &l),
            ["archive-malformed"]
        );
        assert_eq!(
            run(&build::symlink("etc", "/etc/passwd"), &l),
            ["archive-symlink"]
        );
        assert_eq!(
            run(&build::zip(&[("../../etc/passwd", b"x")]), &l),
            ["archive-path-traversal"]
        );
    }
}
