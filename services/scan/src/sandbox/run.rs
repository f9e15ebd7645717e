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

use super::{ERROR, Limits, PROTOCOL, REPORT, Request, exit};
use crate::engines::archive::ArchiveLimits;
use crate::engines::nsfw::{NsfwConfig, NsfwSettings};
use crate::scanner::{Declared, LocalReport};

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
}

impl ContainError {
    /// The metric label of this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            ContainError::Spawn { .. } | ContainError::BadRequest(_) => "start",
            ContainError::BadReport(_) => "bad_report",
            ContainError::TimedOut(_) => "timeout",
            ContainError::Killed { .. } | ContainError::Panicked | ContainError::Exited(_) => {
                "crashed"
            }
            ContainError::NotContained(_) => "not_contained",
            ContainError::Scan(_) => "scan_error",
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
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ContainError::Spawn {
                program: self.program.display().to_string(),
                source,
            })?;
        let ran = async {
            if let Some(mut stdin) = child.stdin.take() {
                // A child that stops reading has ended: its status below says how.
                let _ = async {
                    stdin.write_all(&line).await?;
                    stdin.write_all(&self.rules).await?;
                    stdin.shutdown().await
                }
                .await;
            }
            child.wait().await
        };
        let status = match tokio::time::timeout(self.timeout, ran).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                return Err(ContainError::Spawn {
                    program: self.program.display().to_string(),
                    source: e,
                });
            }
            Err(_) => {
                let _ = child.kill().await;
                return Err(ContainError::TimedOut(self.timeout.as_secs()));
            }
        };
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
        ] {
            assert!(
                crate::metrics::CHILD_FAILURES.contains(&e.reason()),
                "{e}: {}",
                e.reason()
            );
        }
    }
}
