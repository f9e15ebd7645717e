//! Real components for Coffer tests and for `coffer dev up`, started and torn down by their owner:
//!
//! - [`DevCa`]: a development certificate authority issuing mesh certificates (and deliberately bad
//!   ones for tests);
//! - [`Postgres`]: a throwaway PostgreSQL cluster from Debian's server binaries on a loopback port;
//! - [`S3`]: an embedded S3-compatible server (s3s + s3s-fs) that verifies SigV4, including
//!   presigned URLs, and enforces the SSE bucket policy of DESIGN.md;
//! - [`Clamd`]: a real clamd from Debian's `clamav-daemon` with a given signature directory.
//!
//! Nothing here is mocked: the point is to test against the real protocols.

mod ca;
mod clamd;
mod postgres;
mod s3;

pub use ca::{CertSpec, DevCa, IssuedCert};
pub use clamd::Clamd;
pub use postgres::{Postgres, PostgresOptions, random_secret};
pub use s3::{S3, S3Credentials};

/// Returns a free TCP port on 127.0.0.1 (bound and released; a small race is accepted).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
