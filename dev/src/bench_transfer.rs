//! `coffer-dev bench-transfer`: the `coffer` client's `put` and `get` of one large file against
//! a running `coffer-dev up` mesh, next to the store's own raw PUT and GET of the same bytes in
//! the same run (aws-sdk-s3 with storage-signer's credentials, one streamed request each; the GET
//! written to a file and synced, as `coffer get` writes), with
//! the client's peak RSS (the child's `ru_maxrss`). BENCHMARKS.md has the figures.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct TransferArgs {
    /// The `coffer-dev up` state directory.
    #[arg(long, default_value = ".coffer")]
    dir: PathBuf,
    /// The `coffer` binary to measure (build it with --release).
    #[arg(long, default_value = "target/release/coffer")]
    coffer: PathBuf,
    /// The file's size in MiB.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Where the test file and the downloads go (default: a temporary directory).
    #[arg(long)]
    work: Option<PathBuf>,
}

/// Runs `coffer` with `args`; returns (seconds, the child's peak RSS in KiB: its `VmHWM`, the
/// high-water mark, read every 20 ms until it exits).
fn timed(
    coffer: &std::path::Path,
    env: &[(&str, &std::path::Path)],
    args: &[&str],
) -> anyhow::Result<(f64, i64)> {
    let started = Instant::now();
    let mut cmd = std::process::Command::new(coffer);
    cmd.args(args).stdout(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {}", coffer.display()))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0i64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let took = started.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "coffer {args:?}: {status}");
    Ok((took, peak))
}

pub async fn run(args: TransferArgs) -> anyhow::Result<()> {
    let info: Value = serde_json::from_slice(
        &std::fs::read(args.dir.join("dev.json"))
            .context("no dev.json: start `coffer-dev up` first")?,
    )?;
    let secrets = PathBuf::from(info["secrets_dir"].as_str().context("secrets_dir")?);
    let secret = |name: &str| -> anyhow::Result<String> {
        Ok(
            std::fs::read_to_string(secrets.join("storage-signer").join(name))?
                .trim()
                .to_owned(),
        )
    };
    let endpoint = info["s3_endpoint"].as_str().context("s3_endpoint")?;
    let s3 = coffer_testkit::S3::client_for(
        endpoint,
        &coffer_testkit::S3Credentials {
            access_key: secret("s3-access-key-id")?,
            secret_key: secret("s3-secret-access-key")?,
            region: "us-east-1".into(),
        },
    );
    let tmp = tempfile::tempdir()?;
    let work = args.work.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&work)?;
    let file = work.join("bench.bin");
    let size = args.mib << 20;
    {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..args.mib {
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut block);
            f.write_all(&block)?;
        }
        f.flush()?;
    }
    let mib = size as f64 / f64::from(1 << 20);

    // The store's own rate: one PUT and one GET of the same bytes, streamed.
    let key = format!("bench-raw/{}", uuid::Uuid::new_v4());
    let started = Instant::now();
    s3.put_object()
        .bucket("coffer")
        .key(&key)
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .content_length(size as i64)
        .body(aws_sdk_s3::primitives::ByteStream::from_path(&file).await?)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("the raw PUT: {e:?}"))?;
    let raw_put = started.elapsed().as_secs_f64();
    // The store's own upload in parts: the same bytes in 16 MiB parts, four at a time, as the
    // client sends them (a store may assemble the parts at complete: that cost is the store's).
    let key_mp = format!("bench-raw/{}", uuid::Uuid::new_v4());
    let started = Instant::now();
    let created = s3
        .create_multipart_upload()
        .bucket("coffer")
        .key(&key_mp)
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .send()
        .await?;
    let upload_id = created.upload_id().context("upload id")?.to_owned();
    let part = 16u64 << 20;
    let count = size.div_ceil(part);
    let parts: Vec<aws_sdk_s3::types::CompletedPart> = futures_util::stream::iter(1..=count)
        .map(|n| {
            let (s3, key, upload_id, file) =
                (s3.clone(), key_mp.clone(), upload_id.clone(), file.clone());
            async move {
                let offset = (n - 1) * part;
                let len = part.min(size - offset);
                let body = aws_sdk_s3::primitives::ByteStream::read_from()
                    .path(&file)
                    .offset(offset)
                    .length(aws_sdk_s3::primitives::Length::Exact(len))
                    .build()
                    .await?;
                let done = s3
                    .upload_part()
                    .bucket("coffer")
                    .key(&key)
                    .upload_id(&upload_id)
                    .part_number(n as i32)
                    .content_length(len as i64)
                    .body(body)
                    .send()
                    .await?;
                anyhow::Ok(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(n as i32)
                        .e_tag(done.e_tag().unwrap_or_default())
                        .build(),
                )
            }
        })
        .buffered(4)
        .try_collect()
        .await?;
    s3.complete_multipart_upload()
        .bucket("coffer")
        .key(&key_mp)
        .upload_id(&upload_id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .context("the raw upload in parts")?;
    let raw_parts = started.elapsed().as_secs_f64();
    let _ = s3
        .delete_object()
        .bucket("coffer")
        .key(&key_mp)
        .send()
        .await;

    // Written to a file and synced, as `coffer get` writes (it also hashes what it receives).
    let started = Instant::now();
    let mut got = s3
        .get_object()
        .bucket("coffer")
        .key(&key)
        .send()
        .await?
        .body;
    let mut n = 0u64;
    {
        use std::io::Write as _;
        let raw = std::fs::File::create(work.join("raw.bin"))?;
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, &raw);
        while let Some(chunk) = got.try_next().await? {
            n += chunk.len() as u64;
            out.write_all(&chunk)?;
        }
        out.flush()?;
        drop(out);
        raw.sync_all()?;
    }
    anyhow::ensure!(n == size, "the raw GET returned {n} bytes");
    let raw_get = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(work.join("raw.bin"));
    let _ = s3.delete_object().bucket("coffer").key(&key).send().await;

    // The client, logged in as the demo user in a config directory of its own.
    let config = work.join("config");
    let env = [("COFFER_CONFIG_DIR", config.as_path())];
    let gateway = info["gateway_url"].as_str().context("gateway_url")?;
    let ca = info["ca_cert"].as_str().context("ca_cert")?;
    let email = info["demo"]["email"].as_str().context("demo")?;
    let password = info["demo"]["password"].as_str().context("demo")?;
    let mut login = std::process::Command::new(&args.coffer)
        .args([
            "login",
            "--gateway",
            gateway,
            "--ca-cert",
            ca,
            "--email",
            email,
            "--password-stdin",
        ])
        .env("COFFER_CONFIG_DIR", &config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    {
        use std::io::Write as _;
        writeln!(login.stdin.take().context("stdin")?, "{password}")?;
    }
    anyhow::ensure!(login.wait()?.success(), "coffer login failed");
    let folder = format!("/bench-{}", uuid::Uuid::new_v4().simple());
    timed(&args.coffer, &env, &["mkdir", &folder])?;
    let file_s = file.display().to_string();
    let (put, put_rss) = timed(&args.coffer, &env, &["put", &file_s, "--to", &folder])?;
    // The download needs the verdict: waited for outside the timing.
    let remote = format!("{folder}/bench.bin");
    let deadline = Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let out = std::process::Command::new(&args.coffer)
            .args(["--json", "ls", &remote])
            .env("COFFER_CONFIG_DIR", &config)
            .output()?;
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["status"] == "available" {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "no verdict: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let back = work.join("back.bin");
    let back_s = back.display().to_string();
    let (get, get_rss) = timed(&args.coffer, &env, &["get", &remote, "-o", &back_s])?;
    timed(&args.coffer, &env, &["purge", &remote])?;
    let _ = std::fs::remove_file(&back);
    let _ = std::fs::remove_file(&file);

    println!("store {endpoint}, {mib:.0} MiB, one run each:");
    println!(
        "  raw PUT      {raw_put:6.2} s  {:7.1} MiB/s",
        mib / raw_put
    );
    println!(
        "  raw parts    {raw_parts:6.2} s  {:7.1} MiB/s  (16 MiB parts, 4 in flight, complete)",
        mib / raw_parts
    );
    println!(
        "  coffer put   {put:6.2} s  {:7.1} MiB/s  = {:.0} % of the raw PUT, {:.0} % of the raw parts; peak RSS {:.1} MiB (hashing the file first included)",
        mib / put,
        100.0 * raw_put / put,
        100.0 * raw_parts / put,
        put_rss as f64 / 1024.0
    );
    println!(
        "  raw GET      {raw_get:6.2} s  {:7.1} MiB/s",
        mib / raw_get
    );
    println!(
        "  coffer get   {get:6.2} s  {:7.1} MiB/s  = {:.0} % of the raw GET; peak RSS {:.1} MiB",
        mib / get,
        100.0 * raw_get / get,
        get_rss as f64 / 1024.0
    );
    Ok(())
}
