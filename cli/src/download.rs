//! `coffer get`: the presigned GET streamed into a new, private temporary file beside the target
//! (random name, mode 0600, created exclusively), hashed on the way, and moved into place only
//! when its SHA-256 is the one the server recorded at the scan — never over an existing file
//! unless `--force`.

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

/// Downloads `file` to `target`; returns the SHA-256 verified.
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
    // Errors of the store's client never carry the URL: it is a working link for five minutes.
    let res = api
        .store
        .get(&dl.url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("the store cannot be reached: {}", e.without_url()))?;
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
    let mut partial = match target {
        Target::Stdout => None,
        Target::Path(p) => Some(
            tempfile::Builder::new()
                .prefix(".coffer-")
                .suffix(".partial")
                .tempfile_in(parent_of(p))
                .with_context(|| format!("writing beside {}", p.display()))?,
        ),
    };
    let mut out: Box<dyn std::io::Write + Send> = match &partial {
        None => Box::new(std::io::BufWriter::with_capacity(
            256 * 1024,
            std::io::stdout(),
        )),
        Some(t) => Box::new(std::io::BufWriter::with_capacity(
            256 * 1024,
            t.as_file().try_clone()?,
        )),
    };
    let mut body = res.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| anyhow::anyhow!("the download broke off: {}", e.without_url()))?;
        crate::pace::wait(chunk.len() as u64).await;
        received += chunk.len() as u64;
        anyhow::ensure!(
            received <= file.size,
            "the store sent more than the file's {} bytes: nothing was kept",
            file.size
        );
        hasher.update(&chunk);
        out.write_all(&chunk)?;
        bar.add(chunk.len() as u64);
    }
    out.flush()?;
    drop(out);
    let got = format!("{:x}", hasher.finalize());
    if received != file.size || !got.eq_ignore_ascii_case(&expected) {
        let kept = if partial.is_some() {
            "nothing was kept"
        } else {
            "do not use what was written"
        };
        anyhow::bail!(
            "the bytes received ({received} bytes, SHA-256 {got}) are not the file the server recorded ({} bytes, SHA-256 {expected}): {kept}",
            file.size
        );
    }
    if let (Some(t), Target::Path(p)) = (partial.take(), target) {
        t.as_file().sync_all()?;
        let placed = if force {
            t.persist(p).map(|_| ())
        } else {
            t.persist_noclobber(p).map(|_| ())
        };
        placed
            .map_err(|e| e.error)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(got)
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}
