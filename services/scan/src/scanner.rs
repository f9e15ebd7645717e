//! The scan of one file: the content pass (YARA-X, sensitive data, SHA-256), the true-type
//! check, the archive inspection and the NSFW engine on images (by the org's policy) run in an
//! engine child ([`crate::sandbox`]: [`Local`] is what it holds); ClamAV, when configured, reads
//! the same file from clamd meanwhile. Then one verdict.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::engines::archive;
use crate::engines::clamd::{Clamd, ClamdError};
use crate::engines::local::archive_kind;
pub use crate::engines::local::{Declared, Local, LocalReport, Took};
use crate::engines::nsfw::{Nsfw, NsfwPolicy, NsfwSettings};
use crate::engines::yara::Ruleset;
use crate::engines::{Engine, EngineResult, Finding, Verdict, combine};
use crate::sandbox::{self, ContainError, Sandbox};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Clamd(#[from] ClamdError),
    #[error(transparent)]
    Contained(#[from] ContainError),
    #[error("preparing the object: {0}")]
    Io(#[from] std::io::Error),
}

impl ScanError {
    /// Whether trying again cannot help (the file itself takes more than a child may use).
    pub fn is_final(&self) -> bool {
        matches!(self, ScanError::Contained(e) if e.is_final())
    }

    /// Whether an engine's service could not be reached at all (clamd down): nothing was
    /// learnt about the file, so the try is a wait. (clamd failing mid-scan counts: the file
    /// may be what broke it.)
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ScanError::Clamd(ClamdError::Unreachable(_)))
    }
}

/// What the worker took of the object while downloading it.
#[derive(Debug, Clone, Default)]
pub struct Taken {
    pub size: u64,
    /// Lowercase hex.
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

/// A 2×2 PNG, for the sandbox's first scan.
const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a,
    0x73, 0x00, 0x00, 0x00, 0x12, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xc0,
    0x00, 0xc2, 0x0c, 0xff, 0x81, 0x00, 0x00, 0x1f, 0xee, 0x05, 0xfb, 0x0b, 0xd9, 0x68, 0x8b, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// The newest ClamAV version clamd has answered with (by signature database), and since when:
/// results under an older database, written before then, are scanned again.
#[derive(Debug)]
pub struct ClamavSeen(Mutex<(Option<String>, time::OffsetDateTime)>);

impl Default for ClamavSeen {
    fn default() -> Self {
        ClamavSeen(Mutex::new((None, time::OffsetDateTime::now_utc())))
    }
}

impl ClamavSeen {
    /// Notes the ClamAV version clamd answers with: a newer signature database than any seen
    /// becomes the current one (never an older one: replicas may be a freshclam apart).
    pub fn saw(&self, version: &str) {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let newer = match (seen.0.as_deref().and_then(clamav_db), clamav_db(version)) {
            (_, None) => seen.0.is_none(),
            (None, Some(_)) => true,
            (Some(old), Some(new)) => new > old,
        };
        if newer {
            *seen = (Some(version.to_owned()), time::OffsetDateTime::now_utc());
        }
    }

    /// The current version and since when.
    pub fn current(&self) -> (Option<String>, time::OffsetDateTime) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The worker's side of the engines: the engine hosts, clamd, and the versions scans run under.
pub struct Engines {
    sandbox: Sandbox,
    ruleset: String,
    nsfw: Option<String>,
    clamd: Option<Clamd>,
    clamav: ClamavSeen,
    /// Where each job's directory is made.
    tmp: PathBuf,
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines")
            .field("ruleset", &self.ruleset)
            .field("clamd", &self.clamd.is_some())
            .field("nsfw", &self.nsfw)
            .finish_non_exhaustive()
    }
}

impl Engines {
    /// Starts the first engine host (it compiles the rules and loads the model) and scans an
    /// empty file in a contained child: a kernel that cannot contain the engines, a rule that
    /// does not compile or a wrong model stops the service here, not at the first upload.
    pub async fn start(
        config: &crate::ScanConfig,
        clamd: Option<Clamd>,
    ) -> anyhow::Result<Engines> {
        use anyhow::Context as _;
        // Absolute: the children run in their job's directory.
        let tmp = std::fs::canonicalize(config.temp_dir()).context("the temporary directory")?;
        let mut model = config.nsfw.clone();
        if let Some(path) = &model.model {
            model.model = Some(std::fs::canonicalize(path).context("the NSFW model")?);
        }
        let program = match &config.sandbox.program {
            Some(p) => p.clone(),
            None => std::env::current_exe().context("finding this program")?,
        };
        let rules = Ruleset::load(config.rules_dir.as_deref())?;
        // Checked here (a model of another hash stops the service), loaded again by the children
        // that meet an image.
        let nsfw = Nsfw::load(&config.nsfw)
            .context("loading the NSFW model")?
            .map(|n| n.version().to_owned());
        let engines = Engines {
            sandbox: Sandbox {
                program,
                rules: rules.serialize().context("serializing the rules")?.into(),
                ruleset: rules.version().to_owned(),
                archive: config.archive.clone(),
                model,
                limits: sandbox::Limits::from(&config.sandbox),
                timeout: std::time::Duration::from_secs(config.sandbox.timeout_secs),
            },
            ruleset: rules.version().to_owned(),
            nsfw,
            clamd,
            clamav: ClamavSeen::default(),
            tmp,
        };
        engines.self_test().await?;
        Ok(engines)
    }

    /// Scans a small zip holding a PNG in a contained child, with images classified: the rules,
    /// the archive engine's files, the model's loading and a decoder all run under the sandbox
    /// before the first upload does.
    async fn self_test(&self) -> anyhow::Result<()> {
        use anyhow::Context as _;
        use sha2::Digest as _;
        let zip = archive::build::zip(&[("a.png", TINY_PNG), ("b.txt", b"coffer")]);
        let dir = self.job_dir().context("making a job directory")?;
        std::fs::write(dir.path().join(sandbox::OBJECT), &zip)?;
        let report = self
            .sandbox
            .run(
                dir.path(),
                &Declared::default(),
                NsfwSettings {
                    policy: NsfwPolicy::Flag,
                    thresholds: Default::default(),
                },
            )
            .await
            .context("the engine sandbox's first scan (a zip holding a PNG)")?;
        anyhow::ensure!(
            report.bytes == zip.len() as u64
                && report.sha256 == coffer_kit::hex::encode(&sha2::Sha256::digest(&zip))
                && report.findings.is_empty()
                && (self.nsfw.is_none()
                    || report.images.as_ref().is_some_and(|i| i.classified == 1)),
            "the engine sandbox's first scan, of a zip holding a PNG, is not what it should be: \
             {report:?}"
        );
        tracing::info!(landlock = %report.landlock, "engine sandbox ready");
        Ok(())
    }

    /// A fresh private directory for one job (0700); the object goes in as
    /// [`sandbox::OBJECT`]. Removed when dropped.
    pub fn job_dir(&self) -> std::io::Result<tempfile::TempDir> {
        let dir = tempfile::Builder::new()
            .prefix("coffer-scan-")
            .tempdir_in(&self.tmp)?;
        std::fs::create_dir(dir.path().join(sandbox::OUT))?;
        std::fs::create_dir(dir.path().join(sandbox::UNPACK))?;
        Ok(dir)
    }

    pub fn ruleset_version(&self) -> &str {
        &self.ruleset
    }

    pub fn nsfw_version(&self) -> Option<&str> {
        self.nsfw.as_deref()
    }

    pub fn saw_clamav(&self, version: &str) {
        self.clamav.saw(version);
    }

    /// The versions scans run under now, and since when (results written before then under
    /// another key, or an older ClamAV database, are re-scanned).
    pub fn current(&self) -> (Versions, time::OffsetDateTime) {
        let (clamav, since) = self.clamav.current();
        (
            Versions {
                ruleset: self.ruleset.clone(),
                yara_x: yara_x::VERSION.to_owned(),
                clamav,
                nsfw: self.nsfw.clone(),
            },
            since,
        )
    }

    pub fn clamd(&self) -> Option<&Clamd> {
        self.clamd.as_ref()
    }

    /// Scans the object in `dir` (made by [`Engines::job_dir`]), whose size and SHA-256 the
    /// worker took while downloading it: the child's report must agree, and the worker's values
    /// are the ones recorded. An engine that cannot finish is an error (the job is retried),
    /// never a silent clean.
    pub async fn scan(
        self: &Arc<Self>,
        dir: &Path,
        declared: &Declared,
        nsfw: NsfwSettings,
        taken: &Taken,
    ) -> Result<Report, ScanError> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(sandbox::OBJECT);
        // Read-only to the child (which may not chmod); clamd reads it through a descriptor
        // opened before the child starts.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))?;
        let object = tokio::fs::File::open(&path).await?;
        let m = crate::metrics::metrics();
        let local = async {
            let started = std::time::Instant::now();
            // The child must have read the very bytes the worker downloaded.
            let got = self
                .sandbox
                .run(dir, declared, nsfw)
                .await
                .and_then(|local| {
                    if local.bytes == taken.size && local.sha256.eq_ignore_ascii_case(&taken.sha256)
                    {
                        Ok(local)
                    } else {
                        Err(ContainError::BadReport(
                            "its size or SHA-256 is not the downloaded object's".into(),
                        ))
                    }
                });
            m.engine_took("sandbox", started.elapsed());
            if let Err(error) = &got {
                m.contained_failure(error.reason());
            }
            got
        };
        let clam = async {
            match &self.clamd {
                Some(c) => {
                    let started = std::time::Instant::now();
                    let mut f = Vec::new();
                    let scanned = async {
                        let version = c.version().await?;
                        self.saw_clamav(&version);
                        c.scan(object, &mut f).await?;
                        Ok::<_, ClamdError>(version)
                    }
                    .await;
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
        let local = local?;
        m.bytes.inc_by(local.bytes);
        m.engine_took_secs("stream", local.took.stream);
        if let Some(s) = local.took.archive {
            m.engine_took_secs("archive", s);
        }
        for s in &local.took.nsfw {
            m.engine_took_secs("nsfw", *s);
        }
        let LocalReport {
            mut findings,
            detected,
            images,
            ..
        } = local;
        let (bytes, sha256) = (taken.size, taken.sha256.clone());
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
        // Nothing checked a declared hash on an upload in parts: bytes other than declared are
        // not the file the uploader meant, whatever they hold.
        if !declared.sha256.is_empty() && !sha256.eq_ignore_ascii_case(&declared.sha256) {
            findings.push(Finding {
                engine: Engine::TrueType,
                signature: "declared-sha256-mismatch".into(),
                verdict: Verdict::Failed,
            });
        }
        let (verdict, mut engines) = combine(&ran, &findings);
        if let Some(images) = images
            && let Some(line) = engines
                .iter_mut()
                .find(|e| e.engine == Engine::Nsfw.as_str())
        {
            line.scores = images.score_map();
            line.unclassified = (!images.unclassified.is_empty()).then_some(images.unclassified);
        }
        Ok(Report {
            verdict,
            engines,
            sha256,
            size: bytes,
            detected_type: detected.as_str(),
            versions: Versions {
                ruleset: self.ruleset.clone(),
                yara_x: yara_x::VERSION.to_owned(),
                clamav,
                nsfw: self.nsfw.clone(),
            },
        })
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
        let seen = ClamavSeen::default();
        seen.saw("ClamAV 1.0.7/27470/Sat Nov 29 09:35:01 2026");
        let (v, since) = seen.current();
        assert_eq!(v.as_deref().and_then(clamav_db), Some(27470));
        // A replica one update behind: nothing changes.
        seen.saw("ClamAV 1.0.7/27469/Fri Nov 28 09:35:01 2026");
        assert_eq!(seen.current(), (v, since));
        seen.saw("ClamAV 1.0.7/27471/Sun Nov 30 09:35:01 2026");
        let (v2, since2) = seen.current();
        assert_eq!(v2.as_deref().and_then(clamav_db), Some(27471));
        assert!(since2 >= since);
    }
}
