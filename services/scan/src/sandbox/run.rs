//! The worker's side: one child per file, fed its request and the compiled rules, given a
//! deadline, killed past it. The child's report is read from the job's directory, bounded and
//! checked: it is the word of a process that read hostile bytes.

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::Command;

use super::{ERROR, Limits, OUT, PROTOCOL, REPORT, Request, SEALED, exit};
use crate::engines::archive::ArchiveLimits;
use crate::engines::local::{Declared, LocalReport};
use crate::engines::nsfw::{NsfwConfig, NsfwSettings};

/// Why a file's engines gave no report: each is a failed try of the job.
#[derive(Debug, thiserror::Error)]
pub enum ContainError {
    #[error("starting the engine child {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("the engine child gave no answer within {0} s: killed")]
    TimedOut(u64),
    #[error("the engine child was killed by signal {signal} ({name})")]
    Killed { signal: i32, name: &'static str },
    #[error("the engine child panicked")]
    Panicked,
    #[error("the engine child could not contain itself: {0}")]
    NotContained(String),
    #[error("the engine child refused the request: {0}")]
    BadRequest(String),
    #[error("the engines failed: {0}")]
    Scan(String),
    #[error("the engine child ended with code {0}")]
    Exited(i32),
    #[error("the engine child's report is not valid: {0}")]
    BadReport(String),
    #[error("the engine child wrote more than {0} bytes or 10 000 files: killed")]
    OverBudget(u64),
}

impl ContainError {
    /// The metric label of this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            ContainError::Spawn { .. } | ContainError::BadRequest(_) => "start",
            ContainError::BadReport(_) => "bad_report",
            ContainError::TimedOut(_) => "timeout",
            ContainError::Killed { signal, .. }
                if *signal == nix::libc::SIGXCPU || *signal == nix::libc::SIGXFSZ =>
            {
                "limit"
            }
            ContainError::Killed { .. } | ContainError::Panicked | ContainError::Exited(_) => {
                "crashed"
            }
            ContainError::NotContained(_) => "not_contained",
            ContainError::Scan(_) => "scan_error",
            ContainError::OverBudget(_) => "limit",
        }
    }

    /// Whether another try cannot help: the file makes the child use more CPU, or write more,
    /// than it may. (A timeout may be a busy machine: that is tried again.)
    pub fn is_final(&self) -> bool {
        match self {
            ContainError::OverBudget(_) => true,
            ContainError::Killed { signal, .. } => {
                *signal == nix::libc::SIGXCPU || *signal == nix::libc::SIGXFSZ
            }
            _ => false,
        }
    }
}

/// What every child of this worker is given.
pub struct Sandbox {
    pub program: PathBuf,
    /// The compiled rules ([`crate::engines::yara::Ruleset::serialize`]) and their version.
    pub rules: Arc<[u8]>,
    pub ruleset: String,
    pub archive: ArchiveLimits,
    pub model: NsfwConfig,
    pub limits: Limits,
    pub timeout: Duration,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("program", &self.program)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// How often the worker looks at what a child wrote.
const DISK_CHECK: Duration = Duration::from_millis(250);
/// Most files a child may leave.
const MAX_FILES: usize = 10_000;

/// Whether `out/` and `out/unpack/` together hold more than `budget` bytes or too many files.
async fn over_budget(out: &Path, budget: u64) -> bool {
    let out = out.to_owned();
    tokio::task::spawn_blocking(move || {
        let (mut bytes, mut files) = (0u64, 0usize);
        for dir in [out.clone(), out.join("unpack")] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                files += 1;
                bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                if bytes > budget || files > MAX_FILES {
                    return true;
                }
            }
        }
        false
    })
    .await
    .unwrap_or(false)
}

/// Largest report or error file read from a job's directory.
const MAX_REPORT: u64 = 1 << 20;
const MAX_ERROR: u64 = 512;

impl Sandbox {
    /// Scans the object in `dir` in a fresh child.
    pub async fn run(
        &self,
        dir: &Path,
        declared: &Declared,
        nsfw: NsfwSettings,
    ) -> Result<LocalReport, ContainError> {
        let request = Request {
            protocol: PROTOCOL,
            dir: dir.to_owned(),
            declared: declared.clone(),
            nsfw,
            ruleset: self.ruleset.clone(),
            rules_len: self.rules.len() as u64,
            archive: self.archive.clone(),
            model: self.model.clone(),
            limits: self.limits,
        };
        let mut line =
            serde_json::to_vec(&request).map_err(|e| ContainError::BadRequest(e.to_string()))?;
        line.push(b'\n');
        let mut child = Command::new(&self.program)
            .arg("engine-child")
            .env_clear()
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ContainError::Spawn {
                program: self.program.display().to_string(),
                source,
            })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let fed = async {
            if let Some(mut stdin) = stdin {
                // A child that stops reading has ended: its status says how.
                let _ = async {
                    stdin.write_all(&line).await?;
                    stdin.write_all(&self.rules).await?;
                    stdin.shutdown().await
                }
                .await;
            }
            // The one byte a child writes once sealed (nothing more is read).
            let mut sealed = [0u8; 1];
            match stdout {
                Some(mut out) => {
                    matches!(out.read(&mut sealed).await, Ok(1) if sealed[0] == SEALED)
                }
                None => false,
            }
        };
        let budget = self.limits.disk_bytes;
        let out = dir.join(OUT);
        let watched = async {
            let sealed = fed.await;
            loop {
                tokio::select! {
                    status = child.wait() => return status.map(|s| (s, sealed)).map_err(Some),
                    () = tokio::time::sleep(DISK_CHECK) => {
                        if over_budget(&out, budget).await {
                            let _ = child.kill().await;
                            return Err(None);
                        }
                    }
                }
            }
        };
        let (status, sealed) = match tokio::time::timeout(self.timeout, watched).await {
            Ok(Ok(done)) => done,
            Ok(Err(Some(e))) => {
                return Err(ContainError::Spawn {
                    program: self.program.display().to_string(),
                    source: e,
                });
            }
            Ok(Err(None)) => return Err(ContainError::OverBudget(budget)),
            Err(_) => {
                let _ = child.kill().await;
                return Err(ContainError::TimedOut(self.timeout.as_secs()));
            }
        };
        // Once sealed, the child's word on why it stopped no longer counts.
        if sealed
            && !matches!(status.code(), Some(exit::OK) | Some(exit::SCAN_ERROR))
            && status.signal().is_none()
        {
            return Err(ContainError::Exited(status.code().unwrap_or(-1)));
        }
        match (status.code(), status.signal()) {
            (Some(exit::OK), _) => read_report(dir).await,
            (Some(exit::SCAN_ERROR), _) => Err(ContainError::Scan(read_error(dir).await)),
            (Some(exit::NOT_CONTAINED), _) => {
                Err(ContainError::NotContained(read_error(dir).await))
            }
            (Some(exit::BAD_REQUEST), _) => Err(ContainError::BadRequest(read_error(dir).await)),
            (Some(exit::PANICKED), _) => Err(ContainError::Panicked),
            (Some(code), _) => Err(ContainError::Exited(code)),
            (None, Some(signal)) => Err(ContainError::Killed {
                signal,
                name: signal_name(signal),
            }),
            (None, None) => Err(ContainError::Exited(-1)),
        }
    }
}

/// Reads a file the child left, bounded. Never through a link, and never anything but a regular
/// file (a FIFO would block the worker): the child cannot make those (its seccomp filter has no
/// `symlinkat`, `linkat` or `mknodat`), and would not be believed if it could.
async fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .await?;
    if !file.metadata().await?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).await?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!("longer than {max} bytes")));
    }
    Ok(bytes)
}

async fn read_report(dir: &Path) -> Result<LocalReport, ContainError> {
    let bytes = read_bounded(&dir.join(REPORT), MAX_REPORT)
        .await
        .map_err(|e| ContainError::BadReport(e.to_string()))?;
    let report: LocalReport =
        serde_json::from_slice(&bytes).map_err(|e| ContainError::BadReport(e.to_string()))?;
    report.check().map_err(ContainError::BadReport)?;
    Ok(report)
}

/// The child's error message: printable ASCII only, bounded.
async fn read_error(dir: &Path) -> String {
    match read_bounded(&dir.join(ERROR), MAX_ERROR).await {
        Ok(bytes) => bytes
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '?'
                }
            })
            .collect(),
        Err(_) => "no message".into(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str())
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_has_a_reason_the_metric_exposes() {
        let io = || std::io::Error::other("x");
        for e in [
            ContainError::Spawn {
                program: "p".into(),
                source: io(),
            },
            ContainError::TimedOut(1),
            ContainError::Killed {
                signal: 9,
                name: "SIGKILL",
            },
            ContainError::Panicked,
            ContainError::NotContained("x".into()),
            ContainError::BadRequest("x".into()),
            ContainError::Scan("x".into()),
            ContainError::Exited(7),
            ContainError::BadReport("x".into()),
            ContainError::OverBudget(1),
        ] {
            assert!(
                crate::metrics::CHILD_FAILURES.contains(&e.reason()),
                "{e}: {}",
                e.reason()
            );
        }
    }

    fn report() -> LocalReport {
        LocalReport {
            findings: vec![crate::engines::Finding {
                engine: crate::engines::Engine::Yara,
                signature: "eicar_test_file".into(),
                verdict: crate::engines::Verdict::Infected,
            }],
            bytes: 3,
            sha256: "ab".repeat(32),
            detected: crate::engines::truetype::Detected::Unknown,
            images: None,
            took: Default::default(),
            landlock: String::new(),
        }
    }

    #[test]
    fn a_report_must_be_plain_and_the_childs_own() {
        assert!(report().check().is_ok());
        let mut r = report();
        r.findings[0].signature = "\u{1b}[31mred".into();
        assert!(r.check().is_err(), "control characters");
        let mut r = report();
        r.findings[0].engine = crate::engines::Engine::Clamav;
        assert!(r.check().is_err(), "ClamAV is the worker's");
        let mut r = report();
        r.took.stream = f64::INFINITY;
        assert!(r.check().is_err(), "a timing that is no duration");
        let mut r = report();
        r.took.nsfw = vec![-1.0];
        assert!(r.check().is_err(), "a negative timing");
        let mut r = report();
        r.sha256 = "zz".repeat(32);
        assert!(r.check().is_err(), "not hex");
    }

    #[tokio::test]
    async fn what_the_child_leaves_is_read_bounded_and_never_through_a_link_or_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(OUT)).unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"{\"key\": 1}").unwrap();
        std::os::unix::fs::symlink(&secret, dir.path().join(ERROR)).unwrap();
        assert_eq!(
            read_error(dir.path()).await,
            "no message",
            "a link is not followed"
        );
        std::os::unix::fs::symlink(&secret, dir.path().join(REPORT)).unwrap();
        assert!(matches!(
            read_report(dir.path()).await,
            Err(ContainError::BadReport(_))
        ));
        std::fs::remove_file(dir.path().join(REPORT)).unwrap();
        nix::unistd::mkfifo(&dir.path().join(REPORT), nix::sys::stat::Mode::S_IRWXU).unwrap();
        // A FIFO with no writer would block an open for reading: it is refused at once.
        let read = tokio::time::timeout(Duration::from_secs(5), read_report(dir.path())).await;
        assert!(matches!(read, Ok(Err(ContainError::BadReport(_)))));
        std::fs::remove_file(dir.path().join(REPORT)).unwrap();
        std::fs::write(
            dir.path().join(REPORT),
            vec![b' '; (MAX_REPORT + 1) as usize],
        )
        .unwrap();
        assert!(matches!(
            read_report(dir.path()).await,
            Err(ContainError::BadReport(e)) if e.contains("longer")
        ));
        std::fs::remove_file(dir.path().join(ERROR)).unwrap();
        std::fs::write(dir.path().join(ERROR), "bad\n\u{7}thing \u{e9}").unwrap();
        assert_eq!(read_error(dir.path()).await, "bad??thing ??");
    }
}
