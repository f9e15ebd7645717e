//! The engines that read a file's bytes, as an engine child holds them ([`Local`]), what the
//! uploader declared of the file ([`Declared`]) and the child's report ([`LocalReport`]): the
//! content pass (YARA-X, sensitive data, SHA-256), the true-type check, the archive inspection
//! and the NSFW engine on images (by the org's policy). Plain code: the sandbox runs it, the
//! worker reads what it reports.

use std::io::Read as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::archive::{self, ArchiveLimits};
use super::content::Pass;
use super::nsfw::{self, Images, Nsfw, NsfwConfig, NsfwPolicy, NsfwSettings, NsfwSummary};
use super::sensitive::Patterns;
use super::truetype::{self, Detected};
use super::yara::Ruleset;
use super::{Engine, Finding, Verdict};

/// What the uploader said the file is, and how the store holds it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    pub content_type: String,
    /// Lowercase, without the dot; empty when the name has none. Never the name itself.
    pub extension: String,
    /// The `Content-Encoding` the store serves the object with ("" for none). Anything but
    /// identity means a reader may decode the bytes into others than were scanned.
    pub stored_encoding: String,
    /// The SHA-256 the uploader declared (lowercase hex), "" for none.
    pub sha256: String,
}

/// The engines that read a file's bytes, as an engine child holds them.
pub struct Local {
    rules: Ruleset,
    patterns: Patterns,
    limits: ArchiveLimits,
    model: NsfwConfig,
    /// Loaded at the first image met (most files have none).
    nsfw: std::cell::OnceCell<Option<Nsfw>>,
}

/// An engine child's report on one file. It comes from a process that read hostile bytes:
/// [`LocalReport::check`] bounds it before anything uses it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalReport {
    pub findings: Vec<Finding>,
    pub bytes: u64,
    pub sha256: String,
    pub detected: Detected,
    /// What the NSFW engine saw; `None` when it did not run or met no image.
    pub images: Option<NsfwSummary>,
    /// Seconds each engine took, for the metrics: `stream`, `archive`, and `nsfw` per image.
    pub took: Took,
    /// How much of Landlock the kernel enforced (`FullyEnforced`, `PartiallyEnforced`).
    #[serde(default)]
    pub landlock: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Took {
    pub stream: f64,
    pub archive: Option<f64>,
    pub nsfw: Vec<f64>,
}

impl LocalReport {
    /// A report a sane child could have written: bounded lists and plain names, findings of its
    /// own engines only, a hex digest, timings that are durations.
    pub fn check(&self) -> Result<(), String> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/".contains(&b))
        };
        if self.findings.len() > 10_000 {
            return Err("too many findings".into());
        }
        if self.findings.iter().any(|f| !plain(&f.signature)) {
            return Err("a signature that is not a plain name".into());
        }
        if self.findings.iter().any(|f| f.engine == Engine::Clamav) {
            return Err("a ClamAV finding (clamd answers the worker, not the child)".into());
        }
        let duration = |s: f64| s.is_finite() && (0.0..=86_400.0).contains(&s);
        if !(duration(self.took.stream)
            && self.took.archive.is_none_or(duration)
            && self.took.nsfw.iter().all(|s| duration(*s)))
        {
            return Err("a timing that is not a duration".into());
        }
        if !(self.sha256.len() == 64 && self.sha256.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err("not a SHA-256".into());
        }
        if let Some(images) = &self.images
            && (images.unclassified.len() > 16
                || images
                    .unclassified
                    .keys()
                    .any(|k| k.len() > 32 || !plain(k))
                || images
                    .scores
                    .is_some_and(|s| s.0.iter().any(|v| !(0.0..=1.0).contains(v))))
        {
            return Err("an NSFW summary out of bounds".into());
        }
        if self.took.nsfw.len() > 10_000 {
            return Err("too many timings".into());
        }
        Ok(())
    }
}

/// The archive format the archive engine opens for a detected type.
pub(crate) fn archive_kind(detected: Detected) -> Option<archive::Kind> {
    match detected {
        Detected::Zip => Some(archive::Kind::Zip),
        Detected::Gzip => Some(archive::Kind::Gzip),
        Detected::Tar => Some(archive::Kind::Tar),
        _ => None,
    }
}

impl Local {
    pub fn new(rules: Ruleset, limits: ArchiveLimits, model: NsfwConfig) -> Local {
        Local {
            rules,
            patterns: Patterns::new(),
            limits,
            model,
            nsfw: std::cell::OnceCell::new(),
        }
    }

    /// The model (checked against its recorded hash), loaded once; `None` when none is
    /// configured.
    fn nsfw(&self) -> std::io::Result<Option<&Nsfw>> {
        if self.nsfw.get().is_none() {
            let loaded = Nsfw::load(&self.model).map_err(std::io::Error::other)?;
            let _ = self.nsfw.set(loaded);
        }
        Ok(self.nsfw.get().and_then(Option::as_ref))
    }

    /// Scans the file at `path`; archives unpack into `tmp`.
    pub fn scan(
        &self,
        path: &Path,
        tmp: &Path,
        declared: &Declared,
        nsfw: NsfwSettings,
    ) -> std::io::Result<LocalReport> {
        let started = std::time::Instant::now();
        let mut took = Took::default();
        let mut findings = Vec::new();
        let mut file = std::fs::File::open(path)?;
        let mut pass = Pass::new(&self.rules, &self.patterns, true);
        pass.read_from(&mut file, u64::MAX, None)?;
        let summary = pass.finish(&mut findings)?;
        let detected = truetype::check(
            &summary.head,
            &declared.content_type,
            &declared.extension,
            &mut findings,
        );
        let encoding = declared.stored_encoding.trim();
        if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
            findings.push(Finding {
                engine: Engine::TrueType,
                signature: "stored-content-encoding".into(),
                verdict: Verdict::Suspicious,
            });
        }
        took.stream = started.elapsed().as_secs_f64();
        // The org's policy `off`, or no model: no image is decoded and nothing recorded. The
        // model loads only for a file that is an image or may hold some.
        // What the bytes start as decides, then a zip found from the file's end (what zip tools
        // open whatever comes before it).
        let archive = match archive_kind(detected) {
            Some(kind) => Some(kind),
            None if archive::ends_with_zip(path, &self.limits)? => Some(archive::Kind::Zip),
            None => None,
        };
        let may_hold_images = nsfw::is_image(&summary.head) || archive.is_some();
        let images = match nsfw.policy {
            NsfwPolicy::Flag | NsfwPolicy::Quarantine if may_hold_images => self
                .nsfw()?
                .map(|engine| Images::new(engine, nsfw.thresholds)),
            _ => None,
        };
        if let Some(images) = &images
            && nsfw::is_image(&summary.head)
        {
            if summary.bytes > images.max_bytes() {
                images.too_large();
            } else {
                let mut bytes = Vec::with_capacity(summary.bytes as usize);
                std::fs::File::open(path)?
                    .take(images.max_bytes())
                    .read_to_end(&mut bytes)?;
                images.check(&bytes);
            }
        }
        if let Some(kind) = archive {
            let started = std::time::Instant::now();
            let ctx = archive::Ctx {
                tmp,
                rules: &self.rules,
                patterns: &self.patterns,
                limits: &self.limits,
                images: images.as_ref(),
            };
            archive::inspect(path, kind, &ctx, &mut findings)?;
            took.archive = Some(started.elapsed().as_secs_f64());
        }
        let images = images.and_then(|i| {
            took.nsfw = i.took();
            i.finish(&mut findings)
        });
        let sha256 = summary
            .sha256
            .map(|d| coffer_kit::hex::encode(&d))
            .unwrap_or_default();
        Ok(LocalReport {
            findings,
            bytes: summary.bytes,
            sha256,
            detected,
            images,
            took,
            landlock: String::new(),
        })
    }
}
