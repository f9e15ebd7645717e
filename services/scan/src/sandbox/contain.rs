//! What an engine child does to itself before it reads a byte of the file: resource limits, to
//! be the first the kernel's OOM killer takes, its stdin and stderr to /dev/null, any other
//! descriptor closed, `no_new_privs`, a Landlock domain reaching only its `out/` directory and
//! the object (read) and the model file (read), and a seccomp allow-list. Each step that fails
//! stops the child before the file is opened.

use std::collections::BTreeMap;
use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use nix::sys::resource::{Resource, setrlimit};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::{Limits, OBJECT, OUT};

#[derive(Debug, thiserror::Error)]
pub enum ContainError {
    #[error("setting a resource limit: {0}")]
    Rlimit(nix::Error),
    #[error("redirecting the standard streams: {0}")]
    Streams(std::io::Error),
    #[error("listing open descriptors: {0}")]
    Descriptors(std::io::Error),
    #[error("the child runs {0} threads: the filter would hold one only")]
    Threads(usize),
    #[error("Landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    #[error("Landlock is not enforced by this kernel (Linux 5.13 or later with Landlock enabled)")]
    NoLandlock,
    #[error("seccomp: {0}")]
    Seccomp(#[from] seccompiler::Error),
    #[error("seccomp: {0}")]
    Filter(#[from] seccompiler::BackendError),
    #[error("seccomp is not available for the architecture {0}")]
    Arch(&'static str),
    #[error("{0}")]
    Prctl(nix::Error),
}

/// The newest Landlock ABI asked for: rights the kernel does not know are dropped (best
/// effort: the seccomp filter alone already refuses sockets and signals), but a kernel without
/// Landlock at all is refused.
const LANDLOCK_ABI: ABI = ABI::V6;

/// How much of Landlock the kernel enforced.
pub type Enforced = RulesetStatus;

/// Everything but the seccomp filter, which [`seal`] applies last.
pub fn enter(dir: &Path, model: Option<&Path>, limits: &Limits) -> Result<Enforced, ContainError> {
    // Dies with the worker, whatever happens to it.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(ContainError::Prctl)?;
    // When memory runs short in the pod, the kernel kills a child before the worker.
    let _ = std::fs::write("/proc/self/oom_score_adj", b"1000");
    let set = |r, soft: u64, hard: u64| setrlimit(r, soft, hard).map_err(ContainError::Rlimit);
    set(Resource::RLIMIT_CORE, 0, 0)?;
    set(
        Resource::RLIMIT_CPU,
        limits.cpu_secs,
        limits.cpu_secs.saturating_add(2),
    )?;
    set(
        Resource::RLIMIT_AS,
        limits.memory_bytes,
        limits.memory_bytes,
    )?;
    set(Resource::RLIMIT_FSIZE, limits.disk_bytes, limits.disk_bytes)?;
    set(Resource::RLIMIT_NOFILE, 64, 64)?;
    quiet_streams()?;
    close_others()?;
    let threads = std::fs::read_dir("/proc/self/task")
        .map_err(ContainError::Descriptors)?
        .count();
    if threads != 1 {
        return Err(ContainError::Threads(threads));
    }
    nix::sys::prctl::set_no_new_privs().map_err(ContainError::Prctl)?;
    landlock(dir, model)
}

/// stdin and stderr to /dev/null; stdout stays the worker's pipe, for [`super::SEALED`].
fn quiet_streams() -> Result<(), ContainError> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(ContainError::Streams)?;
    let io = |e: nix::Error| ContainError::Streams(e.into());
    nix::unistd::dup2_stdin(&null).map_err(io)?;
    nix::unistd::dup2_stderr(&null).map_err(io)?;
    Ok(())
}

/// Closes any descriptor beyond the standard three (a spawned child should inherit none: Rust
/// opens everything close-on-exec; this holds whoever starts it).
fn close_others() -> Result<(), ContainError> {
    let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(ContainError::Descriptors)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in open.into_iter().filter(|fd| *fd > 2) {
        // The listing's own descriptor is already closed: EBADF, ignored.
        let _ = nix::unistd::close(fd);
    }
    Ok(())
}

/// A domain where regular files may be read, written, made and removed beneath `dir/out` only
/// (no directory, link, FIFO, socket or device made, nothing moved in or out, nothing run), the
/// object and the model read; no TCP port may be bound or connected to; no abstract socket or
/// signal reaches outside.
pub fn landlock(dir: &Path, model: Option<&Path>) -> Result<Enforced, ContainError> {
    let abi = LANDLOCK_ABI;
    let read = BitFlags::from(AccessFs::ReadFile);
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::from_all(abi))?
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules([dir.join(OUT)], out_rights(abi)))?
        .add_rules(path_beneath_rules([dir.join(OBJECT)], read))?
        .add_rules(path_beneath_rules(model, read))?
        .restrict_self()?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err(ContainError::NoLandlock);
    }
    Ok(status.ruleset)
}

/// What a child may do beneath `out/`.
fn out_rights(abi: ABI) -> BitFlags<AccessFs> {
    AccessFs::from_all(abi)
        & (AccessFs::ReadFile
            | AccessFs::WriteFile
            | AccessFs::ReadDir
            | AccessFs::RemoveFile
            | AccessFs::MakeReg
            | AccessFs::Truncate)
}

/// Installs the allow-list. Anything else fails with `EPERM`: `socket`, `execve`, `fork` and
/// `clone` (no threads either), `kill` (the child may only abort itself), `mkdir`, links,
/// `chmod`, `ptrace`, `mount`, `bpf`, `io_uring`, `ioctl`, …; `fcntl` only for descriptor and
/// status flags (no `F_SETOWN`/`F_SETSIG`/`F_NOTIFY`/`F_SETLEASE`, which send signals);
/// `mmap`/`mprotect` never executable (YARA-X's code was mapped before).
pub fn seal() -> Result<(), ContainError> {
    let program = filter()?;
    seccompiler::apply_filter_all_threads(&program)?;
    Ok(())
}

fn filter() -> Result<BpfProgram, ContainError> {
    use nix::libc;
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| ContainError::Arch(std::env::consts::ARCH))?;
    let mut allowed: Vec<i64> = vec![
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_pread64,
        libc::SYS_pwrite64,
        libc::SYS_lseek,
        libc::SYS_close,
        libc::SYS_openat,
        libc::SYS_newfstatat,
        libc::SYS_fstat,
        libc::SYS_statx,
        libc::SYS_getdents64,
        libc::SYS_unlinkat,
        libc::SYS_ftruncate,
        libc::SYS_fsync,
        libc::SYS_fdatasync,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_futex,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_sigaltstack,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_getrandom,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_gettimeofday,
        libc::SYS_sched_yield,
        libc::SYS_sched_getaffinity,
        libc::SYS_getpid,
        libc::SYS_gettid,
    ];
    #[cfg(target_arch = "x86_64")]
    allowed.extend([
        libc::SYS_open,
        libc::SYS_stat,
        libc::SYS_lstat,
        libc::SYS_unlink,
    ]);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        allowed.into_iter().map(|s| (s, Vec::new())).collect();
    let arg = |index: u8, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(index, SeccompCmpArgLen::Dword, op, value)
    };
    // abort(): a signal to this very process only.
    rules.insert(
        libc::SYS_tgkill,
        vec![SeccompRule::new(vec![arg(
            0,
            SeccompCmpOp::Eq,
            u64::from(std::process::id()),
        )?])?],
    );
    // Descriptor and status flags only.
    rules.insert(
        libc::SYS_fcntl,
        [
            libc::F_GETFD,
            libc::F_SETFD,
            libc::F_GETFL,
            libc::F_SETFL,
            libc::F_DUPFD_CLOEXEC,
        ]
        .into_iter()
        .map(|cmd| SeccompRule::new(vec![arg(1, SeccompCmpOp::Eq, cmd as u64)?]))
        .collect::<Result<_, _>>()?,
    );
    // Memory, never executable.
    let no_exec = || -> Result<Vec<SeccompRule>, ContainError> {
        Ok(vec![SeccompRule::new(vec![arg(
            2,
            SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64),
            0,
        )?])?])
    };
    rules.insert(libc::SYS_mmap, no_exec()?);
    rules.insert(libc::SYS_mprotect, no_exec()?);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )?;
    Ok(filter.try_into()?)
}
