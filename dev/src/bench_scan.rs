//! The scan service's benchmarks for BENCHMARKS.md:
//! (f) time from `complete` to the verdict's live event, for 1 MiB and 10 MiB files, one file at
//!     a time, through the running `coffer-dev up` mesh;
//! (g) the scan process's RSS while it scans one 2 GiB upload;
//! (h) offline: the YARA-X block pass (and Coffer's whole content pass) against Debian's `yara`
//!     command, same rules, same corpus, one thread each.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::RngCore as _;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::client::Client;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Opens `/v1/events` and forwards each `data` line's file or scan id with its arrival time.
async fn events(client: &Client) -> anyhow::Result<mpsc::UnboundedReceiver<(String, Instant)>> {
    use futures_util::StreamExt as _;
    let res = client
        .req(reqwest::Method::GET, "/v1/events")
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "/v1/events: {}", res.status());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut body = res.bytes_stream();
        let mut text = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            let now = Instant::now();
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: "))
                    && let Ok(v) = serde_json::from_str::<Value>(data)
                    && let Some(id) = v["data"]["file_id"].as_str()
                {
                    let _ = tx.send((id.to_owned(), now));
                }
            }
        }
    });
    Ok(rx)
}

/// Waits for `id`'s event.
async fn wait_event(
    rx: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    id: &str,
) -> anyhow::Result<Instant> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let (got, at) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .context("no verdict event within 600 s")?
            .context("the event stream ended")?;
        if got == id {
            return Ok(at);
        }
    }
}

/// (f) complete → verdict event, `n` files of each size, one at a time.
pub async fn latency(
    client: &Client,
    n: usize,
    push: &mut impl FnMut(String),
) -> anyhow::Result<()> {
    let mut rx = events(client).await?;
    push(String::new());
    push("| file | files | verdict p50 ms | verdict p99 ms | max ms |".to_owned());
    push("|---|---|---|---|---|".to_owned());
    for size in [1usize << 20, 10 << 20] {
        let mut bytes = vec![0u8; size];
        rand::rng().fill_bytes(&mut bytes);
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let mut lat = Vec::with_capacity(n);
        for i in 0..n {
            // Numbers of their own: the download bench's file is number 0.
            let id = client
                .create_and_put(1_000_000 + (size as u64 >> 20) * 10_000 + i as u64, bytes)
                .await?;
            let t0 = Instant::now();
            client.complete(&id).await?;
            let at = wait_event(&mut rx, &id).await?;
            lat.push(at.saturating_duration_since(t0));
            client.purge(&id).await?;
        }
        lat.sort();
        push(format!(
            "| {} MiB random | {n} | {:.1} | {:.1} | {:.1} |",
            size >> 20,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        ));
    }
    Ok(())
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Completes `id` and samples the scan process's RSS until its verdict event: (seconds, RSS
/// before, peak RSS) in KiB.
async fn scan_peak(
    client: &Client,
    pid: u32,
    rx: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    id: &str,
) -> anyhow::Result<(f64, u64, u64)> {
    let before = status_kib(pid, "VmRSS:").context("cannot read the scan service's RSS")?;
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(kib) = status_kib(pid, "VmRSS:") {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let t0 = Instant::now();
    client.complete(id).await?;
    let at = wait_event(rx, id).await?;
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    client.purge(id).await?;
    Ok((
        at.saturating_duration_since(t0).as_secs_f64(),
        before,
        peak.load(Ordering::Relaxed),
    ))
}

/// (g) the scan process's RSS while it downloads and scans one `gib` GiB upload, then two zip
/// bombs (a 1 GiB run of zeros, about 1000:1; nested zips six deep).
pub async fn rss(
    client: &Client,
    info: &Value,
    gib: u64,
    push: &mut impl FnMut(String),
) -> anyhow::Result<()> {
    use coffer_scan::engines::archive::build;
    let pid = info["pids"]["scan"].as_u64().context("no scan pid")? as u32;
    let mut rx = events(client).await?;
    push(String::new());
    push(
        "| upload | bytes stored | complete → verdict s | scan RSS before MiB | peak MiB |"
            .to_owned(),
    );
    push("|---|---|---|---|---|".to_owned());
    let size = gib << 30;
    let id = client.create_and_put_stream(size).await?;
    let (secs, before, peak) = scan_peak(client, pid, &mut rx, &id).await?;
    push(format!(
        "| {gib} GiB, one random MiB repeated | {size} | {secs:.1} ({:.0} MiB/s) | {:.1} | {:.1} |",
        (size >> 20) as f64 / secs,
        before as f64 / 1024.0,
        peak as f64 / 1024.0
    ));
    for (n, what, bytes) in [
        (
            2_000_001,
            "zip: 1 GiB of zeros",
            build::zeros("zeros.bin", 1 << 30),
        ),
        (
            2_000_002,
            "zip: nested 6 deep, 2 per level",
            build::nested_bomb(6, 2, 8 << 20),
        ),
    ] {
        let len = bytes.len();
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let id = client.create_and_put(n, bytes).await?;
        let (secs, before, peak) = scan_peak(client, pid, &mut rx, &id).await?;
        push(format!(
            "| {what} | {len} | {secs:.2} | {:.1} | {:.1} |",
            before as f64 / 1024.0,
            peak as f64 / 1024.0
        ));
    }
    push(String::new());
    push(format!(
        "Scan process high-water mark (VmHWM, whole run): {:.1} MiB.",
        status_kib(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0
    ));
    Ok(())
}

/// (h) YARA-X against the `yara` command on the same rules and corpus.
pub fn engines(corpus_mib: usize, push: &mut impl FnMut(String)) -> anyhow::Result<()> {
    use coffer_scan::engines::content::Pass;
    use coffer_scan::engines::sensitive::Patterns;
    use coffer_scan::engines::yara::{Ruleset, shipped_sources};

    let dir = tempfile::tempdir()?;
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus)?;
    // Half random bytes, half text-like lines, in 16 MiB files.
    let files = corpus_mib.div_ceil(16);
    let mut rng = rand::rng();
    for i in 0..files {
        let mut data = vec![0u8; 16 << 20];
        if i % 2 == 0 {
            rng.fill_bytes(&mut data);
        } else {
            let words = b"contract payroll invoice quarterly report meeting notes budget ";
            for (j, b) in data.iter_mut().enumerate() {
                *b = if j % 80 == 79 {
                    b'\n'
                } else {
                    words[(j * 7 + i) % words.len()]
                };
            }
        }
        std::fs::write(corpus.join(format!("f{i:03}.bin")), &data)?;
    }
    let total = (files as u64) << 24;
    let rules_file = dir.path().join("coffer.yar");
    std::fs::write(&rules_file, shipped_sources()[0].1)?;

    let rules = Ruleset::load(None)?;
    let patterns = Patterns::new();
    let paths: Vec<_> = std::fs::read_dir(&corpus)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    // Warm the page cache for both.
    for p in &paths {
        std::fs::read(p)?;
    }
    let yarax = |full: bool| -> anyhow::Result<f64> {
        let start = Instant::now();
        for p in &paths {
            let mut f = std::fs::File::open(p)?;
            if full {
                let mut pass = Pass::new(&rules, &patterns, true);
                pass.read_from(&mut f, u64::MAX, None)?;
                pass.finish(&mut Vec::new())?;
            } else {
                let mut s = rules.block_scanner();
                let mut buf = vec![0u8; 1 << 20];
                let mut base = 0u64;
                loop {
                    let n = std::io::Read::read(&mut f, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    s.feed(base, &buf[..n])?;
                    base += n as u64;
                }
                s.finish(&mut Vec::new())?;
            }
        }
        Ok(mb_s(total, start.elapsed()))
    };
    let only = yarax(false)?;
    let full = yarax(true)?;
    // The parts of the content pass on their own, on the same 1 MiB blocks.
    let part = |which: &str| -> anyhow::Result<f64> {
        use sha2::Digest as _;
        let start = Instant::now();
        let mut buf = vec![0u8; 1 << 20];
        for p in &paths {
            let mut f = std::fs::File::open(p)?;
            let mut seen = coffer_scan::engines::sensitive::Seen::default();
            let mut sha = sha2::Sha256::new();
            loop {
                let n = std::io::Read::read(&mut f, &mut buf)?;
                if n == 0 {
                    break;
                }
                match which {
                    "sensitive" => patterns.scan(&buf[..n], &mut seen),
                    _ => sha.update(&buf[..n]),
                }
            }
            std::hint::black_box(sha.finalize());
        }
        Ok(mb_s(total, start.elapsed()))
    };
    let sensitive = part("sensitive")?;
    let sha = part("sha256")?;
    let yara_cmd = run_yara(&rules_file, &corpus, total)?;
    push(String::new());
    push(format!(
        "Corpus: {} MiB in {files} files of 16 MiB (half random bytes, half text), page cache warm, one thread each.",
        total >> 20
    ));
    push(String::new());
    push("| engine | MB/s |".to_owned());
    push("|---|---|".to_owned());
    push(format!(
        "| YARA-X {} block scanner, Coffer's ruleset | {only:.0} |",
        yara_x::VERSION
    ));
    push(format!(
        "| Coffer's content pass (YARA-X + sensitive data + SHA-256) | {full:.0} |"
    ));
    push(format!(
        "| … its sensitive-data patterns alone | {sensitive:.0} |"
    ));
    push(format!("| … its SHA-256 alone | {sha:.0} |"));
    match yara_cmd {
        Some((version, rate)) => {
            push(format!(
                "| `yara` {version} command (`-p 1`), same rules | {rate:.0} |"
            ));
            push(String::new());
            push(format!("YARA-X is {:.1}× the `yara` command.", only / rate));
        }
        None => push("| `yara` command | not installed |".to_owned()),
    }
    Ok(())
}

fn mb_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn run_yara(rules: &Path, corpus: &Path, total: u64) -> anyhow::Result<Option<(String, f64)>> {
    let Ok(v) = std::process::Command::new("yara").arg("--version").output() else {
        return Ok(None);
    };
    let version = String::from_utf8_lossy(&v.stdout).trim().to_owned();
    let start = Instant::now();
    let out = std::process::Command::new("yara")
        .args(["-p", "1", "-r"])
        .arg(rules)
        .arg(corpus)
        .output()
        .context("running yara")?;
    let elapsed = start.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "yara failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Some((version, mb_s(total, elapsed))))
}

/// (i) The engine sandbox's cost: each kind of file scanned `runs` times by the engines in this
/// process ([`coffer_scan::scanner::Local`], rules and model loaded once) and by
/// [`coffer_scan::scanner::Engines`], which starts a contained child per file (the
/// `coffer-scan` binary beside this one). ClamAV is left out of both (it is clamd's process).
pub async fn sandbox(runs: usize, push: &mut impl FnMut(String)) -> anyhow::Result<()> {
    use coffer_scan::engines::nsfw::{NsfwPolicy, NsfwSettings};
    use coffer_scan::engines::yara::Ruleset;
    use coffer_scan::scanner::{Declared, Engines, Local};

    let program = std::env::current_exe()?
        .parent()
        .context("this program's directory")?
        .join("coffer-scan");
    anyhow::ensure!(
        program.exists(),
        "{} is not built: cargo build --release --bins",
        program.display()
    );
    let work = tempfile::tempdir()?;
    let mut config = coffer_scan::ScanConfig {
        temp_dir: Some(work.path().to_owned()),
        ..Default::default()
    };
    config.sandbox.program = Some(program);
    let model = coffer_testkit::nsfw_model();
    if model.exists() {
        config.nsfw.model = Some(model);
    }
    let engines = std::sync::Arc::new(Engines::start(&config, None).await?);
    let local = Local::new(
        Ruleset::load(None)?,
        config.archive.clone(),
        config.nsfw.clone(),
    );
    let mut rng = rand::rng();
    let mut random = |n: usize| {
        let mut v = vec![0u8; n];
        rng.fill_bytes(&mut v);
        v
    };
    let text: Vec<u8> = b"contract payroll invoice quarterly report meeting notes budget\n"
        .iter()
        .copied()
        .cycle()
        .take(4096)
        .collect();
    let png = {
        let img = image::RgbImage::from_fn(640, 480, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)?;
        out.into_inner()
    };
    let zip = coffer_scan::engines::archive::build::zip(&[
        ("a.txt", &text[..]),
        ("b.bin", &random(256 << 10)[..]),
    ]);
    let off = NsfwSettings {
        policy: NsfwPolicy::Off,
        thresholds: Default::default(),
    };
    let flag = NsfwSettings {
        policy: NsfwPolicy::Flag,
        ..off
    };
    let kinds: Vec<(&str, Vec<u8>, NsfwSettings)> = vec![
        ("empty file", Vec::new(), off),
        ("4 KiB of text", text.clone(), off),
        ("1 MiB random", random(1 << 20), off),
        ("16 MiB random", random(16 << 20), off),
        ("zip of 2 entries (260 KiB)", zip, off),
        ("640×480 PNG, NSFW policy flag", png, flag),
    ];
    push("| file | runs | in process, ms (p50 / p99) | contained child, ms (p50 / p99) | overhead at p50, ms |".into());
    push("|---|---|---|---|---|".into());
    for (what, bytes, nsfw) in kinds {
        let dir = engines.job_dir()?;
        let object = dir.path().join(coffer_scan::sandbox::OBJECT);
        std::fs::write(&object, &bytes)?;
        let declared = Declared::default();
        let taken = coffer_scan::scanner::Taken {
            size: bytes.len() as u64,
            sha256: coffer_kit::hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        };
        let mut inside = Vec::with_capacity(runs);
        let unpack = work.path().join("unpack");
        for _ in 0..runs {
            std::fs::create_dir_all(&unpack)?;
            let t = Instant::now();
            local.scan(&object, &unpack, &declared, nsfw)?;
            inside.push(t.elapsed());
            std::fs::remove_dir_all(&unpack)?;
        }
        let mut contained = Vec::with_capacity(runs);
        for _ in 0..runs {
            let dir = engines.job_dir()?;
            std::fs::write(dir.path().join(coffer_scan::sandbox::OBJECT), &bytes)?;
            let t = Instant::now();
            engines.scan(dir.path(), &declared, nsfw, &taken).await?;
            contained.push(t.elapsed());
        }
        let q = |v: &mut Vec<Duration>, p: f64| {
            v.sort();
            v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
        };
        let (i50, i99) = (q(&mut inside, 0.5), q(&mut inside, 0.99));
        let (c50, c99) = (q(&mut contained, 0.5), q(&mut contained, 0.99));
        push(format!(
            "| {what} | {runs} | {i50:.1} / {i99:.1} | {c50:.1} / {c99:.1} | {:.1} |",
            c50 - i50
        ));
    }
    Ok(())
}
