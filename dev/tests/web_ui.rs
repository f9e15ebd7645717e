//! The web app end to end in a real browser: `coffer-dev up` starts the whole mesh (gateway,
//! every service, Postgres, the embedded store, clamd when installed), then
//! `services/gateway/e2e/ui.mjs` drives Debian's Chromium through playwright-core
//! (scripts/install-deps installs both). The screenshots and the first load's figures land in
//! `target/web-ui/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Stops the mesh even when the test fails.
struct Mesh(std::process::Child);

impl Drop for Mesh {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
    }
}

#[test]
fn the_web_app_works_end_to_end_in_chromium() -> anyhow::Result<()> {
    let e2e = repo().join("services/gateway/e2e");
    anyhow::ensure!(
        e2e.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed in {}: run scripts/install-deps",
        e2e.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    anyhow::ensure!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/install-deps (Debian's chromium)"
    );
    let dir = tempfile::tempdir()?;
    let state = dir.path().join(".coffer");
    let mesh = Mesh(
        std::process::Command::new(env!("CARGO_BIN_EXE_coffer-dev"))
            .args(["up", "--gateway-rate", "1000", "--dir"])
            .arg(&state)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let dev_json = state.join("dev.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !dev_json.exists() {
        anyhow::ensure!(Instant::now() < deadline, "the mesh did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(&dev_json)?)?;
    let url = info["gateway_url"].as_str().expect("a gateway").to_owned();
    let shots = repo().join("target/web-ui");
    let status = std::process::Command::new("node")
        .arg("ui.mjs")
        .current_dir(&e2e)
        .env("COFFER_URL", &url)
        .env("COFFER_SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .status()?;
    drop(mesh);
    anyhow::ensure!(status.success(), "the browser test failed: {status}");
    Ok(())
}
