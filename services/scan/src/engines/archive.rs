//! Archives: a zip, or a gzip stream (a `.tar.gz`, or one compressed file), and the archives
//! inside them, to a depth, are opened and every entry streamed through the content pass, within
//! limits on depth, entry count, total uncompressed bytes and compression ratio. The bytes really
//! produced are counted, not the sizes an archive claims, and reading stops as soon as a limit is
//! passed: a bomb is a finding, never an out-of-memory. Symlinks and hard links, paths that climb
//! out (`../`, absolute paths), encrypted entries and unreadable archives are findings too.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::content::Pass;
use super::nsfw::{self, Images};
use super::sensitive::Patterns;
use super::yara::Ruleset;
use super::{Engine, Finding, Verdict};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveLimits {
    /// Archives inside archives: the outer file is depth 0 (a `.tar.gz` is one archive).
    pub max_depth: u32,
    /// Entries across the whole archive, nested ones included.
    pub max_entries: u64,
    /// Uncompressed bytes across the whole archive, nested ones included.
    pub max_total_bytes: u64,
    /// Largest uncompressed/compressed ratio of one entry (of a whole gzip stream) once it is
    /// larger than `ratio_min_bytes`.
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

/// The archive formats opened here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Zip,
    Gzip,
    Tar,
}

/// How much of a stream [`Kind::of`] needs to tell a tar (its magic is at offset 257).
const KIND_PREFIX: usize = 512;

impl Kind {
    /// The archive a stream starting with `prefix` is, if any.
    pub fn of(prefix: &[u8]) -> Option<Kind> {
        if prefix.starts_with(b"PK\x03\x04") || prefix.starts_with(b"PK\x05\x06") {
            Some(Kind::Zip)
        } else if prefix.starts_with(&[0x1f, 0x8b]) {
            Some(Kind::Gzip)
        } else if prefix.get(257..262) == Some(b"ustar") {
            Some(Kind::Tar)
        } else {
            None
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

/// What one inspection needs, passed down to nested archives.
pub struct Ctx<'a> {
    /// Where nested archives (and images) are unpacked.
    pub tmp: &'a Path,
    pub rules: &'a Ruleset,
    pub patterns: &'a Patterns,
    pub limits: &'a ArchiveLimits,
    /// The NSFW engine, when the org's policy runs it: images among the entries go to it.
    pub images: Option<&'a Images<'a>>,
}

/// Inspects the archive at `path`; nested archives are unpacked into `ctx.tmp` (bounded by the
/// limits).
pub fn inspect(
    path: &Path,
    kind: Kind,
    ctx: &Ctx<'_>,
    findings: &mut Vec<Finding>,
) -> io::Result<()> {
    let mut budget = Budget::default();
    match inspect_at(ctx, path, kind, 0, &mut budget, findings)? {
        Ok(()) | Err(Stop) => Ok(()),
    }
}

fn inspect_at(
    ctx: &Ctx<'_>,
    path: &Path,
    kind: Kind,
    depth: u32,
    budget: &mut Budget,
    findings: &mut Vec<Finding>,
) -> io::Result<Result<(), Stop>> {
    match kind {
        Kind::Zip => inspect_zip(ctx, path, depth, budget, findings),
        Kind::Gzip => inspect_gzip(ctx, path, depth, budget, findings),
        Kind::Tar => inspect_tar(ctx, path, depth, budget, findings),
    }
}

/// The most bytes `compressed` bytes may unpack to: the ratio limit, once past its floor.
fn ratio_cap(compressed: u64, limits: &ArchiveLimits) -> u64 {
    compressed
        .max(1)
        .saturating_mul(limits.max_ratio)
        .max(limits.ratio_min_bytes)
}

/// Which limit an entry's read stopped at, for the finding's name.
fn over_limit(findings: &mut Vec<Finding>, by_budget: bool) -> Result<(), Stop> {
    finding(
        findings,
        if by_budget {
            "archive-too-large"
        } else {
            "archive-compression-ratio"
        },
    );
    Err(Stop)
}

/// Streams one entry through the content pass, at most `limit` bytes (`by_budget`: the limit is
/// the whole archive's budget rather than the entry's ratio), and opens it in turn if it is an
/// archive itself.
fn scan_entry(
    ctx: &Ctx<'_>,
    entry: &mut dyn Read,
    limit: u64,
    by_budget: bool,
    depth: u32,
    budget: &mut Budget,
    findings: &mut Vec<Finding>,
) -> io::Result<Result<(), Stop>> {
    let mut pass = Pass::new(ctx.rules, ctx.patterns, false);
    let mut first = [0u8; KIND_PREFIX];
    let got = read_prefix(entry, &mut first)?;
    // An entry that is itself an archive is kept (bounded by `limit`) to be opened in turn; an
    // image, to be classified, when the NSFW engine runs.
    let nested = Kind::of(&first[..got]);
    let image = match ctx.images {
        Some(images) if nested.is_none() && nsfw::is_image(&first[..got]) => {
            // Past the file's count of images: counted, not kept.
            if images.full() {
                images.room();
                None
            } else {
                Some(images)
            }
        }
        _ => None,
    };
    let mut kept = match (nested, image) {
        (None, None) => None,
        _ => Some(tempfile::NamedTempFile::new_in(ctx.tmp)?),
    };
    let mut chained = (&first[..got]).chain(entry);
    let within = match (kept.as_mut(), image) {
        // An image is kept only as far as the NSFW engine reads images: one byte more says it
        // is too large, and the rest is not written.
        (Some(t), Some(images)) => {
            let mut capped = CappedWrite {
                inner: t.as_file_mut(),
                left: images.max_bytes().saturating_add(1),
            };
            pass.read_from(&mut chained, limit, Some(&mut capped))?
        }
        (Some(t), None) => pass.read_from(&mut chained, limit, Some(t.as_file_mut()))?,
        (None, _) => pass.read_from(&mut chained, limit, None)?,
    };
    let summary = pass.finish(findings)?;
    budget.bytes += summary.bytes;
    if !within {
        return Ok(over_limit(findings, by_budget));
    }
    if let (Some(images), Some(t)) = (image, &kept) {
        if summary.bytes > images.max_bytes() {
            images.too_large();
        } else {
            images.check(&std::fs::read(t.path())?);
        }
    }
    if let (Some(kind), Some(t)) = (nested, kept) {
        if depth + 1 > ctx.limits.max_depth {
            finding(findings, "archive-too-deep");
            return Ok(Err(Stop));
        }
        return inspect_at(ctx, t.path(), kind, depth + 1, budget, findings);
    }
    Ok(Ok(()))
}

/// Writes the first `left` bytes to `inner` and drops the rest.
struct CappedWrite<'a> {
    inner: &'a mut File,
    left: u64,
}

impl io::Write for CappedWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if n > 0 {
            self.inner.write_all(&buf[..n])?;
            self.left -= n as u64;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts one more entry; false (with the finding) past the limit.
fn count_entry(ctx: &Ctx<'_>, budget: &mut Budget, findings: &mut Vec<Finding>) -> bool {
    budget.entries += 1;
    if budget.entries > ctx.limits.max_entries {
        finding(findings, "archive-too-many-entries");
        return false;
    }
    true
}

fn inspect_zip(
    ctx: &Ctx<'_>,
    path: &Path,
    depth: u32,
    budget: &mut Budget,
    findings: &mut Vec<Finding>,
) -> io::Result<Result<(), Stop>> {
    let limits = ctx.limits;
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
        if !count_entry(ctx, budget, findings) {
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
        let by_ratio = ratio_cap(compressed, limits);
        let by_budget = limits.max_total_bytes.saturating_sub(budget.bytes);
        let limit = by_ratio.min(by_budget);
        let by_budget = by_budget < by_ratio;
        if let Err(Stop) = scan_entry(ctx, &mut entry, limit, by_budget, depth, budget, findings)? {
            return Ok(Err(Stop));
        }
    }
    Ok(Ok(()))
}

/// A reader that refuses to yield more than `limit` bytes: past it, reading fails and `hit` is
/// set, so a decompression bomb stops inside the decoder, whatever reads from it.
struct Capped<R> {
    inner: R,
    left: u64,
    hit: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // Exactly at the limit is fine if the stream ends here.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.hit.set(true);
                    Err(io::Error::other("archive limit reached"))
                }
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A gzip stream (every member of it): a tar inside is walked entry by entry; anything else is
/// one entry. The whole stream is held to the ratio limit against its compressed size.
fn inspect_gzip(
    ctx: &Ctx<'_>,
    path: &Path,
    depth: u32,
    budget: &mut Budget,
    findings: &mut Vec<Finding>,
) -> io::Result<Result<(), Stop>> {
    let limits = ctx.limits;
    let file = File::open(path)?;
    let by_ratio = ratio_cap(file.metadata()?.len(), limits);
    let by_budget = limits.max_total_bytes.saturating_sub(budget.bytes);
    let hit = Rc::new(Cell::new(false));
    let mut stream = Capped {
        inner: flate2::read::MultiGzDecoder::new(BufReader::new(file)),
        left: by_ratio.min(by_budget),
        hit: hit.clone(),
    };
    let cap = Some((hit, by_budget < by_ratio));
    let mut head = [0u8; KIND_PREFIX];
    let got = match read_prefix(&mut stream, &mut head) {
        Ok(n) => n,
        Err(e) => return classify(e, cap.as_ref(), findings),
    };
    let is_tar = Kind::of(&head[..got]) == Some(Kind::Tar);
    let mut chained = (&head[..got]).chain(stream);
    let walked = if is_tar {
        walk_tar(ctx, &mut chained, depth, budget, findings)
    } else if count_entry(ctx, budget, findings) {
        // One compressed file; the cap above holds it to the ratio.
        scan_entry(ctx, &mut chained, u64::MAX, false, depth, budget, findings)
    } else {
        return Ok(Err(Stop));
    };
    match walked {
        Ok(done) => Ok(done),
        Err(e) => classify(e, cap.as_ref(), findings),
    }
}

/// An uncompressed tar.
fn inspect_tar(
    ctx: &Ctx<'_>,
    path: &Path,
    depth: u32,
    budget: &mut Budget,
    findings: &mut Vec<Finding>,
) -> io::Result<Result<(), Stop>> {
    let mut file = BufReader::new(File::open(path)?);
    match walk_tar(ctx, &mut file, depth, budget, findings) {
        Ok(done) => Ok(done),
        Err(e) => classify(e, None, findings),
    }
}

/// What an error inside an archive's stream means: past the stream's cap (`cap`: its flag, and
/// whether the cap was the budget rather than the ratio), or an archive that does not parse
/// (the decoders and tar-rs say so with these kinds); only a failure of the disk itself stays an
/// error, so the job is tried again.
fn classify(
    e: io::Error,
    cap: Option<&(Rc<Cell<bool>>, bool)>,
    findings: &mut Vec<Finding>,
) -> io::Result<Result<(), Stop>> {
    if let Some((hit, over_budget)) = cap
        && hit.get()
    {
        return Ok(over_limit(findings, *over_budget));
    }
    match e.kind() {
        io::ErrorKind::InvalidData
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::Other => {
            finding(findings, "archive-malformed");
            Ok(Err(Stop))
        }
        _ => Err(e),
    }
}

/// Bytes a tar walk may read between two entries' data: headers, GNU long names and links, pax
/// records. tar-rs reads the long names and pax records whole into memory, so a 1 GiB "long
/// name" would be a 1 GiB allocation; past this the archive is malformed.
const MAX_TAR_HEADER_BYTES: u64 = 1 << 20;

/// Counts what tar-rs reads outside an entry's data, and stops it past [`MAX_TAR_HEADER_BYTES`].
struct TarGuard<R> {
    inner: R,
    state: Rc<GuardState>,
}

#[derive(Default)]
struct GuardState {
    in_data: Cell<bool>,
    outside: Cell<u64>,
    hit: Cell<bool>,
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.state.in_data.get() {
            let outside = self.state.outside.get() + n as u64;
            self.state.outside.set(outside);
            if outside > MAX_TAR_HEADER_BYTES {
                self.state.hit.set(true);
                return Err(io::Error::other("tar headers too large"));
            }
        }
        Ok(n)
    }
}

/// The entries of a tar stream: every entry with data is scanned, whatever its type letter
/// (GNU tar and others extract contiguous, sparse and unknown types as regular files); links are
/// findings (they are how a tar writes outside its directory); directories, devices and fifos
/// hold no bytes.
fn walk_tar(
    ctx: &Ctx<'_>,
    stream: &mut dyn Read,
    depth: u32,
    budget: &mut Budget,
    findings: &mut Vec<Finding>,
) -> io::Result<Result<(), Stop>> {
    let guard = Rc::new(GuardState::default());
    let mut archive = tar::Archive::new(TarGuard {
        inner: stream,
        state: guard.clone(),
    });
    let walked = (|| {
        for entry in archive.entries()? {
            let mut entry = entry?;
            guard.outside.set(0);
            if !count_entry(ctx, budget, findings) {
                return Ok(Err(Stop));
            }
            let kind = entry.header().entry_type();
            let escapes = entry.path().map_or(true, |p| {
                p.components().any(|c| {
                    matches!(
                        c,
                        Component::ParentDir | Component::RootDir | Component::Prefix(_)
                    )
                })
            });
            if escapes {
                finding(findings, "archive-path-traversal");
            }
            if kind.is_symlink() || kind.is_hard_link() {
                finding(findings, "archive-symlink");
                continue;
            }
            if kind.is_dir()
                || kind.is_character_special()
                || kind.is_block_special()
                || kind.is_fifo()
            {
                continue;
            }
            let left = ctx.limits.max_total_bytes.saturating_sub(budget.bytes);
            guard.in_data.set(true);
            let scanned = scan_entry(ctx, &mut entry, left, true, depth, budget, findings);
            guard.in_data.set(false);
            if let Err(Stop) = scanned? {
                return Ok(Err(Stop));
            }
        }
        Ok(Ok(()))
    })();
    match walked {
        Err(_) if guard.hit.get() => {
            finding(findings, "archive-malformed");
            Ok(Err(Stop))
        }
        other => other,
    }
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

/// Whether a file that does not start as a zip still ends with one that opens: bytes put before a
/// zip (a self-extractor, or a PDF or anything else with a zip after it) leave it readable to zip
/// tools, which find it from its end. Too many claimed entries counts as a zip (the inspection
/// then reports it); a directory record that does not open does not (a stray signature in a
/// PDF's tail is no archive).
pub fn ends_with_zip(path: &Path, limits: &ArchiveLimits) -> io::Result<bool> {
    let mut file = File::open(path)?;
    match claimed_entries(&mut file)? {
        None => Ok(false),
        Some(n) if n > limits.max_entries => Ok(true),
        Some(_) => {
            file.seek(SeekFrom::Start(0))?;
            match zip::ZipArchive::new(BufReader::new(file)) {
                Ok(_) => Ok(true),
                Err(zip::result::ZipError::Io(e)) => Err(e),
                Err(_) => Ok(false),
            }
        }
    }
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

    /// `data` gzip-compressed.
    pub fn gzip(data: &[u8]) -> Vec<u8> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        w.write_all(data).expect("compress");
        w.finish().expect("finish gzip")
    }

    /// A gzip of `n` zero bytes, written without holding them in memory.
    pub fn gzip_zeros(n: u64) -> Vec<u8> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let block = vec![0u8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(block.len() as u64) as usize;
            w.write_all(&block[..k]).expect("compress");
            left -= k as u64;
        }
        w.finish().expect("finish gzip")
    }

    /// A `.tar.gz` of `(name, bytes)` regular files.
    pub fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // Written raw, so tests can build names a careful writer would refuse (`../x`).
            let raw = &mut header.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            tar.append(&header, *data).expect("append");
        }
        gzip(&tar.into_inner().expect("finish tar"))
    }

    /// A `.tar.gz` holding a symlink `name` → `target`.
    pub fn tar_gz_symlink(name: &str, target: &str) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        tar.append_link(&mut header, name, target)
            .expect("append link");
        gzip(&tar.into_inner().expect("finish tar"))
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
        run_as(data, Kind::of(data).unwrap(), limits)
    }

    fn run_as(data: &[u8], kind: Kind, limits: &ArchiveLimits) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("archive");
        std::fs::write(&p, data).unwrap();
        let rules = Ruleset::load(None).unwrap();
        let patterns = Patterns::new();
        let mut f = Vec::new();
        let ctx = Ctx {
            tmp: dir.path(),
            rules: &rules,
            patterns: &patterns,
            limits,
            images: None,
        };
        inspect(&p, kind, &ctx, &mut f).unwrap();
        let mut sigs: Vec<String> = f.into_iter().map(|f| f.signature).collect();
        sigs.sort();
        sigs
    }

    const KEY: &[u8] = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n";

    /// Bytes before a zip (a self-extractor's stub, a PDF with a zip after it) leave it readable
    /// to zip tools: it is found from its end and opened. A stray signature is no archive.
    #[test]
    fn a_zip_after_other_bytes_is_found_from_its_end_and_opened() {
        let l = ArchiveLimits::default();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("file");
        let ends_with_zip = |data: &[u8]| {
            std::fs::write(&p, data).unwrap();
            super::ends_with_zip(&p, &l).unwrap()
        };
        let zip = build::zip(&[("k.txt", KEY)]);
        for prefix in [
            &b"sixty bytes of something else before the zip starts......"[..],
            b"%PDF-1.7\n% a PDF with a zip after it\n",
        ] {
            let data = [prefix, &zip[..]].concat();
            assert!(ends_with_zip(&data), "{prefix:?}");
            assert_eq!(run_as(&data, Kind::Zip, &l), ["pem-private-key"]);
        }
        // An end record claiming one entry in a directory past the file's end.
        let record = [
            0, 0, 0, 0, 1, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ];
        let stray = [&b"%PDF-1.7\n"[..], b"PK\x05\x06", &record].concat();
        for data in [&b"plain notes"[..], &stray] {
            assert!(!ends_with_zip(data), "{data:?}");
        }
    }

    #[test]
    fn gzip_and_tar_gz_are_opened_like_zips() {
        let l = ArchiveLimits::default();
        // One compressed file: what it holds is found, though its bytes are compressed.
        assert_eq!(run(&build::gzip(KEY), &l), ["pem-private-key"]);
        assert!(run(&build::gzip(b"plain notes"), &l).is_empty());
        let e = crate::engines::yara::tests::eicar();
        let tgz = build::tar_gz(&[("docs/readme.txt", b"hello"), ("bin/e.com", &e)]);
        assert_eq!(run(&tgz, &l), ["eicar_test_file"]);
        // Archives inside: a zip in a tar.gz, a gzip in a zip.
        let inner = build::zip(&[("k.txt", KEY)]);
        assert_eq!(
            run(&build::tar_gz(&[("inner.zip", &inner)]), &l),
            ["pem-private-key"]
        );
        assert_eq!(
            run(&build::zip(&[("k.gz", &build::gzip(KEY))]), &l),
            ["pem-private-key"]
        );
    }

    #[test]
    fn every_tar_entry_with_data_is_scanned_and_plain_tars_too() {
        let l = ArchiveLimits::default();
        let e = crate::engines::yara::tests::eicar();
        // Type `7` (contiguous) and an unknown letter: GNU tar extracts both as regular files.
        for kind in [b'7', b'X'] {
            let mut tar = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_path("e.com").unwrap();
            header.set_size(e.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::new(kind));
            header.set_cksum();
            tar.append(&header, e.as_slice()).unwrap();
            let tar = tar.into_inner().unwrap();
            assert_eq!(run(&build::gzip(&tar), &l), ["eicar_test_file"], "{kind}");
            // Uncompressed, the same.
            assert_eq!(run(&tar, &l), ["eicar_test_file"], "{kind}");
        }
        // A zip inside a plain tar is opened.
        let inner = build::zip(&[("k.txt", KEY)]);
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_path("inner.zip").unwrap();
        header.set_size(inner.len() as u64);
        header.set_cksum();
        tar.append(&header, inner.as_slice()).unwrap();
        assert_eq!(run(&tar.into_inner().unwrap(), &l), ["pem-private-key"]);
    }

    #[test]
    fn an_oversized_tar_long_name_is_refused_before_it_is_read_whole() {
        // A GNU long-name entry of 64 MiB of zeros: tar-rs would read it into memory whole.
        let mut header = tar::Header::new_gnu();
        header.set_path("././@LongLink").unwrap();
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_size(64 << 20);
        header.set_cksum();
        let mut raw = header.as_bytes().to_vec();
        raw.resize(raw.len() + (64 << 20) + 1024, 0);
        let l = ArchiveLimits {
            max_ratio: 100_000,
            ..ArchiveLimits::default()
        };
        assert_eq!(run(&build::gzip(&raw), &l), ["archive-malformed"]);
    }

    #[test]
    fn gzip_bombs_and_tar_tricks_are_findings() {
        let l = ArchiveLimits::default();
        assert_eq!(
            run(&build::gzip_zeros(64 << 20), &l),
            ["archive-compression-ratio"]
        );
        let zeros = vec![0u8; 8 << 20];
        assert_eq!(
            run(&build::tar_gz(&[("z", &zeros)]), &l),
            ["archive-compression-ratio"]
        );
        let small = ArchiveLimits {
            max_total_bytes: 3 << 20,
            max_ratio: 10_000,
            ..ArchiveLimits::default()
        };
        assert_eq!(
            run(&build::gzip_zeros(8 << 20), &small),
            ["archive-too-large"]
        );
        let few = ArchiveLimits {
            max_entries: 3,
            ..ArchiveLimits::default()
        };
        let many: Vec<(String, Vec<u8>)> = (0..5).map(|i| (format!("f{i}"), vec![1])).collect();
        let entries: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        assert_eq!(
            run(&build::tar_gz(&entries), &few),
            ["archive-too-many-entries"]
        );
        assert_eq!(
            run(&build::tar_gz(&[("../../etc/cron.d/x", b"x")]), &l),
            ["archive-path-traversal"]
        );
        assert_eq!(
            run(&build::tar_gz_symlink("etc", "/etc/passwd"), &l),
            ["archive-symlink"]
        );
        let mut broken = build::gzip(b"some bytes to compress, then cut short");
        broken.truncate(broken.len() - 6);
        assert_eq!(run(&broken, &l), ["archive-malformed"]);
        // Depth: a gzip in a gzip in a gzip in a gzip, one level too many.
        let deep = build::gzip(&build::gzip(&build::gzip(&build::gzip(&build::gzip(b"x")))));
        assert_eq!(run(&deep, &l), ["archive-too-deep"]);
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
        assert_eq!(run(&outer, &l), ["eicar_test_file", "pem-private-key"]);
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
