//! The real `coffer` binary against the real mesh: `coffer-dev up` (built beside it) starts
//! Postgres, the embedded store, clamd when installed and every service; each test signs up its
//! own organisation over HTTP and then works only through the CLI, as a user would.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use sha2::Digest as _;

const PASSWORD: &str = "correct horse battery staple 42";
const MIB: usize = 1 << 20;

/// The mesh, stopped even when the test fails.
struct Mesh {
    child: std::process::Child,
    url: String,
    ca: PathBuf,
    state: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mesh {
    /// A client of the mesh's store with storage-signer's own credentials (to see inside it).
    fn store_client(&self) -> anyhow::Result<aws_sdk_s3::Client> {
        let info: Value = serde_json::from_slice(&std::fs::read(self.state.join("dev.json"))?)?;
        let secret = |name: &str| {
            std::fs::read_to_string(self.state.join("secrets/storage-signer").join(name))
                .map(|s| s.trim().to_owned())
        };
        let credentials = coffer_testkit::S3Credentials {
            access_key: secret("s3-access-key-id")?,
            secret_key: secret("s3-secret-access-key")?,
            region: "us-east-1".into(),
        };
        Ok(coffer_testkit::S3::client_for(
            info["s3_endpoint"].as_str().unwrap(),
            &credentials,
        ))
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
    }
}

fn coffer_bin() -> &'static str {
    env!("CARGO_BIN_EXE_coffer")
}

fn mesh(store: &str) -> anyhow::Result<Mesh> {
    let dev = Path::new(coffer_bin()).with_file_name("coffer-dev");
    anyhow::ensure!(
        dev.exists(),
        "{} is missing: build the workspace's binaries first (cargo build --bins)",
        dev.display()
    );
    let dir = tempfile::tempdir()?;
    let state = dir.path().join(".coffer");
    let child = std::process::Command::new(dev)
        .args(["up", "--gateway-rate", "1000", "--store", store, "--dir"])
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let dev_json = state.join("dev.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut mesh = Mesh {
        child,
        url: String::new(),
        ca: state.join("ca.crt"),
        state: state.clone(),
        _dir: dir,
    };
    while !dev_json.exists() {
        anyhow::ensure!(Instant::now() < deadline, "the mesh did not come up");
        anyhow::ensure!(
            mesh.child.try_wait()?.is_none(),
            "coffer-dev up exited early"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let info: Value = serde_json::from_slice(&std::fs::read(&dev_json)?)?;
    mesh.url = info["gateway_url"].as_str().expect("a gateway").to_owned();
    Ok(mesh)
}

/// One user's CLI: its own config directory and working directory.
struct User {
    config: tempfile::TempDir,
    work: tempfile::TempDir,
    email: String,
    http: reqwest::Client,
    url: String,
    ca: PathBuf,
    cookie: String,
    csrf: String,
}

impl User {
    /// Signs up a new organisation over HTTP (the CLI has no sign-up) and keeps a session to
    /// look at what the CLI did.
    async fn sign_up(mesh: &Mesh, email: &str) -> anyhow::Result<User> {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&mesh.ca)?)?;
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let res = http
            .post(format!("{}/v1/auth/signup", mesh.url))
            .json(&json!({"org_name": format!("Org of {email}"), "email": email, "password": PASSWORD}))
            .send()
            .await?;
        anyhow::ensure!(res.status() == 201, "signup: {}", res.status());
        let res = http
            .post(format!("{}/v1/auth/login", mesh.url))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await?;
        anyhow::ensure!(res.status() == 200, "login: {}", res.status());
        let cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .find_map(|v| {
                let v = v.to_str().ok()?;
                v.starts_with("coffer_session=")
                    .then(|| v.split(';').next().unwrap().to_owned())
            })
            .expect("a session cookie");
        let body: Value = res.json().await?;
        Ok(User {
            config: tempfile::tempdir()?,
            work: tempfile::tempdir()?,
            email: email.to_owned(),
            http,
            url: mesh.url.clone(),
            ca: mesh.ca.clone(),
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        })
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status();
        let text = res.text().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {text}");
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(coffer_bin());
        c.args(args)
            .env("COFFER_CONFIG_DIR", self.config.path())
            .env_remove("COFFER_API_KEY")
            .env_remove("COFFER_PROFILE")
            .current_dir(self.work.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs the CLI with `stdin`; returns its output.
    async fn run_with(&self, args: &[&str], stdin: &str) -> anyhow::Result<Output> {
        use tokio::io::AsyncWriteExt as _;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await?;
        drop(input);
        let out =
            tokio::time::timeout(Duration::from_secs(300), child.wait_with_output()).await??;
        Ok(out)
    }

    async fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.run_with(args, "").await
    }

    /// Runs the CLI and expects exit status `code`; returns standard output.
    async fn expect(&self, code: i32, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args).await?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(
            out.status.code() == Some(code),
            "coffer {args:?}: exit {:?}, wanted {code}\nstdout: {stdout}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(stdout)
    }

    async fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        self.expect(0, args).await
    }

    /// `--json` output, parsed.
    async fn json(&self, code: i32, args: &[&str]) -> anyhow::Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.expect(code, &all).await?;
        Ok(serde_json::from_str(&out)?)
    }

    /// Stderr of a run that must fail with status 1.
    async fn fails(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args).await?;
        anyhow::ensure!(
            out.status.code() == Some(1),
            "coffer {args:?} did not fail: {:?}",
            out.status
        );
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn write(&self, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
        let p = self.work.path().join(name);
        std::fs::write(&p, bytes)?;
        Ok(p)
    }

    async fn login(&self) -> anyhow::Result<()> {
        let out = self
            .run_with(
                &[
                    "login",
                    "--gateway",
                    &self.url,
                    "--ca-cert",
                    self.ca.to_str().unwrap(),
                    "--email",
                    &self.email,
                    "--password-stdin",
                ],
                &format!("{PASSWORD}\n"),
            )
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "login: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}

fn eicar() -> Vec<u8> {
    let mut v = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$".to_vec();
    v.extend_from_slice(b"EICAR-STANDARD-ANTIVIRUS-");
    v.extend_from_slice(b"TEST-FILE!$H+H*");
    v
}

fn names(listing: &Value) -> Vec<String> {
    let mut out: Vec<String> = ["folders", "files"]
        .iter()
        .flat_map(|k| listing[*k].as_array().cloned().unwrap_or_default())
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_works_files_by_path_against_the_real_mesh() -> anyhow::Result<()> {
    let mesh = mesh("embedded")?;
    let u = User::sign_up(&mesh, "cli@example.com").await?;

    // Two-step sign-in on: the CLI asks for the code after the password (both from stdin here).
    let enrol = u
        .api(reqwest::Method::POST, "/v1/auth/totp/enroll", None)
        .await?;
    let totp = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(enrol["secret"].as_str().unwrap()).unwrap())
        .with_account_name("t")
        .build()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    u.api(
        reqwest::Method::POST,
        "/v1/auth/totp/confirm",
        Some(json!({"code": totp.generate(now).to_string()})),
    )
    .await?;
    let login = [
        "login",
        "--gateway",
        &u.url,
        "--ca-cert",
        u.ca.to_str().unwrap(),
        "--email",
        &u.email,
        "--password-stdin",
    ];
    let out = u
        .run_with(
            &login,
            &format!("wrong password\n{}\n", totp.generate(now + 30)),
        )
        .await?;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("login refused"));
    let out = u
        .run_with(
            &login,
            &format!("{PASSWORD}\n{}\n", totp.generate(now + 30)),
        )
        .await?;
    assert!(
        out.status.success(),
        "login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The profile holds a credential: only the user may read it.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&u.config.path().join("config.toml")), 0o600);
    assert_eq!(mode(u.config.path()), 0o700);
    let me = u.json(0, &["whoami"]).await?;
    assert_eq!(
        (me["email"].as_str(), me["role"].as_str()),
        (Some("cli@example.com"), Some("owner"))
    );
    assert_eq!(me["totp_enabled"], true);
    assert_eq!(me["credential"], "session");

    // Folders and files by path.
    u.ok(&["mkdir", "-p", "/Contracts/2026"]).await?;
    let nda: Vec<u8> = b"Non-disclosure agreement\n".repeat(1000);
    u.write("nda.pdf", &nda)?;
    u.write("eicar.txt", &eicar())?;
    let put = u
        .json(0, &["put", "nda.pdf", "--to", "/Contracts/2026", "--wait"])
        .await?;
    let f = &put["uploads"][0]["file"];
    assert_eq!(
        (f["status"].as_str(), f["verdict"].as_str()),
        (Some("available"), Some("clean"))
    );
    assert_eq!(f["sha256"], sha256_hex(&nda));
    // Without a terminal there is no progress bar.
    let out = u
        .run(&["put", "eicar.txt", "--to", "/Contracts/2026", "--wait"])
        .await?;
    assert_eq!(out.status.code(), Some(3), "a quarantined upload exits 3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("quarantined (infected)"), "{stdout}");
    assert!(
        !stderr.contains("ETA") && !stderr.contains('\r'),
        "no bar without a terminal: {stderr:?}"
    );
    // One run at a time per file and destination: a second says so.
    u.write("slow.bin", &vec![5u8; 4 * MIB])?;
    let mut slow = u
        .command(&[
            "put",
            "slow.bin",
            "--to",
            "/Contracts",
            "--limit-rate",
            "512K",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let states = u.config.path().join("uploads/default");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_dir(&states)
        .map(|d| {
            d.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .unwrap_or(false)
    {
        anyhow::ensure!(Instant::now() < deadline, "the first put wrote no state");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = u.fails(&["put", "slow.bin", "--to", "/Contracts"]).await?;
    assert!(err.contains("another coffer put of this file"), "{err}");
    slow.kill().await?;
    let _ = slow.wait().await;
    u.ok(&["rm", "/Contracts/slow.bin"]).await?;
    u.ok(&["purge", "/Contracts/slow.bin"]).await?;
    let listing = u.json(0, &["ls", "/Contracts/2026"]).await?;
    assert_eq!(names(&listing), ["eicar.txt", "nda.pdf"]);
    assert_eq!(names(&u.json(0, &["ls"]).await?), ["Contracts"]);

    u.ok(&["mv", "/Contracts/2026/nda.pdf", "/Contracts/nda-signed.pdf"])
        .await?;
    assert_eq!(
        names(&u.json(0, &["ls", "/Contracts"]).await?),
        ["2026", "nda-signed.pdf"]
    );
    u.ok(&["mkdir", "/Archive"]).await?;
    u.ok(&["mv", "/Contracts/2026", "/Archive"]).await?;
    assert_eq!(
        names(&u.json(0, &["ls", "/Archive/2026"]).await?),
        ["eicar.txt"]
    );

    let got = u
        .json(0, &["get", "/Contracts/nda-signed.pdf", "-o", "copy.pdf"])
        .await?;
    assert_eq!(got["verified"], true);
    assert_eq!(std::fs::read(u.work.path().join("copy.pdf"))?, nda);
    assert_eq!(
        mode(&u.work.path().join("copy.pdf")),
        0o600,
        "a download is the user's only"
    );
    let err = u
        .fails(&["get", "/Contracts/nda-signed.pdf", "-o", "copy.pdf"])
        .await?;
    assert!(err.contains("exists"), "{err}");
    let err = u
        .fails(&["get", "/Archive/2026/eicar.txt", "-o", "q.txt"])
        .await?;
    assert!(err.contains("quarantined"), "{err}");
    let by_id = f["id"].as_str().unwrap();
    u.ok(&["get", by_id, "-o", "by-id.pdf"]).await?;
    assert_eq!(std::fs::read(u.work.path().join("by-id.pdf"))?, nda);

    // Trash, restore and purge by the path the file had.
    u.ok(&["rm", "/Contracts/nda-signed.pdf"]).await?;
    assert_eq!(
        names(&u.json(0, &["ls", "/Contracts"]).await?),
        Vec::<String>::new()
    );
    let trash = u.json(0, &["ls", "--trash"]).await?;
    assert_eq!(names(&trash), ["nda-signed.pdf"]);
    assert!(trash["files"][0]["purge_at"].is_string());
    let restored = u.json(0, &["restore", "/Contracts/nda-signed.pdf"]).await?;
    assert_eq!(restored["restored"][0]["status"], "available");
    let eicar_id = u.json(0, &["ls", "/Archive/2026/eicar.txt"]).await?["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = u.fails(&["rm", "/Archive"]).await?;
    assert!(err.contains("rm -r"), "{err}");
    u.ok(&["rm", "-r", "/Archive"]).await?;
    assert!(names(&u.json(0, &["ls", "--trash"]).await?).contains(&"eicar.txt".to_owned()));
    // Its folder went to the trash with it, so its former path is gone: purged by id.
    u.ok(&["purge", &eicar_id]).await?;
    assert!(!names(&u.json(0, &["ls", "--trash"]).await?).contains(&"eicar.txt".to_owned()));

    // A share link, fetched as anyone would.
    let share = u
        .json(
            0,
            &[
                "share",
                "/Contracts/nda-signed.pdf",
                "--expires",
                "1h",
                "--max-downloads",
                "1",
            ],
        )
        .await?;
    let link = share["url"].as_str().unwrap();
    let res = u.http.get(link).send().await?;
    assert_eq!(res.status(), 302);
    let store_url = res.headers()["location"].to_str()?.to_owned();
    let bytes = reqwest::get(&store_url).await?.bytes().await?;
    assert_eq!(&bytes[..], &nda[..]);
    assert_eq!(
        u.http.get(link).send().await?.status(),
        404,
        "one download only"
    );

    // The scan-only API.
    let scan = u.json(3, &["scan", "eicar.txt"]).await?;
    assert_eq!(scan["scans"][0]["scan"]["verdict"], "infected");
    let engines = scan["scans"][0]["scan"]["engines"].as_array().unwrap();
    assert!(
        engines
            .iter()
            .any(|e| e["clean"] == false && e["signature"].is_string())
    );
    let scan = u.json(0, &["scan", "nda.pdf"]).await?;
    assert_eq!(scan["scans"][0]["scan"]["verdict"], "clean");

    // The audit log, verified online; and against a pinned key that is not the server's.
    let verified = u.json(0, &["audit", "verify", "--online"]).await?;
    assert_eq!(verified["ok"], true);
    assert!(verified["events"].as_u64().unwrap() >= 5);
    let published = u
        .api(reqwest::Method::GET, "/v1/audit/public-key", None)
        .await?;
    u.write(
        "server.pub",
        published["public_key"].as_str().unwrap().as_bytes(),
    )?;
    u.ok(&["audit", "verify", "--online", "--public-key", "server.pub"])
        .await?;
    u.write("other.pub", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")?;
    let err = u
        .fails(&["audit", "verify", "--online", "--public-key", "other.pub"])
        .await?;
    assert!(err.contains("not the one in --public-key"), "{err}");
    u.ok(&["audit", "export", "-o", "audit.ndjson"]).await?;
    u.ok(&[
        "audit",
        "verify",
        "audit.ndjson",
        "--public-key",
        "server.pub",
    ])
    .await?;

    // A folder and a file of one name in one folder: the path is refused, not guessed.
    u.ok(&["mkdir", "/Twin"]).await?;
    u.write("Twin", b"a file named like the folder")?;
    let twin = u.json(0, &["put", "Twin", "--to", "/"]).await?;
    let twin_id = twin["uploads"][0]["file"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = u.fails(&["rm", "/Twin"]).await?;
    assert!(
        err.contains("a folder and a file both have this name") && err.contains(&twin_id),
        "{err}"
    );
    u.ok(&["rm", &twin_id]).await?;
    u.ok(&["rm", "-r", "/Twin"]).await?;

    // Errors say what to do.
    let err = u.fails(&["ls", "/nope"]).await?;
    assert!(err.contains("no file or folder named \"nope\""), "{err}");
    // A reader that goes away ends the output quietly, as SIGPIPE would: no panic.
    let mut child = u
        .command(&["ls", "--trash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    drop(child.stdout.take());
    let out = child.wait_with_output().await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let bash = u.ok(&["completions", "bash"]).await?;
    assert!(bash.contains("complete") && bash.contains("coffer"));

    // An API key in its own profile, from the environment; its scopes hold.
    let key = u
        .api(
            reqwest::Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "ci", "scopes": ["files:read"]})),
        )
        .await?;
    let out = u
        .command(&[
            "--profile",
            "ci",
            "login",
            "--gateway",
            &u.url,
            "--ca-cert",
            u.ca.to_str().unwrap(),
            "--api-key",
        ])
        .env("COFFER_API_KEY", key["key"].as_str().unwrap())
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let me = u.json(0, &["--profile", "ci", "whoami"]).await?;
    assert_eq!(me["credential"], "api_key");
    assert_eq!(
        names(&u.json(0, &["--profile", "ci", "ls", "/Contracts"]).await?),
        ["nda-signed.pdf"]
    );
    let err = u.fails(&["--profile", "ci", "mkdir", "/Nope"]).await?;
    assert!(err.contains("scopes"), "{err}");

    // Logged out: the session is revoked and the CLI says what to run.
    u.ok(&["--profile", "default", "logout"]).await?;
    let err = u.fails(&["--profile", "default", "ls"]).await?;
    assert!(err.contains("run coffer login"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_in_parts_resumes_after_kill_9_and_shows_its_progress() -> anyhow::Result<()> {
    resumes_after_kill_9("embedded").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_seaweedfs_an_upload_in_parts_resumes_after_kill_9() -> anyhow::Result<()> {
    resumes_after_kill_9("seaweedfs").await
}

/// A 300 MiB file goes up in parts; `kill -9` of the CLI half-way; the same command again sends
/// only the parts the store does not hold (counted), the file is scanned and comes back
/// byte-identical. A second upload killed half-way and then removed leaves no upload in parts
/// in the store. Then a smaller upload under a pseudo-terminal shows its bar advancing.
/// Runs `coffer put …`, waits until its upload in parts has 3 parts in the store and kills it
/// with SIGKILL; returns the file id its state names.
async fn kill_half_way(u: &User, args: &[&str], states: &Path) -> anyhow::Result<String> {
    let before: Vec<PathBuf> = std::fs::read_dir(states)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let mut child = u
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // The upload's state names the file as soon as it exists.
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        anyhow::ensure!(Instant::now() < deadline, "no upload state appeared");
        let new = std::fs::read_dir(states).ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path())
                .find(|p| !before.contains(p) && p.extension().is_some_and(|x| x == "json"))
        });
        if let Some(p) = new
            && let Ok(state) = serde_json::from_slice::<Value>(&std::fs::read(&p)?)
        {
            break state["file_id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    loop {
        anyhow::ensure!(Instant::now() < deadline, "no parts reached the store");
        let held = u
            .api(reqwest::Method::GET, &format!("/v1/files/{id}/parts"), None)
            .await?;
        if held["parts"].as_array().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGKILL)?;
    child.wait().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(id)
}

async fn resumes_after_kill_9(store: &str) -> anyhow::Result<()> {
    let mesh = mesh(store)?;
    let u = User::sign_up(&mesh, "resume@example.com").await?;
    u.login().await?;
    let mut big = vec![0u8; 300 * MIB];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in big.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    u.write("big.bin", &big)?;
    let want = sha256_hex(&big);
    drop(big);

    let states = u.config.path().join("uploads/default");
    let id = kill_half_way(&u, &["put", "big.bin", "--limit-rate", "48M"], &states).await?;
    let held = u
        .api(reqwest::Method::GET, &format!("/v1/files/{id}/parts"), None)
        .await?;
    let held = held["parts"].as_array().unwrap().len() as u64;
    assert!(
        (3..19).contains(&held),
        "killed half-way: {held} of 19 parts held"
    );
    let f = u
        .api(reqwest::Method::GET, &format!("/v1/files/{id}"), None)
        .await?;
    assert_eq!(f["status"], "pending_upload");

    let again = u.json(0, &["put", "big.bin", "--wait"]).await?;
    let up = &again["uploads"][0];
    assert_eq!(up["resumed"], true);
    assert_eq!(
        up["file"]["id"],
        id.as_str(),
        "the same file, not a new one"
    );
    assert_eq!(
        up["parts_resumed"], held,
        "the parts the store held were not sent again"
    );
    assert_eq!(
        up["parts_sent"],
        19 - held,
        "only the missing parts were sent"
    );
    assert_eq!(up["file"]["status"], "available");
    assert_eq!(up["file"]["sha256"], want);
    assert!(
        std::fs::read_dir(&states)?.next().is_none(),
        "the state is gone once complete"
    );
    let got = u.json(0, &["get", "/big.bin", "-o", "back.bin"]).await?;
    assert_eq!(got["sha256"], want);
    assert_eq!(
        sha256_hex(&std::fs::read(u.work.path().join("back.bin"))?),
        want
    );

    // A file changed while its upload was interrupted, its size and mtime kept (as `cp -p` or
    // `rsync -t` can): the resumed upload mixes old parts and new bytes, which hash otherwise
    // than the SHA-256 declared at the start; the scan finds it, the file ends `failed` and
    // never downloadable, and `put --wait` exits 4.
    let mut mixed = vec![1u8; 128 * MIB];
    u.write("mixed.bin", &mixed)?;
    let id = kill_half_way(
        &u,
        &["put", "mixed.bin", "--parts", "1", "--limit-rate", "48M"],
        &states,
    )
    .await?;
    let path = u.work.path().join("mixed.bin");
    let mtime = std::fs::metadata(&path)?.modified()?;
    mixed[127 * MIB..].fill(2);
    std::fs::write(&path, &mixed)?;
    std::fs::File::options()
        .write(true)
        .open(&path)?
        .set_modified(mtime)?;
    let out = u.json(4, &["put", "mixed.bin", "--wait"]).await?;
    let up = &out["uploads"][0];
    assert_eq!(up["resumed"], true);
    assert_eq!(up["file"]["id"], id.as_str());
    assert_eq!(
        (
            up["file"]["status"].as_str(),
            up["file"]["verdict"].as_str()
        ),
        (Some("quarantined"), Some("failed")),
        "bytes other than declared never become available"
    );
    let err = u
        .fails(&["get", "/mixed.bin", "-o", "mixed-back.bin"])
        .await?;
    assert!(err.contains("quarantined"), "{err}");

    // Killed half-way again (to another folder), then removed: the store keeps no upload in parts.
    u.ok(&["mkdir", "/Second"]).await?;
    let second = kill_half_way(
        &u,
        &["put", "big.bin", "--to", "/Second", "--limit-rate", "48M"],
        &states,
    )
    .await?;
    let s3 = mesh.store_client()?;
    let open = |s3: aws_sdk_s3::Client| async move {
        let listed = s3.list_multipart_uploads().bucket("coffer").send().await?;
        anyhow::Ok(listed.uploads().len())
    };
    assert_eq!(
        open(s3.clone()).await?,
        1,
        "the killed upload is open in the store"
    );
    let trashed = u.json(0, &["rm", "/Second/big.bin"]).await?;
    assert_eq!(trashed["trashed"][0]["id"], second.as_str());
    assert_eq!(
        open(s3).await?,
        0,
        "trashing the pending file aborted its upload in parts"
    );

    // Under a pseudo-terminal (util-linux `script`) the bar is drawn and advances.
    u.write("mid.bin", &vec![7u8; 24 * MIB])?;
    let cmd = format!("{} put mid.bin --to / --limit-rate 8M", coffer_bin());
    let out = tokio::process::Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .env("COFFER_CONFIG_DIR", u.config.path())
        .current_dir(u.work.path())
        .stdin(Stdio::null())
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let screen = String::from_utf8_lossy(&out.stdout);
    let frames: Vec<&str> = screen
        .split(['\r', '\n'])
        .filter(|l| l.contains("mid.bin") && l.contains("ETA"))
        .collect();
    let positions: std::collections::BTreeSet<&str> = frames
        .iter()
        .filter_map(|l| l.split(']').nth(1)?.split('/').next())
        .map(str::trim)
        .collect();
    assert!(
        positions.len() >= 3,
        "the bar advanced through several positions: {positions:?}"
    );
    assert!(
        screen.contains("24.00 MiB/24.00 MiB"),
        "and reached the end"
    );
    Ok(())
}
