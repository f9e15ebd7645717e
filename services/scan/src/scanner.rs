//! The scan of one file on local disk: the content pass (YARA-X, sensitive data, SHA-256), the
//! true-type check, the archive inspection, the NSFW engine on images (by the org's policy) and,
//! when configured, ClamAV — then one verdict. CPU work runs on a blocking thread; clamd reads the
//! same file concurrently.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::engines::archive::{self, ArchiveLimits};
use crate::engines::clamd::{Clamd, ClamdError};
use crate::engines::content::Pass;
use crate::engines::nsfw::{self, Images, Nsfw, NsfwPolicy, NsfwSettings, NsfwSummary};
use crate::engines::sensitive::Patterns;
use crate::engines::truetype::{self, Detected};
use crate::engines::yara::Ruleset;
use crate::engines::{Engine, EngineResult, Finding, Verdict, combine};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Clamd(#[from] ClamdError),
    #[error("a scan thread failed")]
    Panicked,
}

/// What the uploader said the file is, and how the store holds it.
#[derive(Debug, Clone, Default)]
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

/// The versions a verdict was reached with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    pub ruleset: String,
    pub yara_x: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub clamav: Option<String>,
    /// The NSFW model loaded (whether or not the org's policy ran it).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nsfw: Option<String>,
}

/// ClamAV's signature database version from its VERSION answer (`ClamAV 1.0.7/27470/<date>` →
/// 27470); `None` when the answer names none.
pub fn clamav_db(version: &str) -> Option<i32> {
    version.split('/').nth(1)?.trim().parse().ok()
}

impl Versions {
    /// The rules and model a verdict was reached with: a result under another key is scanned
    /// again. ClamAV's signature database is not in it but beside it (`clamav_db`), compared by
    /// number: only an older database re-scans, so replicas of clamd a freshclam apart never
    /// re-queue each other's results.
    pub fn key(&self) -> String {
        format!(
            "rules:{};nsfw:{}",
            self.ruleset,
            self.nsfw.as_deref().unwrap_or("none")
        )
    }

    /// ClamAV's signature database the verdict was reached with (none without ClamAV).
    pub fn clamav_db(&self) -> Option<i32> {
        self.clamav.as_deref().and_then(clamav_db)
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub verdict: Verdict,
    pub engines: Vec<EngineResult>,
    pub sha256: String,
    pub size: u64,
    pub detected_type: &'static str,
    pub versions: Versions,
}

pub struct Engines {
    rules: Ruleset,
    patterns: Patterns,
    limits: ArchiveLimits,
    clamd: Option<Clamd>,
    nsfw: Option<Nsfw>,
    tmp: PathBuf,
    /// The newest ClamAV version clamd has answered with (by signature database), and since
    /// when: results under an older database, written before then, are scanned again.
    clamav: Mutex<(Option<String>, time::OffsetDateTime)>,
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines")
            .field("ruleset", &self.rules.version())
            .field("clamd", &self.clamd.is_some())
            .field("nsfw", &self.nsfw.as_ref().map(Nsfw::version))
            .finish_non_exhaustive()
    }
}

/// The archive format the archive engine opens for a detected type.
fn archive_kind(detected: Detected) -> Option<archive::Kind> {
    match detected {
        Detected::Zip => Some(archive::Kind::Zip),
        Detected::Gzip => Some(archive::Kind::Gzip),
        Detected::Tar => Some(archive::Kind::Tar),
        _ => None,
    }
}

impl Engines {
    pub fn new(
        rules: Ruleset,
        limits: ArchiveLimits,
        clamd: Option<Clamd>,
        nsfw: Option<Nsfw>,
        tmp: PathBuf,
    ) -> Engines {
        Engines {
            rules,
            patterns: Patterns::new(),
            limits,
            clamd,
            nsfw,
            tmp,
            clamav: Mutex::new((None, time::OffsetDateTime::now_utc())),
        }
    }

    pub fn ruleset_version(&self) -> &str {
        self.rules.version()
    }

    pub fn nsfw_version(&self) -> Option<&str> {
        self.nsfw.as_ref().map(Nsfw::version)
    }

    /// Notes the ClamAV version clamd answers with: a newer signature database than any seen
    /// becomes the current one (never an older one: replicas may be a freshclam apart).
    pub fn saw_clamav(&self, version: &str) {
        let mut seen = self.clamav.lock().unwrap_or_else(|p| p.into_inner());
        let newer = match (seen.0.as_deref().and_then(clamav_db), clamav_db(version)) {
            (_, None) => seen.0.is_none(),
            (None, Some(_)) => true,
            (Some(old), Some(new)) => new > old,
        };
        if newer {
            *seen = (Some(version.to_owned()), time::OffsetDateTime::now_utc());
        }
    }

    /// The versions scans run under now, and since when (results written before then under
    /// another key, or an older ClamAV database, are re-scanned).
    pub fn current(&self) -> (Versions, time::OffsetDateTime) {
        let seen = self.clamav.lock().unwrap_or_else(|p| p.into_inner());
        (
            Versions {
                ruleset: self.rules.version().to_owned(),
                yara_x: yara_x::VERSION.to_owned(),
                clamav: seen.0.clone(),
                nsfw: self.nsfw_version().map(str::to_owned),
            },
            seen.1,
        )
    }

    pub fn clamd(&self) -> Option<&Clamd> {
        self.clamd.as_ref()
    }

    /// Scans the file at `path`. An engine that cannot finish is an error (the job is retried),
    /// never a silent clean.
    pub async fn scan(
        self: &Arc<Self>,
        path: &Path,
        declared: &Declared,
        nsfw: NsfwSettings,
    ) -> Result<Report, ScanError> {
        let local = {
            let me = Arc::clone(self);
            let path = path.to_owned();
            let declared = declared.clone();
            tokio::task::spawn_blocking(move || me.scan_local(&path, &declared, nsfw))
        };
        let clam = async {
            match &self.clamd {
                Some(c) => {
                    let started = std::time::Instant::now();
                    let mut f = Vec::new();
                    let scanned = async {
                        let version = c.version().await?;
                        self.saw_clamav(&version);
                        c.scan(path, &mut f).await?;
                        Ok::<_, ClamdError>(version)
                    }
                    .await;
                    let m = crate::metrics::metrics();
                    match scanned {
                        Ok(version) => {
                            m.engine_took("clamav", started.elapsed());
                            Ok::<_, ScanError>(Some((version, f)))
                        }
                        Err(error) => {
                            m.clamd_errors.inc();
                            Err(error.into())
                        }
                    }
                }
                None => Ok(None),
            }
        };
        let (local, clam) = tokio::join!(local, clam);
        let (mut findings, summary_size, sha256, detected, images) =
            local.map_err(|_| ScanError::Panicked)??;
        let mut ran = vec![Engine::Yara, Engine::TrueType, Engine::Sensitive];
        if archive_kind(detected).is_some() {
            ran.push(Engine::Archive);
        }
        if images.is_some() {
            ran.push(Engine::Nsfw);
        }
        let clamav = match clam? {
            Some((version, f)) => {
                ran.push(Engine::Clamav);
                findings.extend(f);
                Some(version)
            }
            None => None,
        };
        let (verdict, mut engines) = combine(&ran, &findings);
        if let Some(images) = images
            && let Some(line) = engines
                .iter_mut()
                .find(|e| e.engine == Engine::Nsfw.as_str())
        {
            line.scores = images.score_map();
            line.unclassified = (!images.unclassified.is_empty()).then(|| {
                images
                    .unclassified
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), *v))
                    .collect()
            });
        }
        Ok(Report {
            verdict,
            engines,
            sha256,
            size: summary_size,
            detected_type: detected.as_str(),
            versions: Versions {
                ruleset: self.rules.version().to_owned(),
                yara_x: yara_x::VERSION.to_owned(),
                clamav,
                nsfw: self.nsfw_version().map(str::to_owned),
            },
        })
    }

    #[allow(clippy::type_complexity)]
    fn scan_local(
        &self,
        path: &Path,
        declared: &Declared,
        nsfw: NsfwSettings,
    ) -> Result<(Vec<Finding>, u64, String, Detected, Option<NsfwSummary>), ScanError> {
        let m = crate::metrics::metrics();
        let started = std::time::Instant::now();
        let mut findings = Vec::new();
        let mut file = std::fs::File::open(path)?;
        let mut pass = Pass::new(&self.rules, &self.patterns, true);
        pass.read_from(&mut file, u64::MAX, None)?;
        let summary = pass.finish(&mut findings)?;
        m.bytes.inc_by(summary.bytes);
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
        m.engine_took("stream", started.elapsed());
        // The org's policy `off`, or no model: no image is decoded and nothing recorded.
        let images = match (&self.nsfw, nsfw.policy) {
            (Some(engine), NsfwPolicy::Flag | NsfwPolicy::Quarantine) => {
                Some(Images::new(engine, nsfw.thresholds))
            }
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
        if let Some(kind) = archive_kind(detected) {
            let started = std::time::Instant::now();
            let ctx = archive::Ctx {
                tmp: &self.tmp,
                rules: &self.rules,
                patterns: &self.patterns,
                limits: &self.limits,
                images: images.as_ref(),
            };
            archive::inspect(path, kind, &ctx, &mut findings)?;
            m.engine_took("archive", started.elapsed());
        }
        let images = images.and_then(|i| i.finish(&mut findings));
        let sha = summary
            .sha256
            .map(|d| coffer_kit::hex::encode(&d))
            .unwrap_or_default();
        // Nothing checked a declared hash on an upload in parts: bytes other than declared are
        // not the file the uploader meant, whatever they hold.
        if !declared.sha256.is_empty() && !sha.eq_ignore_ascii_case(&declared.sha256) {
            findings.push(Finding {
                engine: Engine::TrueType,
                signature: "declared-sha256-mismatch".into(),
                verdict: Verdict::Failed,
            });
        }
        Ok((findings, summary.bytes, sha, detected, images))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_versions_key_covers_rules_and_model_and_clamav_is_compared_by_number() {
        let mut v = Versions {
            ruleset: "2026.11.1".into(),
            yara_x: "1.0".into(),
            clamav: Some("ClamAV 1.0.7/27470/Sat Nov 29 09:35:01 2026".into()),
            nsfw: Some("nsfwjs@4.4.0/mobilenet_v2+sha256:aa270c9c2832".into()),
        };
        assert_eq!(
            v.key(),
            "rules:2026.11.1;nsfw:nsfwjs@4.4.0/mobilenet_v2+sha256:aa270c9c2832"
        );
        assert_eq!(v.clamav_db(), Some(27470));
        v.nsfw = None;
        v.clamav = Some("ClamAV 1.4.2".into());
        assert_eq!(v.key(), "rules:2026.11.1;nsfw:none");
        assert_eq!(v.clamav_db(), None);
    }

    #[test]
    fn only_a_newer_clamav_database_becomes_current() {
        let engines = Engines::new(
            Ruleset::load(None).unwrap(),
            ArchiveLimits::default(),
            None,
            None,
            std::env::temp_dir(),
        );
        engines.saw_clamav("ClamAV 1.0.7/27470/Sat Nov 29 09:35:01 2026");
        let (v, since) = engines.current();
        assert_eq!(v.clamav_db(), Some(27470));
        // A replica one update behind: nothing changes.
        engines.saw_clamav("ClamAV 1.0.7/27469/Fri Nov 28 09:35:01 2026");
        assert_eq!(engines.current(), (v, since));
        engines.saw_clamav("ClamAV 1.0.7/27471/Sun Nov 30 09:35:01 2026");
        let (v2, since2) = engines.current();
        assert_eq!(v2.clamav_db(), Some(27471));
        assert!(since2 >= since);
    }
}
