//! The NSFW engine's speed and memory, next to its reference in the same run. On the reference comparison's real pictures (Debian's desktop-base artwork, JPEG and
//! PNG): images classified per second on one core once decoded (224 × 224 inputs), the same with
//! decoding, the process's RSS before the model, after it and at its peak; then the nsfwjs
//! package in Node (TensorFlow.js's pure-JavaScript CPU backend) on the same files:
//! `cargo run --release -p coffer-nsfw --example bench [-- --seconds 20]`. BENCHMARKS.md has
//! the figures.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use coffer_nsfw::{Classifier, Limits};

#[path = "../tests/common/art.rs"]
mod art;

struct Args {
    model: PathBuf,
    seconds: u64,
    no_reference: bool,
}

/// `--model PATH` (default: where scripts/install-deps writes it), `--seconds N` for each
/// measurement (20), `--no-reference` to skip Node (~1.5 s an image).
fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        model: art::model_path(),
        seconds: 20,
        no_reference: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--model" => a.model = it.next().context("--model PATH")?.into(),
            "--seconds" => a.seconds = it.next().context("--seconds N")?.parse()?,
            "--no-reference" => a.no_reference = true,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

/// `VmRSS` and `VmHWM` (peak) of this process, in KiB.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Runs `one` over and over for `for_at_least`; returns calls per second.
fn rate(for_at_least: Duration, mut one: impl FnMut(usize)) -> f64 {
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < for_at_least {
        one(n);
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let files = art::pictures().map_err(anyhow::Error::msg)?;
    let bytes: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let model = a.model;
    let (before, _) = rss();
    let loading = Instant::now();
    let classifier = Classifier::load(&model)?;
    let load_ms = loading.elapsed().as_secs_f64() * 1e3;
    let (loaded, _) = rss();
    let limits = Limits::default();
    let inputs: Vec<coffer_nsfw::Input> = bytes
        .iter()
        .map(|b| coffer_nsfw::prepare(b, &limits))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let each = Duration::from_secs(a.seconds);
    let net = rate(each, |i| {
        std::hint::black_box(classifier.classify_input(inputs[i % inputs.len()].clone()));
    });
    let full = rate(each, |i| {
        std::hint::black_box(classifier.classify(&bytes[i % bytes.len()], &limits).ok());
    });
    let (after, peak) = rss();
    println!(
        "coffer-nsfw, one thread, {} pictures (desktop-base, 0.3–1.6 MP):",
        files.len()
    );
    println!("  model load                      {load_ms:.0} ms");
    println!(
        "  classify, decoded (224×224)     {net:.1} images/s ({:.1} ms each)",
        1e3 / net
    );
    println!(
        "  decode + classify               {full:.1} images/s ({:.1} ms each)",
        1e3 / full
    );
    println!(
        "  RSS before the model {} MiB, with it {} MiB, after the runs {} MiB, peak {} MiB: {} MiB extra at peak",
        before / 1024,
        loaded / 1024,
        after / 1024,
        peak / 1024,
        peak.saturating_sub(before) / 1024
    );
    if a.no_reference {
        return Ok(());
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/nsfw/reference.mjs");
    let out = std::process::Command::new("node")
        .arg(script)
        .args(&files)
        .stderr(std::process::Stdio::null())
        .output()
        .context("running node")?;
    anyhow::ensure!(out.status.success(), "the reference failed");
    let (mut classify, mut decode) = (Vec::new(), Vec::new());
    for line in String::from_utf8(out.stdout)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if let (Some(c), Some(d)) = (v["classify_ms"].as_f64(), v["decode_ms"].as_f64()) {
            classify.push(c);
            decode.push(d);
        }
    }
    let (c, d) = (median(classify), median(decode));
    println!(
        "nsfwjs 4.4.0 on @tensorflow/tfjs 4.22 (CPU backend, pure JavaScript), Node {}, same pictures:",
        node_version()
    );
    println!(
        "  classify (median)               {c:.0} ms an image ({:.2} images/s)",
        1e3 / c
    );
    println!("  decode (median)                 {d:.0} ms an image");
    println!("  the engine classifies {:.0}× as fast", c / (1e3 / net));
    Ok(())
}

fn node_version() -> String {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
