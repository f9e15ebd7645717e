//! The engine sandbox. The content engines (YARA-X, archives, true type, sensitive data, images)
//! parse hostile bytes, and the scan worker can mint service tokens for any org: the engines run
//! in a child process that holds none of that.
//!
//! For each file the worker starts a fresh `coffer-scan engine-child` ([`child`]: the same
//! binary, its environment emptied) and writes it one [`Request`] and the compiled rules on its
//! stdin. The child loads the rules, then contains itself ([`contain`]): resource limits,
//! `no_new_privs`, a Landlock domain that reaches nothing but the job's own directory (and the
//! model file, read-only) and no TCP port, and a seccomp allow-list (no sockets, no `execve`, no
//! new processes or threads, no signals to others). Only then does it open the object; it writes
//! its report into the job's directory and exits. One child per file, freshly executed: a file
//! that took a child over cannot lie about the next file, of another org, and each child gets
//! an address space laid out anew. A crash or a limit hit is a failed try of that job; the
//! worker goes on ([`run`]).

pub mod child;
pub mod contain;
#[cfg(feature = "engine-probe")]
mod probe;
pub mod run;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engines::archive::ArchiveLimits;
use crate::engines::local::Declared;
use crate::engines::nsfw::{NsfwConfig, NsfwSettings};

pub use run::{ContainError, Sandbox};

/// Bumped on any change of the messages below: a child of another build refuses the request.
pub const PROTOCOL: u32 = 1;

/// Whether this build runs the test probes (feature `engine-probe`, tests only).
pub const PROBES: bool = cfg!(feature = "engine-probe");

/// A job's directory holds the object (0400; the child may only read it) and `out/`, the only
/// place the child may write: its report, its error, and `out/unpack/` for the archive engine.
/// The worker makes them all before the child starts; the child can make no directory.
pub const OBJECT: &str = "object";
pub const OUT: &str = "out";
pub const REPORT: &str = "out/report.json";
pub const ERROR: &str = "out/error";
pub const UNPACK: &str = "out/unpack";
/// What the child writes on its stdout once it is sealed: from then on, an exit code that says
/// "not contained" or "bad request" is a crash (the child's word no longer counts).
pub const SEALED: u8 = b'S';

/// The `[scan.sandbox]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// The program run as the engine child with the argument `engine-child`: this
    /// `coffer-scan` binary when unset.
    pub program: Option<PathBuf>,
    /// CPU seconds one file may take in its child (then SIGXCPU, and SIGKILL 2 s later).
    pub cpu_secs: u64,
    /// Wall-clock seconds one file may take; then its child is killed.
    pub timeout_secs: u64,
    /// Bytes of address space the child may map (`RLIMIT_AS`: its binary, the rules, the model
    /// and every buffer of the engines).
    pub memory_bytes: u64,
    /// Bytes the child may write in all (archive members unpacked for a second look, its
    /// report): one file at most this (`RLIMIT_FSIZE`), and the worker kills a child whose
    /// directory holds more, or more than 10 000 files.
    pub disk_bytes: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            program: None,
            cpu_secs: 120,
            timeout_secs: 300,
            memory_bytes: 1 << 30,
            disk_bytes: 2 << 30,
        }
    }
}

/// What a child is asked to do; the compiled rules follow on stdin (`rules_len` bytes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub protocol: u32,
    /// The job's directory: it holds [`OBJECT`], and the child's report goes there.
    pub dir: PathBuf,
    pub declared: Declared,
    pub nsfw: NsfwSettings,
    pub ruleset: String,
    pub rules_len: u64,
    pub archive: ArchiveLimits,
    /// The model and its limits (loaded by the child only when it meets an image).
    pub model: NsfwConfig,
    pub limits: Limits,
}

/// What one child may use.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub cpu_secs: u64,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
}

impl From<&SandboxConfig> for Limits {
    fn from(c: &SandboxConfig) -> Limits {
        Limits {
            cpu_secs: c.cpu_secs,
            memory_bytes: c.memory_bytes,
            disk_bytes: c.disk_bytes,
        }
    }
}

/// The child's exit codes.
pub mod exit {
    /// The report is in the job's directory.
    pub const OK: i32 = 0;
    /// A scan error (reading the file, a rule failing): the message is in [`super::ERROR`].
    pub const SCAN_ERROR: i32 = 2;
    /// The sandbox could not be entered: nothing was read.
    pub const NOT_CONTAINED: i32 = 3;
    /// The child panicked.
    pub const PANICKED: i32 = 4;
    /// The request was not understood (another build's, or no rules).
    pub const BAD_REQUEST: i32 = 5;
}
