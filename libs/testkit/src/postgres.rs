//! A throwaway PostgreSQL cluster from Debian's server binaries.
//!
//! `initdb` refuses to run as root, and CI runs as root: the server then runs as the `postgres`
//! system user through `runuser`. Every cluster gets a watchdog process that stops it and removes
//! its directory once the owning process is gone, so a crashed or killed test leaves nothing
//! running. Durability is off (`fsync=off`): these clusters hold nothing worth keeping.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use rand::Rng as _;
use sqlx::Connection as _;
use tokio::sync::OnceCell;

/// Where to look for the server binaries, newest major version first.
fn find_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("COFFER_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL server binaries not found under /usr/lib/postgresql (install Debian's postgresql package)")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    majors.sort();
    majors
        .pop()
        .map(|(_, bin)| bin)
        .context("no initdb under /usr/lib/postgresql/*/bin (install Debian's postgresql package)")
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Builds a command that runs `program` as the user that will own the cluster.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Turns TLS on as production runs it: a server certificate for 127.0.0.1 from a fresh CA, and
/// `pg_hba.conf` taking TCP connections over TLS only (`hostssl`). Returns the CA's PEM.
fn enable_tls(data: &Path) -> anyhow::Result<String> {
    let ca = crate::DevCa::new("coffer test postgres CA")?;
    let now = time::OffsetDateTime::now_utc();
    let server = ca.issue_spec(&crate::CertSpec {
        common_name: "127.0.0.1".into(),
        uris: vec![],
        dns: vec![],
        ips: vec![std::net::Ipv4Addr::LOCALHOST.into()],
        not_before: now - time::Duration::hours(1),
        not_after: now + time::Duration::days(30),
    })?;
    let (cert, key) = (data.join("server.crt"), data.join("server.key"));
    crate::ca::write_atomic(&cert, server.cert_pem.as_bytes(), 0o644)?;
    crate::ca::write_atomic(&key, server.key_pem.as_bytes(), 0o600)?;
    let hba = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba)?
        .lines()
        .map(|line| match line.strip_prefix("host ") {
            Some(rest) => format!("hostssl {rest}"),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&hba, rules + "\n")?;
    append_conf(
        data,
        "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
    )?;
    for path in [&cert, &key, &hba] {
        chown_to_owner(path)?;
    }
    Ok(ca.ca_pem())
}

fn append_conf(data: &Path, lines: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))?;
    f.write_all(lines.as_bytes())?;
    Ok(())
}

/// Gives `path` to the user that owns the clusters (when running as root).
fn chown_to_owner(path: &Path) -> anyhow::Result<()> {
    if is_root() {
        let user = nix::unistd::User::from_name("postgres")?.context("no postgres user")?;
        std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
    }
    Ok(())
}

/// Returns 32 random alphanumeric characters, for throwaway passwords and names.
pub fn random_secret() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// How to start a cluster.
#[derive(Debug, Clone, Default)]
pub struct PostgresOptions {
    /// A fixed port; a free one when unset.
    pub port: Option<u16>,
    /// Archive every WAL segment into this directory (created), with durable settings: the
    /// cluster can then be restored to a point in time ([`Postgres::restore`]).
    pub wal_archive: Option<PathBuf>,
    /// Keep the server's durable defaults (`fsync`, `synchronous_commit`, full-page writes),
    /// as production runs: a crash ([`Postgres::restart_immediate`]) then loses no commit.
    /// Without it (and without an archive) a throwaway cluster trades durability for speed.
    pub durable: bool,
}

/// A running throwaway cluster. Dropping it stops the server and removes its files.
#[derive(Debug)]
pub struct Postgres {
    root: Option<tempfile::TempDir>,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    superuser_password: String,
    /// The CA that signed the server's certificate (PEM): clients verify the server against it.
    ca_pem: String,
    stopped: bool,
}

static SHARED: OnceCell<Postgres> = OnceCell::const_new();

impl Postgres {
    /// Starts a cluster on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(PostgresOptions::default()).await
    }

    /// Returns a cluster shared by every test in this test binary, started on first use and
    /// stopped by its watchdog when the binary exits. Tests isolate themselves by database.
    pub async fn shared() -> anyhow::Result<&'static Postgres> {
        SHARED.get_or_try_init(Self::start).await
    }

    /// Starts a cluster with `options`.
    pub async fn start_with(options: PostgresOptions) -> anyhow::Result<Self> {
        tokio::task::spawn_blocking(move || Self::start_blocking(options)).await?
    }

    fn start_blocking(options: PostgresOptions) -> anyhow::Result<Self> {
        let bin = find_bin_dir()?;
        let root = tempfile::Builder::new().prefix("coffer-pg-").tempdir()?;
        let data = root.path().join("data");
        let pwfile = root.path().join("pwfile");
        let superuser_password = random_secret();
        std::fs::write(&pwfile, &superuser_password)?;
        if is_root() {
            let user = nix::unistd::User::from_name("postgres")?.context(
                "the postgres system user does not exist (install Debian's postgresql package)",
            )?;
            for path in [root.path(), pwfile.as_path()] {
                std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
            }
        }
        let mut initdb = as_owner(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(initdb, "initdb")?;
        std::fs::remove_file(&pwfile)?;
        let ca_pem = enable_tls(&data)?;

        let port = match options.port {
            Some(p) => p,
            None => crate::free_port()?,
        };
        // Throwaway clusters trade durability for speed; an archived one keeps it (a restore
        // replays what was archived).
        let durability = match &options.wal_archive {
            Some(archive) => {
                std::fs::create_dir_all(archive)?;
                chown_to_owner(archive)?;
                append_conf(
                    &data,
                    &format!(
                        "wal_level = replica\narchive_mode = on\narchive_command = 'cp %p {}/%f'\n",
                        archive.display()
                    ),
                )?;
                ""
            }
            None if options.durable => "",
            None => " -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        };
        Postgres {
            root: Some(root),
            data,
            bin,
            port,
            superuser_password,
            ca_pem,
            stopped: false,
        }
        .launch(durability, 60)
    }

    /// Starts the server of a cluster made (or copied) in `root`, with `options` after the
    /// listening ones, waiting up to `timeout_secs`; a watchdog stops it when this process ends.
    fn launch(self, options: &str, timeout_secs: u32) -> anyhow::Result<Self> {
        let server_options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}{options} -c max_connections=200",
            self.port,
            self.root_path().display()
        );
        let mut pg_ctl = as_owner(&self.bin.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.root_path().join("server.log"))
            .args([
                "-w",
                "-t",
                &timeout_secs.to_string(),
                "-o",
                &server_options,
                "start",
            ]);
        self.spawn_watchdog()?;
        run(pg_ctl, "pg_ctl start").map_err(|e| {
            let log =
                std::fs::read_to_string(self.root_path().join("server.log")).unwrap_or_default();
            e.context(format!("postgres server log:\n{log}"))
        })?;
        Ok(self)
    }

    fn root_path(&self) -> &Path {
        self.root.as_ref().map(|r| r.path()).unwrap_or(&self.data)
    }

    /// Starts a detached process that stops the cluster and removes its files when this process
    /// has gone, however it ended.
    fn spawn_watchdog(&self) -> anyhow::Result<()> {
        let runner = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        crate::after_exit(
            &format!(
                "{runner}'{}' -D '{}' -m immediate stop >/dev/null 2>&1; rm -rf '{}'",
                self.bin.join("pg_ctl").display(),
                self.data.display(),
                self.root_path().display()
            ),
            "postgres",
        )
    }

    /// The CA the server's certificate chains to (PEM), for clients that verify it (`verify-full`:
    /// the certificate names 127.0.0.1 only).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Returns the port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns a connection URL for `user` to `database`.
    pub fn url(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Returns the superuser's connection URL to `database`. Only for set-up: services never
    /// connect as superuser (it bypasses row-level security).
    pub fn superuser_url(&self, database: &str) -> String {
        self.url("postgres", &self.superuser_password, database)
    }

    /// Runs SQL statements as the superuser in `database`.
    pub async fn execute_as_superuser(&self, database: &str, sql: &str) -> anyhow::Result<()> {
        let mut conn = sqlx::PgConnection::connect(&self.superuser_url(database)).await?;
        sqlx::raw_sql(sql).execute(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }

    /// Creates a database with a fresh random name and returns the name.
    pub async fn create_database(&self, prefix: &str) -> anyhow::Result<String> {
        let name = format!("{prefix}_{}", random_secret().to_lowercase());
        self.execute_as_superuser("postgres", &format!("CREATE DATABASE \"{name}\""))
            .await?;
        Ok(name)
    }

    /// Creates a login role with `password`. `superuser` false gives NOSUPERUSER NOBYPASSRLS, the
    /// shape of every runtime role.
    pub async fn create_role(&self, name: &str, password: &str) -> anyhow::Result<()> {
        let pw = password.replace('\'', "''");
        self.execute_as_superuser(
            "postgres",
            &format!(
                "CREATE ROLE \"{name}\" LOGIN PASSWORD '{pw}' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
            ),
        )
        .await
    }

    /// Returns a full `pg_dump` of `database` (schema and data) as the superuser: what a backup or
    /// a stolen disk would show.
    pub fn dump(&self, database: &str) -> anyhow::Result<String> {
        let out = Command::new(self.bin.join("pg_dump"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "--no-password",
            ])
            .arg(database)
            .env("PGPASSWORD", &self.superuser_password)
            .stdin(Stdio::null())
            .output()
            .context("cannot run pg_dump")?;
        if !out.status.success() {
            bail!("pg_dump failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates the login role unless it exists (roles are cluster-wide, databases are per test).
    /// A fresh database for one service's schema: roles `<schema>_owner` and `<schema>_runtime`
    /// (created once per cluster with these passwords), the schema owned by the owner, usage for
    /// the runtime role. Returns the database's name.
    pub async fn service_database(
        &self,
        schema: &str,
        owner_password: &str,
        runtime_password: &str,
    ) -> anyhow::Result<String> {
        anyhow::ensure!(
            !schema.is_empty() && schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "schema names are lowercase letters and underscores"
        );
        self.ensure_role(&format!("{schema}_owner"), owner_password)
            .await?;
        self.ensure_role(&format!("{schema}_runtime"), runtime_password)
            .await?;
        let database = self.create_database(schema).await?;
        self.execute_as_superuser(
            &database,
            &format!(
                "CREATE SCHEMA {schema} AUTHORIZATION {schema}_owner;
                 GRANT USAGE ON SCHEMA {schema} TO {schema}_runtime;"
            ),
        )
        .await?;
        Ok(database)
    }

    pub async fn ensure_role(&self, name: &str, password: &str) -> anyhow::Result<()> {
        let pw = password.replace('\'', "''");
        self.execute_as_superuser(
            "postgres",
            &format!(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
                     CREATE ROLE \"{name}\" LOGIN PASSWORD '{pw}' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
                   END IF;
                 END $$"
            ),
        )
        .await
    }

    /// Takes a base backup of the whole cluster into `dest` (created; it must be empty), over
    /// TLS as the superuser, with the WAL it needs to be consistent.
    pub fn base_backup(&self, dest: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dest)?;
        chown_to_owner(dest)?;
        let mut cmd = as_owner(&self.bin.join("pg_basebackup"));
        cmd.arg("-D")
            .arg(dest)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                "postgres",
                "--no-password",
                "-X",
                "stream",
                "-c",
                "fast",
            ])
            .env("PGPASSWORD", &self.superuser_password)
            .env("PGSSLMODE", "require");
        run(cmd, "pg_basebackup")
    }

    /// A new cluster on a free port, restored from `backup` (a [`Postgres::base_backup`] of this
    /// one) by replaying `archive` up to `target` (a timestamp, `recovery_target_time`), then
    /// promoted. Same superuser and server certificate as this one. Returns once it takes writes.
    pub async fn restore(
        &self,
        backup: &Path,
        archive: &Path,
        target: &str,
    ) -> anyhow::Result<Postgres> {
        let (backup, archive, target) = (backup.to_owned(), archive.to_owned(), target.to_owned());
        let (bin, superuser_password, ca_pem) = (
            self.bin.clone(),
            self.superuser_password.clone(),
            self.ca_pem.clone(),
        );
        let pg = tokio::task::spawn_blocking(move || {
            let root = tempfile::Builder::new().prefix("coffer-pg-").tempdir()?;
            chown_to_owner(root.path())?;
            let data = root.path().join("data");
            let mut copy = as_owner(Path::new("/bin/cp"));
            copy.arg("-a").arg(&backup).arg(&data);
            run(copy, "copying the base backup")?;
            // Postgres refuses a data directory others can read.
            std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
            std::fs::write(data.join("recovery.signal"), "")?;
            chown_to_owner(&data.join("recovery.signal"))?;
            append_conf(
                &data,
                &format!(
                    "restore_command = 'cp {}/%f %p'\nrecovery_target_time = '{target}'\n\
                     recovery_target_action = 'promote'\narchive_mode = off\n",
                    archive.display()
                ),
            )?;
            Postgres {
                root: Some(root),
                data,
                bin,
                port: crate::free_port()?,
                superuser_password,
                ca_pem,
                stopped: false,
            }
            .launch("", 300)
        })
        .await??;
        // Replay ends at the target, then the server promotes itself and takes writes.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        loop {
            let conn = sqlx::PgConnection::connect(&pg.superuser_url("postgres")).await;
            let recovering = match conn {
                Ok(mut conn) => {
                    let r: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                        .fetch_one(&mut conn)
                        .await?;
                    conn.close().await?;
                    r
                }
                Err(_) => true,
            };
            if !recovering {
                return Ok(pg);
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the restored cluster is still recovering after 300 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Restarts the server as a crash would (`pg_ctl restart -m immediate`: every backend is
    /// killed, nothing is flushed, the start replays the WAL) and waits up to 60 s until it
    /// takes connections again, with the options it had.
    pub fn restart_immediate(&self) -> anyhow::Result<()> {
        let mut cmd = as_owner(&self.bin.join("pg_ctl"));
        cmd.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.root_path().join("server.log"))
            .args(["-m", "immediate", "-w", "-t", "60", "restart"]);
        run(cmd, "pg_ctl restart")
    }

    /// Stops the server now (fast shutdown). Called by `Drop` too.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let mut cmd = as_owner(&self.bin.join("pg_ctl"));
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = cmd.status();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
