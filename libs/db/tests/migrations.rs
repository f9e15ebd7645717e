//! The services' migrations are append-only: one that may have run somewhere never changes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Every migration of every service against `services/migrations.lock`: each locked one must
/// still exist with the checksum sqlx will compare at start-up (an edited migration stops every
/// service whose database applied it), and each one must be locked.
#[tokio::test]
async fn migrations_that_ran_never_change() -> anyhow::Result<()> {
    let services = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../services");
    let lock = std::fs::read_to_string(services.join("migrations.lock"))?;
    let mut locked = BTreeMap::new();
    for line in lock
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let [service, version, checksum] = line.split(' ').collect::<Vec<_>>()[..] else {
            anyhow::bail!("a line of migrations.lock is not `service version checksum`: {line}");
        };
        locked.insert(
            (service.to_owned(), version.parse::<i64>()?),
            checksum.to_owned(),
        );
    }
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(&services)? {
        let dir = entry?.path().join("migrations");
        if !dir.is_dir() {
            continue;
        }
        let service = dir
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        for m in sqlx::migrate::Migrator::new(dir.as_path()).await?.iter() {
            let hex = m.checksum.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
            found.insert((service.clone(), m.version), hex);
        }
    }
    assert!(found.len() >= 30, "read only {} migrations", found.len());
    let mut wrong = Vec::new();
    for (key @ (service, version), checksum) in &locked {
        match found.get(key) {
            None => wrong.push(format!("{service} {version}: removed")),
            Some(now) if now != checksum => wrong.push(format!(
                "{service} {version}: changed (write a new migration instead)"
            )),
            Some(_) => {}
        }
    }
    for ((service, version), checksum) in &found {
        if !locked.contains_key(&(service.clone(), *version)) {
            wrong.push(format!(
                "{service} {version}: not in services/migrations.lock; add `{service} {version} {checksum}`"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}
