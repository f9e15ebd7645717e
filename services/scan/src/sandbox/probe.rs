//! Test probes (feature `engine-probe`, never in a release): a file whose first line is
//! `COFFER-ENGINE-PROBE <what> <argument>` makes the engine child, once contained, try what an
//! exploited parser would. When the attempt succeeds the child reports the file clean — the
//! attacker's win, which a test sees as a clean verdict; when it is refused the child aborts —
//! a crash, which the worker must survive. `none` succeeds by design, with a finding of its own
//! (`engine-probe`, suspicious): it shows the child runs probes and that a probe can win.

use std::io::Read as _;
use std::path::Path;

use crate::engines::local::LocalReport;

const MAGIC: &[u8] = b"COFFER-ENGINE-PROBE ";

/// Runs the probe the object names, if it names one; the child's exit code then.
pub fn run(object: &Path, dir: &Path) -> Option<i32> {
    let mut head = Vec::new();
    std::fs::File::open(object)
        .ok()?
        .take(4096)
        .read_to_end(&mut head)
        .ok()?;
    let rest = head.strip_prefix(MAGIC)?.to_vec();
    let line = std::str::from_utf8(&rest).ok()?.lines().next()?.trim();
    let (what, arg) = line.split_once(' ').unwrap_or((line, ""));
    let won = match what {
        "none" => Ok(()),
        // Read a file outside the job's directory (a secret of the service).
        "open" => std::fs::read(arg).map(drop),
        // Reach a port of the mesh.
        "connect" => std::net::TcpStream::connect(arg).map(drop),
        // Run a program; it would write the clean report itself.
        "exec" => {
            use std::os::unix::process::CommandExt as _;
            Err(std::process::Command::new(arg)
                .args([
                    "-c",
                    &format!("echo '{}' > {}", clean_json(&head), super::REPORT),
                ])
                .current_dir(dir)
                .exec())
        }
        // Start a thread (a second worker the filter must refuse).
        "thread" => std::thread::Builder::new()
            .spawn(|| ())
            .and_then(|h| h.join().map_err(|_| std::io::Error::other("joined"))),
        // Write outside the job's directory.
        "write" => std::fs::write(arg, b"x"),
        // Rewrite the object (which clamd may be reading meanwhile).
        "rewrite" => std::fs::OpenOptions::new()
            .write(true)
            .open(object)
            .map(drop),
        // Make a directory in `out/` (a tree the worker could not remove).
        "mkdir" => std::fs::create_dir(dir.join(super::OUT).join("d")),
        // Read what the worker's process shows of itself.
        "proc" => std::fs::read(format!("/proc/{}/environ", arg)).map(drop),
        // An fcntl command beyond descriptor and status flags (F_SETLK here; F_SETOWN and
        // F_SETSIG, which aim signals, are refused alike).
        "fcntl" => std::fs::File::open(object).and_then(|f| {
            let lock = nix::libc::flock {
                l_type: nix::libc::F_RDLCK as i16,
                l_whence: 0,
                l_start: 0,
                l_len: 0,
                l_pid: 0,
            };
            nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_SETLK(&lock))
                .map(drop)
                .map_err(std::io::Error::from)
        }),
        // Fill the disk, file after file, each under the per-file limit.
        "fill" => (|| -> std::io::Result<()> {
            let block = vec![7u8; 1 << 20];
            let mut i = 0u64;
            loop {
                std::fs::write(dir.join(super::OUT).join(format!("f{i}")), &block)?;
                i += 1;
            }
        })(),
        // Allocate and touch more than the child may.
        "memory" => {
            let n: usize = arg.parse().unwrap_or(usize::MAX);
            let mut v: Vec<u8> = Vec::new();
            v.try_reserve_exact(n)
                .map_err(|e| std::io::Error::other(e.to_string()))
                .map(|()| {
                    v.resize(n, 1);
                    std::hint::black_box(&v);
                })
        }
        // Spin past the CPU limit.
        "spin" => loop {
            std::hint::black_box(0u64);
        },
        _ => return None,
    };
    match won {
        Ok(()) => {
            let json = if what == "none" {
                probe_json(&head)
            } else {
                clean_json(&head)
            };
            let written = std::fs::write(dir.join(super::REPORT), json);
            Some(if written.is_ok() {
                super::exit::OK
            } else {
                super::exit::SCAN_ERROR
            })
        }
        Err(_) => std::process::abort(),
    }
}

/// A clean report on `object` (the whole probe file, under 4 KiB): its real size and hash, as
/// the worker checks them.
fn clean(object: &[u8]) -> LocalReport {
    use sha2::Digest as _;
    LocalReport {
        findings: Vec::new(),
        bytes: object.len() as u64,
        sha256: coffer_kit::hex::encode(&sha2::Sha256::digest(object)),
        detected: crate::engines::truetype::Detected::Unknown,
        images: None,
        took: Default::default(),
        landlock: String::new(),
    }
}

fn clean_json(object: &[u8]) -> String {
    serde_json::to_string(&clean(object)).unwrap_or_default()
}

fn probe_json(object: &[u8]) -> String {
    let mut report = clean(object);
    report.findings.push(crate::engines::Finding {
        engine: crate::engines::Engine::Yara,
        signature: "engine-probe".into(),
        verdict: crate::engines::Verdict::Suspicious,
    });
    serde_json::to_string(&report).unwrap_or_default()
}
