//! Real components for Coffer tests and for `coffer-dev up`, started and torn down by their owner:
//!
//! - [`DevCa`]: a development certificate authority issuing mesh certificates (and deliberately bad
//!   ones for tests);
//! - [`Postgres`]: a throwaway PostgreSQL cluster from Debian's server binaries on a loopback port;
//! - [`S3`]: an embedded S3-compatible server (s3s + s3s-fs) that verifies SigV4, including
//!   presigned URLs, and enforces the SSE bucket policy of DESIGN.md;
//! - [`SeaweedFs`]: SeaweedFS's own S3 gateway (`weed server -s3`), the second implementation the
//!   storage tests run against;
//! - [`Clamd`]: a real clamd from Debian's `clamav-daemon` with a given signature directory;
//! - [`secrets::provision`]: a service's secrets directory, from the service's own description.
//!
//! Nothing here is mocked: the point is to test against the real protocols.

mod ca;
mod clamd;
mod otlp;
mod postgres;
mod s3;
mod seaweed;
pub mod secrets;

pub use ca::{CertSpec, DevCa, IssuedCert};
pub use clamd::Clamd;
pub use otlp::{CollectedSpan, OtlpCollector};
pub use postgres::{Postgres, PostgresOptions, random_secret};
pub use s3::{CORS_ALLOWED_HEADERS, CORS_ALLOWED_METHODS, S3, S3Credentials};
pub use seaweed::{SeaweedFs, weed_binary};

/// The NSFW engine's converted model: `$COFFER_NSFW_MODEL`, else where scripts/install-deps
/// writes it (`~/.cache/coffer-tools/nsfw/mobilenet_v2.safetensors`).
pub fn nsfw_model() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("COFFER_NSFW_MODEL") {
        return p.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    std::path::PathBuf::from(home).join(".cache/coffer-tools/nsfw/mobilenet_v2.safetensors")
}

/// A binary of this workspace, built beside the running test (`target/<profile>/<name>`): how a
/// service started in a test's process finds a program of its own to run (the scan service's
/// engine child). A workspace test run builds every binary; a focused one may need
/// `cargo build --bins` first, which the panic says.
pub fn workspace_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("a test binary under target/<profile>/deps");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build --bins` (a workspace test run builds it)",
        bin.display()
    );
    bin
}

/// Runs `cleanup` (a shell script) once this process is gone, in a process group of its own so
/// that a signal to the tests' group spares it: how a server a test started is stopped, and its
/// files removed, when the test is killed before it can drop the server.
pub(crate) fn after_exit(cleanup: &str, what: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::os::unix::process::CommandExt as _;
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; {cleanup}",
        std::process::id()
    );
    std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start the {what} watchdog"))?;
    Ok(())
}

/// An S3-compatible server a test runs against: the embedded one or SeaweedFS.
pub trait ObjectStore: Send + Sync {
    /// Its S3 endpoint, path-style.
    fn endpoint(&self) -> String;
    fn credentials(&self) -> &S3Credentials;
    /// An `aws-sdk-s3` client for it.
    fn client(&self) -> aws_sdk_s3::Client;
    /// Lets a browser origin send presigned requests (CORS), where the store is told so.
    fn allow_origin(&self, _origin: &str) {}
}

impl ObjectStore for S3 {
    fn endpoint(&self) -> String {
        S3::endpoint(self)
    }
    fn credentials(&self) -> &S3Credentials {
        S3::credentials(self)
    }
    fn client(&self) -> aws_sdk_s3::Client {
        S3::client(self)
    }
    fn allow_origin(&self, origin: &str) {
        S3::allow_origin(self, origin)
    }
}

impl ObjectStore for SeaweedFs {
    fn endpoint(&self) -> String {
        SeaweedFs::endpoint(self)
    }
    fn credentials(&self) -> &S3Credentials {
        SeaweedFs::credentials(self)
    }
    fn client(&self) -> aws_sdk_s3::Client {
        SeaweedFs::client(self)
    }
}

/// Returns a free TCP port on 127.0.0.1 for a server that must know its address before it
/// starts (bound and released). It is picked at random *outside* the kernel's ephemeral range:
/// inside it, any `bind(0)` or outgoing connection of a test running alongside could be handed
/// the port before its server binds it (seen in CI: "Address already in use" a second later).
/// Outside it only another caller of this function could, and each picks at random. Within one
/// process a port is handed out once: a launcher picks all its ports before any server binds
/// one, so "free" alone could give two services the same port (seen in CI: a service's health
/// check answered by another's server).
pub fn free_port() -> std::io::Result<u16> {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    let port = pick_port(&given)?;
    given.insert(port);
    Ok(port)
}

fn pick_port(given: &std::collections::BTreeSet<u16>) -> std::io::Result<u16> {
    use rand::Rng as _;
    let (low, high) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| {
            let mut it = r.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    let (from, to) = if low > 11_000 {
        (10_000, low)
    } else {
        (high.saturating_add(1), u16::MAX)
    };
    let mut rng = rand::rng();
    for _ in 0..200 {
        if from >= to {
            break;
        }
        let port = rng.random_range(from..to);
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod port_tests {
    #[test]
    fn a_port_is_handed_out_once_per_process() {
        let ports: std::collections::BTreeSet<u16> =
            (0..500).map(|_| super::free_port().unwrap()).collect();
        assert_eq!(ports.len(), 500);
    }
}
