//! Configuration layering and secret files.

use std::path::Path;

use coffer_config::{ConfigError, Secrets, ServiceConfig, load_with_env};
use secrecy::ExposeSecret as _;

#[test]
fn defaults_file_then_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("svc.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7100\"\nrequest_timeout_ms = 5000\n[peers]\naudit = \"audit:7000\"\n[telemetry]\nlog_filter = \"warn\"\n",
    )
    .unwrap();
    // Setting variables in this process needs `unsafe` (edition 2024), which the workspace forbids:
    // the environment case runs in a child process of this same test binary.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "env_child", "--nocapture", "--ignored"])
        .env("CFGTEST_FILE", &file)
        .env("CFGTEST1_TELEMETRY__LOG_FILTER", "debug")
        .env("CFGTEST1_SHUTDOWN_GRACE_MS", "1234")
        // Other tools' variables (the CLI's key, the fuzz script's directory) are passed over.
        .env("CFGTEST1_API_KEY", "coffer_abcdefgh_not-a-config-key")
        .env("CFGTEST1_FUZZ_TARGET", "/tmp/fuzz")
        // An unknown key of its own is refused.
        .env("CFGTEST3_LISTN", "127.0.0.1:1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );

    let cfg: ServiceConfig = load_with_env(Some(&file), "CFGTEST0_").unwrap();
    assert_eq!(cfg.listen.to_string(), "127.0.0.1:7100");
    assert_eq!(cfg.request_timeout_ms, 5000);
    assert_eq!(cfg.shutdown_grace_ms, 10_000, "default kept");
    assert_eq!(cfg.peer("audit").unwrap(), "audit:7000");
    assert!(
        cfg.peer("scan")
            .unwrap_err()
            .to_string()
            .contains("peers.scan")
    );
    assert_eq!(cfg.telemetry.log_filter, "warn");
}

#[test]
#[ignore = "run by defaults_file_then_environment in a child process"]
fn env_child() {
    let file = std::env::var("CFGTEST_FILE").unwrap();
    let cfg: ServiceConfig = load_with_env(Some(Path::new(&file)), "CFGTEST1_").unwrap();
    assert_eq!(
        cfg.telemetry.log_filter, "debug",
        "environment wins over the file"
    );
    assert_eq!(cfg.shutdown_grace_ms, 1234);
    assert_eq!(cfg.request_timeout_ms, 5000, "file value kept");
    let err = load_with_env::<ServiceConfig>(Some(Path::new(&file)), "CFGTEST3_").unwrap_err();
    assert!(err.to_string().contains("listn"), "{err}");
}

#[test]
fn bad_config_names_the_key_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.toml");
    let err = load_with_env::<ServiceConfig>(Some(&missing), "CFGTEST2_").unwrap_err();
    assert!(matches!(err, ConfigError::MissingFile(_)));
    assert!(err.to_string().contains("absent.toml"));

    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "listen = \"not an address\"\n").unwrap();
    let err = load_with_env::<ServiceConfig>(Some(&file), "CFGTEST2_").unwrap_err();
    assert!(err.to_string().contains("listen"), "{err}");

    std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let err = load_with_env::<ServiceConfig>(Some(&file), "CFGTEST2_").unwrap_err();
    assert!(
        err.to_string().contains("lisen"),
        "unknown keys are refused: {err}"
    );
}

#[test]
fn secrets_come_from_files_and_failures_name_the_file_not_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = Secrets::new(dir.path());
    std::fs::write(dir.path().join("db-password"), "hunter2-long-password\n").unwrap();
    assert_eq!(
        secrets.string("db-password").unwrap().expose_secret(),
        "hunter2-long-password"
    );
    std::fs::write(
        dir.path().join("column-key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .unwrap();
    assert_eq!(
        secrets.key("column-key", 32).unwrap().expose_secret().len(),
        32
    );

    let missing = secrets.string("absent").unwrap_err().to_string();
    assert!(missing.contains("absent"), "{missing}");
    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    assert!(
        secrets
            .string("empty")
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    std::fs::write(dir.path().join("short-key"), "c2VjcmV0LXNob3J0\n").unwrap();
    let err = secrets.key("short-key", 32).unwrap_err().to_string();
    assert!(
        err.contains("short-key") && !err.contains("c2VjcmV0"),
        "{err}"
    );
    std::fs::write(dir.path().join("not-b64"), "secret value!!\n").unwrap();
    let err = secrets.key("not-b64", 32).unwrap_err().to_string();
    assert!(
        err.contains("not-b64") && !err.contains("secret value"),
        "{err}"
    );
    assert!(secrets.require("db-password").is_ok());
    assert!(secrets.require("nope").is_err());
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct Own {
    session_idle_minutes: u32,
    label: String,
}

impl coffer_config::Validate for Own {
    const SECTION: &'static str = "auth";

    fn check(&self, c: &mut coffer_config::Check) {
        c.between("session_idle_minutes", self.session_idle_minutes, 0, 600);
    }
}

#[test]
fn a_service_section_sits_beside_the_shared_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7200\"\n[database]\nschema = \"auth\"\nowner_user = \"auth_owner\"\n[auth]\nsession_idle_minutes = 15\n",
    )
    .unwrap();
    let (svc, own): (ServiceConfig, Own) =
        coffer_config::load_service_with_env(Some(&file), "auth", "CFGTEST3_").unwrap();
    assert_eq!(svc.listen.to_string(), "127.0.0.1:7200");
    let db = svc.database.unwrap();
    assert_eq!(
        (db.schema.as_str(), db.owner_user.as_str(), db.port),
        ("auth", "auth_owner", 5432)
    );
    assert_eq!(own.session_idle_minutes, 15);

    // A typo in the section, or an unknown top-level key, is refused by name.
    std::fs::write(&file, "[auth]\nsession_idel_minutes = 15\n").unwrap();
    let err = coffer_config::load_service_with_env::<Own>(Some(&file), "auth", "CFGTEST3_")
        .unwrap_err()
        .to_string();
    assert!(err.contains("session_idel_minutes"), "{err}");
    std::fs::write(&file, "[autth]\nx = 1\n").unwrap();
    let err = coffer_config::load_service_with_env::<Own>(Some(&file), "auth", "CFGTEST3_")
        .unwrap_err()
        .to_string();
    assert!(err.contains("autth"), "{err}");

    // A value that cannot work stops loading, naming its key; so does a shared key's.
    std::fs::write(&file, "[auth]\nsession_idle_minutes = 601\n").unwrap();
    let err = coffer_config::load_service_with_env::<Own>(Some(&file), "auth", "CFGTEST3_")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("auth.session_idle_minutes must be between 0 and 600, not 601"),
        "{err}"
    );
    std::fs::write(&file, "request_timeout_ms = 0\n[auth]\n").unwrap();
    let err = coffer_config::load_service_with_env::<Own>(Some(&file), "auth", "CFGTEST3_")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("request_timeout_ms must be at least 1"),
        "{err}"
    );
}
