//! Test probes (feature `engine-probe`, never in a release): a file whose first line is
//! `COFFER-ENGINE-PROBE <what> <argument>` makes the engine child, once contained, try what an
//! exploited parser would. When the attempt succeeds the child reports the file clean — the
//! attacker's win, which a test sees as a clean verdict; when it is refused the child aborts —
//! a crash, which the worker must survive. `none` succeeds by design: it shows a probe can win.

use std::io::Read as _;
use std::path::Path;

use crate::scanner::LocalReport;

const MAGIC: &[u8] = b"COFFER-ENGINE-PROBE ";

/// Runs the probe the object names, if it names one; the child's exit code then.
pub fn run(object: &Path, dir: &Path) -> Option<i32> {
    let mut head = Vec::new();
    std::fs::File::open(object)
        .ok()?
        .take(4096)
        .read_to_end(&mut head)
        .ok()?;
    let rest = head.strip_prefix(MAGIC)?;
    let line = std::str::from_utf8(rest).ok()?.lines().next()?.trim();
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
                .args(["-c", &format!("echo '{}' > report.json", clean_json())])
                .current_dir(dir)
                .exec())
        }
        // Start a thread (a second worker the filter must refuse).
        "thread" => std::thread::Builder::new()
            .spawn(|| ())
            .and_then(|h| h.join().map_err(|_| std::io::Error::other("joined"))),
        // Write outside the job's directory.
        "write" => std::fs::write(arg, b"x"),
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
            let written = std::fs::write(dir.join(super::REPORT), clean_json());
            Some(if written.is_ok() {
                super::exit::OK
            } else {
                super::exit::SCAN_ERROR
            })
        }
        Err(_) => std::process::abort(),
    }
}

fn clean_json() -> String {
    serde_json::to_string(&LocalReport::empty_clean()).unwrap_or_default()
}
