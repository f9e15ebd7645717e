//! `coffer get`: the presigned GET streamed to a temporary file beside the target, hashed on the
//! way, and renamed into place only when its SHA-256 is the one the server recorded at the scan.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use sha2::Digest as _;

use crate::client::Api;
use crate::model::{Download, File};
use crate::progress::Progress;

pub enum Target {
    Stdout,
    Path(PathBuf),
}

/// Downloads `file` to `target` (an existing file there is replaced only with `force`).
pub async fn get(
    api: &Api,
    file: &File,
    target: &Target,
    force: bool,
    bar: &Progress,
) -> anyhow::Result<String> {
    let expected = file.sha256.clone().context(
        "the server has recorded no SHA-256 for this file (not scanned yet?): nothing to verify against",
    )?;
    if let Target::Path(p) = target {
        anyhow::ensure!(
            force || !p.exists(),
            "{} exists: give another -o or --force to replace it",
            p.display()
        );
    }
    let dl: Download = api.get(&format!("/v1/files/{}/download", file.id)).await?;
    let res = api
        .store
        .get(&dl.url)
        .send()
        .await
        .context("the store cannot be reached")?;
    let status = res.status();
    if !status.is_success() {
        let text = res.text().await.unwrap_or_default();
        anyhow::bail!(
            "the store refused the download: HTTP {status} {}",
            crate::upload::s3_code(&text)
        );
    }
    let mut hasher = sha2::Sha256::new();
    let mut received = 0u64;
    let (mut out, partial): (Box<dyn std::io::Write + Send>, Option<PathBuf>) = match target {
        Target::Stdout => (
            Box::new(std::io::BufWriter::with_capacity(
                256 * 1024,
                std::io::stdout(),
            )),
            None,
        ),
        Target::Path(p) => {
            let partial = partial_path(p);
            let f = std::fs::File::create(&partial)
                .with_context(|| format!("writing {}", partial.display()))?;
            (
                Box::new(std::io::BufWriter::with_capacity(256 * 1024, f)),
                Some(partial),
            )
        }
    };
    let mut body = res.bytes_stream();
    let result: anyhow::Result<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.context("the download broke off")?;
            crate::pace::wait(chunk.len() as u64).await;
            hasher.update(&chunk);
            out.write_all(&chunk)?;
            received += chunk.len() as u64;
            bar.add(chunk.len() as u64);
        }
        out.flush()?;
        Ok(())
    }
    .await;
    drop(out);
    let cleanup = |p: &Option<PathBuf>| {
        if let Some(p) = p {
            let _ = std::fs::remove_file(p);
        }
    };
    if let Err(e) = result {
        cleanup(&partial);
        return Err(e);
    }
    let got = format!("{:x}", hasher.finalize());
    if received != file.size || !got.eq_ignore_ascii_case(&expected) {
        cleanup(&partial);
        anyhow::bail!(
            "the bytes received ({received} bytes, SHA-256 {got}) are not the file the server recorded ({} bytes, SHA-256 {expected}): nothing was kept",
            file.size
        );
    }
    if let (Some(partial), Target::Path(p)) = (partial, target) {
        std::fs::rename(&partial, p).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(got)
}

fn partial_path(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    p.with_file_name(format!(".{name}.coffer-partial"))
}
