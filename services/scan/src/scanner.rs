//! The scan of one file on local disk: the content pass (YARA-X, sensitive data, SHA-256), the
//! true-type check, the archive inspection and, when configured, ClamAV — then one verdict.
//! CPU work runs on a blocking thread; clamd reads the same file concurrently.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engines::archive::{self, ArchiveLimits};
use crate::engines::clamd::{Clamd, ClamdError};
use crate::engines::content::Pass;
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
    tmp: PathBuf,
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines")
            .field("ruleset", &self.rules.version())
            .field("clamd", &self.clamd.is_some())
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
        tmp: PathBuf,
    ) -> Engines {
        Engines {
            rules,
            patterns: Patterns::new(),
            limits,
            clamd,
            tmp,
        }
    }

    pub fn ruleset_version(&self) -> &str {
        self.rules.version()
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
    ) -> Result<Report, ScanError> {
        let local = {
            let me = Arc::clone(self);
            let path = path.to_owned();
            let declared = declared.clone();
            tokio::task::spawn_blocking(move || me.scan_local(&path, &declared))
        };
        let clam = async {
            match &self.clamd {
                Some(c) => {
                    let started = std::time::Instant::now();
                    let mut f = Vec::new();
                    let scanned = async {
                        let version = c.version().await?;
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
        let (mut findings, summary_size, sha256, detected) =
            local.map_err(|_| ScanError::Panicked)??;
        let mut ran = vec![Engine::Yara, Engine::TrueType, Engine::Sensitive];
        if archive_kind(detected).is_some() {
            ran.push(Engine::Archive);
        }
        let clamav = match clam? {
            Some((version, f)) => {
                ran.push(Engine::Clamav);
                findings.extend(f);
                Some(version)
            }
            None => None,
        };
        let (verdict, engines) = combine(&ran, &findings);
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
            },
        })
    }

    fn scan_local(
        &self,
        path: &Path,
        declared: &Declared,
    ) -> Result<(Vec<Finding>, u64, String, Detected), ScanError> {
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
        if let Some(kind) = archive_kind(detected) {
            let started = std::time::Instant::now();
            archive::inspect(
                path,
                kind,
                &self.tmp,
                &self.rules,
                &self.patterns,
                &self.limits,
                &mut findings,
            )?;
            m.engine_took("archive", started.elapsed());
        }
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
        Ok((findings, summary.bytes, sha, detected))
    }
}
