//! A real clamd from Debian's `clamav-daemon`, on a unix socket in a temporary directory, with a
//! database directory the caller gives (Coffer ships its own signatures: the official download
//! cannot work here, and clamd refuses to start without a database).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A running clamd; stopped when dropped.
#[derive(Debug)]
pub struct Clamd {
    child: tokio::process::Child,
    bin: PathBuf,
    conf: PathBuf,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

fn spawn(bin: &Path, conf: &Path) -> anyhow::Result<tokio::process::Child> {
    tokio::process::Command::new(bin)
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting clamd")
}

/// Where Debian puts clamd (also searched on PATH).
fn binary() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/sbin/clamd");
    if debian.is_file() {
        return Some(debian);
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("clamd"))
            .find(|c| c.is_file())
    })
}

impl Clamd {
    /// Starts clamd with the signatures in `database` and waits until it answers.
    pub async fn start(database: &Path) -> anyhow::Result<Clamd> {
        let bin = binary().context("clamd not found: run scripts/install-deps (clamav-daemon)")?;
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("clamd.sock");
        let conf = dir.path().join("clamd.conf");
        // No `User`: clamd keeps the caller's identity. Limits above any file the tests scan.
        std::fs::write(
            &conf,
            format!(
                "Foreground yes\nLocalSocket {}\nDatabaseDirectory {}\nLogFile {}\n\
                 TemporaryDirectory {}\nStreamMaxLength 4000M\nMaxFileSize 4000M\n\
                 MaxScanSize 4000M\nSelfCheck 0\n",
                socket.display(),
                database.canonicalize()?.display(),
                dir.path().join("clamd.log").display(),
                dir.path().display(),
            ),
        )?;
        let clamd = Clamd {
            child: spawn(&bin, &conf)?,
            bin,
            conf,
            socket,
            _dir: dir,
        };
        clamd.wait_answering().await?;
        Ok(clamd)
    }

    /// Kills clamd (SIGKILL), as a crash would; [`Clamd::start_again`] brings it back.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Starts clamd again on the same socket, with the same signatures, and waits until it
    /// answers.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        // A killed clamd leaves its socket file behind.
        let _ = std::fs::remove_file(&self.socket);
        self.child = spawn(&self.bin, &self.conf)?;
        self.wait_answering().await
    }

    async fn wait_answering(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if self.version().await.is_ok() {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "clamd did not answer within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The address for Coffer's `scan.clamd` setting.
    pub fn address(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn version(&self) -> anyhow::Result<String> {
        let mut s = tokio::net::UnixStream::connect(&self.socket).await?;
        s.write_all(b"zVERSION\0").await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        anyhow::ensure!(out.starts_with(b"ClamAV"), "unexpected reply");
        Ok(String::from_utf8_lossy(&out)
            .trim_end_matches('\0')
            .to_owned())
    }
}
