//! The engine sandbox: a hostile payload in the engine child tries what an exploited parser
//! would — read the service's secrets, reach auth's port, run a program, start a thread, write
//! outside its directory, rewrite the object clamd reads, make a directory, read the worker's
//! /proc, use an fcntl beyond flags, take more memory, CPU or disk than allowed. Each attempt
//! fails, the job ends `failed`, and the worker scans the next file as before. (The probes exist in test builds
//! only: feature `engine-probe`, which scripts/test turns on.)

use coffer_scan::ScanConfig;
use coffer_scan::sandbox::SandboxConfig;
use coffer_scan::testing::ScanStack;

use crate::harness::{eicar, status_name, upload, verdict, verdict_name};

fn probe(what: &str, arg: &str) -> Vec<u8> {
    format!("COFFER-ENGINE-PROBE {what} {arg}\n").into_bytes()
}

#[tokio::test]
async fn a_hostile_payload_in_the_engine_child_gets_nowhere_and_the_worker_lives_on()
-> anyhow::Result<()> {
    assert!(
        std::hint::black_box(coffer_scan::sandbox::PROBES),
        "run with `--features coffer-scan/engine-probe` (scripts/test does)"
    );
    let stack = ScanStack::start(
        Default::default(),
        ScanConfig {
            workers: 1,
            poll_interval_ms: 100,
            // One try: a refused attempt is the job's end.
            max_attempts: 1,
            sandbox: SandboxConfig {
                cpu_secs: 2,
                memory_bytes: 512 << 20,
                disk_bytes: 64 << 20,
                ..SandboxConfig::default()
            },
            ..ScanConfig::default()
        },
    )
    .await?;
    let user = stack.user().await?;
    let scan_of = |bytes: Vec<u8>| {
        let (stack, user) = (&stack, &user);
        async move {
            let name = format!("probe-{}.txt", uuid::Uuid::new_v4().simple());
            let id = upload(stack, user, &name, "text/plain", &bytes).await?;
            let f = verdict(stack, user, &id).await?;
            Ok::<_, anyhow::Error>((status_name(&f), verdict_name(f.verdict)))
        }
    };

    // The child runs probes, and a probe can win: one that tries nothing reports its own
    // finding.
    assert_eq!(
        scan_of(probe("none", "")).await?,
        ("quarantined", "suspicious")
    );

    let secrets = &stack.setup.service.secrets_dir;
    let mut files: Vec<_> = std::fs::read_dir(secrets)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("tls.key")),
        "the mesh key is among {files:?}"
    );
    let outside = stack.stack.dir.path().join("escaped");
    let auth = stack.stack.auth.server.addr().to_string();
    let mut attempts: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            (
                format!("open {}", f.display()),
                probe("open", &f.display().to_string()),
            )
        })
        .collect();
    attempts.extend([
        (format!("connect {auth}"), probe("connect", &auth)),
        ("exec /bin/sh".into(), probe("exec", "/bin/sh")),
        ("a thread".into(), probe("thread", "")),
        (
            "write outside".into(),
            probe("write", &outside.display().to_string()),
        ),
        ("rewrite the object".into(), probe("rewrite", "")),
        ("make a directory".into(), probe("mkdir", "")),
        (
            "read the worker's /proc".into(),
            probe("proc", &std::process::id().to_string()),
        ),
        ("an fcntl lock".into(), probe("fcntl", "")),
        ("1 GiB of memory".into(), probe("memory", "1073741824")),
        ("spin past the CPU limit".into(), probe("spin", "")),
        ("fill the disk".into(), probe("fill", "")),
    ]);
    for (what, bytes) in attempts {
        assert_eq!(
            scan_of(bytes).await?,
            ("quarantined", "failed"),
            "{what}: refused, the job failed"
        );
    }
    assert!(!outside.exists(), "nothing was written outside");

    // The worker lives on: the next files are scanned as ever.
    assert_eq!(scan_of(eicar()).await?, ("quarantined", "infected"));
    assert_eq!(
        scan_of(b"just words\n".to_vec()).await?,
        ("available", "clean")
    );
    Ok(())
}
