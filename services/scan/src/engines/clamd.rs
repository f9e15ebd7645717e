//! ClamAV through clamd's INSTREAM protocol, over TCP (`tcp://host:port`) or a unix socket
//! (`unix:///path`). The file is streamed in chunks from disk; clamd's reply names the signature.
//! clamd's `StreamMaxLength` must be at least the largest file scanned, or the scan errors (and
//! the job is retried, then `failed`), which is safer than skipping the engine.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::{Engine, Finding, Verdict};

const CHUNK: usize = 256 * 1024;
/// The longest reply accepted from clamd.
const MAX_REPLY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    #[error("clamd address must be tcp://host:port or unix:///path, not {0:?}")]
    Address(String),
    #[error("clamd unreachable: {0}")]
    Unreachable(std::io::Error),
    #[error("clamd i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("clamd timed out")]
    Timeout,
    #[error("clamd answered an error: {0}")]
    Refused(String),
}

#[derive(Debug, Clone)]
pub struct Clamd {
    address: Address,
    timeout: Duration,
}

#[derive(Debug, Clone)]
enum Address {
    Tcp(String),
    Unix(std::path::PathBuf),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Clamd {
    pub fn new(address: &str, timeout: Duration) -> Result<Clamd, ClamdError> {
        let address = if let Some(a) = address.strip_prefix("tcp://") {
            Address::Tcp(a.to_owned())
        } else if let Some(p) = address.strip_prefix("unix://") {
            Address::Unix(p.into())
        } else {
            return Err(ClamdError::Address(address.to_owned()));
        };
        Ok(Clamd { address, timeout })
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, ClamdError> {
        Ok(match &self.address {
            Address::Tcp(a) => Box::new(
                tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(ClamdError::Unreachable)?,
            ),
            Address::Unix(p) => Box::new(
                tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(ClamdError::Unreachable)?,
            ),
        })
    }

    /// clamd's version line (`ClamAV 1.4.3/…`), recorded with each verdict.
    pub async fn version(&self) -> Result<String, ClamdError> {
        tokio::time::timeout(self.timeout, async {
            let mut s = self.connect().await?;
            s.write_all(b"zVERSION\0").await?;
            read_reply(&mut s).await
        })
        .await
        .map_err(|_| ClamdError::Timeout)?
    }

    /// Streams the open file to clamd and adds its finding, if any.
    pub async fn scan(
        &self,
        mut file: tokio::fs::File,
        findings: &mut Vec<Finding>,
    ) -> Result<(), ClamdError> {
        let reply = tokio::time::timeout(self.timeout, async {
            let mut s = self.connect().await?;
            s.write_all(b"zINSTREAM\0").await?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                let len = u32::try_from(n).expect("chunk fits u32");
                s.write_all(&len.to_be_bytes()).await?;
                s.write_all(&buf[..n]).await?;
            }
            s.write_all(&0u32.to_be_bytes()).await?;
            read_reply(&mut s).await
        })
        .await
        .map_err(|_| ClamdError::Timeout)??;
        let body = reply.strip_prefix("stream: ").unwrap_or(&reply);
        if body == "OK" {
            return Ok(());
        }
        if let Some(sig) = body.strip_suffix(" FOUND") {
            findings.push(Finding {
                engine: Engine::Clamav,
                signature: sig.chars().take(200).collect(),
                verdict: Verdict::Infected,
            });
            return Ok(());
        }
        Err(ClamdError::Refused(body.chars().take(200).collect()))
    }
}

async fn read_reply(s: &mut Box<dyn Stream>) -> Result<String, ClamdError> {
    let mut reply = Vec::new();
    let mut byte = [0u8; 256];
    loop {
        let n = s.read(&mut byte).await?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&byte[..n]);
        if reply.contains(&0) || reply.len() > MAX_REPLY {
            break;
        }
    }
    if let Some(end) = reply.iter().position(|b| *b == 0) {
        reply.truncate(end);
    }
    Ok(String::from_utf8_lossy(&reply).trim().to_owned())
}
