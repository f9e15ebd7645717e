//! Database access shared by every service that owns a schema (DESIGN.md §3–§4).
//!
//! - Migrations run as the schema's **owner** role at start-up ([`migrate`]), with sqlx's
//!   bookkeeping table inside the schema, so services never share one.
//! - The service then works as its **runtime** role ([`runtime_pool`]), which must be neither a
//!   superuser nor BYPASSRLS: either would silently switch row-level security off, so the pool
//!   refuses to start with such a role, or with a schema that fails [`rls_audit`].
//! - Every tenant query runs inside a [`TenantTx`] (begun by [`tenant_tx`]), which sets
//!   `coffer.org_id` for the transaction only (`set_config(..., true)`, i.e. `SET LOCAL`) and
//!   carries the org in its type, so store functions read the org from the transaction rather
//!   than from a second argument: a pooled connection that skipped it sees no tenant rows at all,
//!   never another tenant's. The exception is the download's three hot statements, each a schema
//!   function that sets the tenant or capability for itself on a [`connection`] (one round trip
//!   instead of three); they take the org as an argument, from the caller's verified token.
//! - Postgres errors map to [`DbError`] here and nowhere else.
//!
//! Nothing here logs SQL parameters: they can hold file names.

mod pool_metrics;
pub use pool_metrics::{POOL_METRICS_EVERY, pool_metrics, record_pool};

use coffer_config::{DatabaseConfig, Secrets};
use secrecy::ExposeSecret as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions as _, Connection as _, PgPool, Postgres, Transaction};
use uuid::Uuid;

use coffer_errors::ErrorCode;

/// The Postgres setting row-level security policies read the tenant from.
pub const TENANT_SETTING: &str = "coffer.org_id";

/// A database failure, as the domain sees it. Its `Debug` (what services log for an internal
/// error) names a Postgres error by SQLSTATE, constraint, table and column only: Postgres puts
/// values in messages and details (`invalid input syntax for type uuid: "<value>"`, `Key
/// (email)=(<value>) already exists`), and those may be a file name or an email.
#[derive(thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("conflicting change")]
    Conflict,
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("role {0} may bypass row-level security (superuser or BYPASSRLS); refusing to use it")]
    UnsafeRole(String),
    /// The schema breaks the tenancy rules [`rls_audit`] checks (object and role names only).
    #[error("the schema breaks the tenancy rules; refusing to use it: {}", .0.join("; "))]
    UnsafeSchema(Vec<String>),
    #[error("database error")]
    Internal(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Config(#[from] coffer_config::ConfigError),
}

/// A sqlx error without the values Postgres may have put in it.
struct Redacted<'a>(&'a sqlx::Error);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            sqlx::Error::Database(db) => {
                let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
                f.debug_struct("Database")
                    .field("sqlstate", &db.code())
                    .field("constraint", &db.constraint())
                    .field("table", &pg.and_then(|p| p.table()))
                    .field("column", &pg.and_then(|p| p.column()))
                    .finish()
            }
            // The other kinds (I/O, TLS, pool, protocol, decoding) carry no row data.
            other => write!(f, "{other}"),
        }
    }
}

impl std::fmt::Debug for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::NotFound => f.write_str("NotFound"),
            DbError::AlreadyExists => f.write_str("AlreadyExists"),
            DbError::Conflict => f.write_str("Conflict"),
            DbError::Unavailable(e) => f.debug_tuple("Unavailable").field(&Redacted(e)).finish(),
            DbError::UnsafeRole(role) => f.debug_tuple("UnsafeRole").field(role).finish(),
            DbError::UnsafeSchema(found) => f.debug_tuple("UnsafeSchema").field(found).finish(),
            DbError::Internal(e) => f.debug_tuple("Internal").field(&Redacted(e)).finish(),
            DbError::Migration(e) => f.debug_tuple("Migration").field(e).finish(),
            DbError::Config(e) => f.debug_tuple("Config").field(e).finish(),
        }
    }
}

impl DbError {
    /// Returns the shared error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            DbError::NotFound => ErrorCode::NotFound,
            DbError::AlreadyExists => ErrorCode::AlreadyExists,
            DbError::Conflict => ErrorCode::Conflict,
            DbError::Unavailable(_) => ErrorCode::Unavailable,
            DbError::UnsafeRole(_)
            | DbError::UnsafeSchema(_)
            | DbError::Internal(_)
            | DbError::Migration(_)
            | DbError::Config(_) => ErrorCode::Internal,
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => DbError::NotFound,
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // unique_violation
                Some("23505") => DbError::AlreadyExists,
                // foreign_key_violation: the referenced row is absent (or invisible to this tenant)
                Some("23503") => DbError::NotFound,
                // check_violation, exclusion_violation, serialization_failure, deadlock_detected
                Some("23514" | "23P01" | "40001" | "40P01") => DbError::Conflict,
                // insufficient_privilege, including a row-level security refusal on write
                Some("42501") => DbError::NotFound,
                // The server is going away or not back yet: a retry may well work.
                Some(code) if server_unavailable(code) => DbError::Unavailable(e),
                _ => DbError::Internal(e),
            },
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => DbError::Unavailable(e),
            _ => DbError::Internal(e),
        }
    }
}

/// The SQLSTATEs of a server that cannot take the work now: connection_exception (class 08),
/// insufficient_resources (class 53: too many connections, out of memory or disk), and
/// admin_shutdown, crash_shutdown, cannot_connect_now (57P01–57P03: a restart, a crash
/// recovery, a start-up in progress).
fn server_unavailable(sqlstate: &str) -> bool {
    sqlstate.starts_with("08")
        || sqlstate.starts_with("53")
        || matches!(sqlstate, "57P01" | "57P02" | "57P03")
}

fn in_schema(options: PgConnectOptions, schema: &str) -> PgConnectOptions {
    options
        .options([("search_path", schema)])
        .disable_statement_logging()
}

/// Applies `migrator` to `schema` as its owner, keeping sqlx's migration table inside that
/// schema. Migrations read the runtime role's name from `current_setting('coffer.runtime_role')`
/// to grant it DML.
pub async fn migrate(
    owner: PgConnectOptions,
    schema: &str,
    runtime_role: &str,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), DbError> {
    let mut conn = in_schema(owner, schema)
        .options([("coffer.runtime_role", runtime_role)])
        .connect()
        .await?;
    migrator.run(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// A connection idle longer than this is pinged before it is handed out.
const PING_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// The services' pool settings: at most `max` connections, 5 s to get one, and a ping only for a
/// connection that sat idle for [`PING_IF_IDLE_FOR`]. sqlx pings every idle connection it hands
/// out by default, a round trip before every transaction that a busy service does not need: a
/// connection used a moment ago is alive, and if the server went away since, the statement fails
/// as unavailable (503 with `Retry-After`) and sqlx's own ping when the connection comes back
/// closes it.
fn pool_options(max: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Whether role `$1` is a superuser or bypasses row-level security, itself or through a role it
/// is a member of (inherited or reached with SET ROLE).
const UNSAFE_ROLE: &str = "SELECT bool_or(r.rolsuper), bool_or(r.rolbypassrls)
     FROM pg_roles me JOIN pg_roles r ON pg_has_role(me.oid, r.oid, 'MEMBER')
     WHERE me.rolname = $1
     GROUP BY me.oid";

/// Opens the runtime pool for `schema`, after checking that the role cannot bypass row-level
/// security and that the schema passes [`rls_audit`] (a grant or a function added by hand that
/// opens a way around the policies stops the service at start-up, naming it).
pub async fn runtime_pool(
    runtime: PgConnectOptions,
    schema: &str,
    max: u32,
) -> Result<PgPool, DbError> {
    let pool = pool_options(max)
        .connect_with(in_schema(runtime, schema))
        .await?;
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&pool)
        .await?;
    let (superuser, bypasses): (bool, bool) = sqlx::query_as(UNSAFE_ROLE)
        .bind(&role)
        .fetch_one(&pool)
        .await?;
    if superuser || bypasses {
        pool.close().await;
        return Err(DbError::UnsafeRole(role));
    }
    let violations = rls_audit(&pool, schema, &role).await?;
    if !violations.is_empty() {
        pool.close().await;
        return Err(DbError::UnsafeSchema(violations));
    }
    Ok(pool)
}

/// Connects as `user` with the password in the secret file `password_secret`, over TLS that
/// checks the server's certificate names `db.host` and chains to `db-ca.crt` (`verify-full`;
/// sqlx adds the public web roots to the store too, so `db.host` should be an internal name).
fn connect_options(
    db: &DatabaseConfig,
    secrets: &Secrets,
    user: &str,
    password_secret: &str,
) -> Result<PgConnectOptions, DbError> {
    let password = secrets.string(password_secret)?;
    let ca = secrets.require(DATABASE_CA)?;
    Ok(PgConnectOptions::new()
        .host(&db.host)
        .port(db.port)
        .database(&db.name)
        .username(user)
        .password(password.expose_secret())
        .ssl_mode(PgSslMode::VerifyFull)
        .ssl_root_cert(ca))
}

/// The role password files, as `coffer_config::SecretFile::DATABASE_ROLES` names them.
const OWNER_PASSWORD: &str = coffer_config::SecretFile::DATABASE_ROLES.files[0];
const RUNTIME_PASSWORD: &str = coffer_config::SecretFile::DATABASE_ROLES.files[1];
const DATABASE_CA: &str = coffer_config::SecretFile::DATABASE_ROLES.files[2];

/// What every schema-owning service does at start-up: migrate as the owner (password in
/// `db-owner-password`), then open the runtime pool (password in `db-runtime-password`).
pub async fn open(
    db: &DatabaseConfig,
    secrets: &Secrets,
    migrator: &sqlx::migrate::Migrator,
) -> Result<PgPool, DbError> {
    let owner = connect_options(db, secrets, &db.owner_user, OWNER_PASSWORD)?;
    migrate(owner, &db.schema, &db.runtime_user, migrator).await?;
    let runtime = connect_options(db, secrets, &db.runtime_user, RUNTIME_PASSWORD)?;
    runtime_pool(runtime, &db.schema, db.pool_size).await
}

/// A small pool of the schema's owner role (password in `db-owner-password`), for the rare job
/// that only the owner may do (audit's retention). Row-level security is forced for the owner too.
pub async fn owner_pool(
    db: &DatabaseConfig,
    secrets: &Secrets,
    max: u32,
) -> Result<PgPool, DbError> {
    let owner = connect_options(db, secrets, &db.owner_user, OWNER_PASSWORD)?;
    Ok(pool_options(max)
        .connect_with(in_schema(owner, &db.schema))
        .await?)
}

/// A transaction in which row-level security sees one org's rows, with that org in its type:
/// store functions that work on a tenant's rows take a `&mut TenantTx` and read the org from it
/// ([`TenantTx::org`]) rather than from a second argument that could disagree with the setting
/// the rows are filtered by. Here only [`tenant_tx`] and [`TenantTx::adopt`] set the tenant
/// ([`set_local`] and [`begin_with_setting`] refuse `coffer.org_id`; the schema functions a
/// [`connection`] calls set it for themselves). It derefs to the connection
/// for running statements; dropped without [`TenantTx::commit`], it rolls back.
pub struct TenantTx {
    org: Uuid,
    tx: Transaction<'static, Postgres>,
}

impl TenantTx {
    /// The org whose rows this transaction sees.
    pub fn org(&self) -> Uuid {
        self.org
    }

    /// Makes a transaction that began without a tenant the org's for the rest of it: after the
    /// lookup capability `lookup` (a `coffer.lookup_*` setting) found the org, the capability
    /// ends in the same statement, so what follows sees the org's rows and nothing the lookup
    /// showed; `None` for a transaction begun without one (its own isolation level, say).
    pub async fn adopt(
        mut tx: Transaction<'static, Postgres>,
        org: Uuid,
        lookup: Option<&str>,
    ) -> Result<Self, DbError> {
        let org_text = org.hyphenated().to_string();
        match lookup {
            Some(name) => {
                if !name.starts_with("coffer.lookup_") {
                    return Err(refused(name));
                }
                sqlx::query("SELECT set_config($1, '', true), set_config($2, $3, true)")
                    .bind(name)
                    .bind(TENANT_SETTING)
                    .bind(&org_text)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                sqlx::query("SELECT set_config($1, $2, true)")
                    .bind(TENANT_SETTING)
                    .bind(&org_text)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(Self { org, tx })
    }

    pub async fn commit(self) -> Result<(), DbError> {
        Ok(self.tx.commit().await?)
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        Ok(self.tx.rollback().await?)
    }
}

impl std::ops::Deref for TenantTx {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Begins a transaction with no setting (row-level security then shows nothing: for statements
/// that set their own capability, or tables without tenant rows), timed like every other.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, DbError> {
    Ok(pool_metrics::timed_begin(pool.begin()).await?)
}

/// A connection for one statement that is its own transaction: a call of a schema's function that
/// sets the capability or tenant it reads with and puts it back before it returns (auth's
/// `resolve_session`, metadata's `file_of`, audit's `append_after`), one round trip where
/// `BEGIN` + setting, the statement and `COMMIT` take three. The acquire is timed as a `BEGIN`
/// is ([`pool_metrics`]). Such a function takes its org as an argument, outside [`TenantTx`]: its
/// callers pass the org of the caller's verified token or the audit writer's own org.
pub async fn connection(pool: &PgPool) -> Result<sqlx::pool::PoolConnection<Postgres>, DbError> {
    Ok(pool_metrics::timed_begin(pool.acquire()).await?)
}

/// Begins a transaction in which row-level security sees only `org_id`'s rows.
pub async fn tenant_tx(pool: &PgPool, org_id: Uuid) -> Result<TenantTx, DbError> {
    let tx = begin_with(pool, TENANT_SETTING, &org_id.hyphenated().to_string()).await?;
    Ok(TenantTx { org: org_id, tx })
}

fn refused(name: &str) -> DbError {
    DbError::Internal(sqlx::Error::Protocol(format!(
        "refusing to set {name:?} here"
    )))
}

/// Begins a transaction with one `coffer.*` setting for it (a lookup capability, say), in one
/// round trip: `BEGIN` and `set_config(..., true)` go as one simple query. Only names of `coffer.`
/// and `[a-z_]` and values of hex digits and hyphens (UUIDs, hashes) are written into the query
/// text; anything else is refused here, never quoted. The tenant is not set this way: that is
/// [`tenant_tx`].
pub async fn begin_with_setting(
    pool: &PgPool,
    name: &str,
    value: &str,
) -> Result<Transaction<'static, Postgres>, DbError> {
    if name == TENANT_SETTING {
        return Err(refused(name));
    }
    begin_with(pool, name, value).await
}

async fn begin_with(
    pool: &PgPool,
    name: &str,
    value: &str,
) -> Result<Transaction<'static, Postgres>, DbError> {
    let name_ok = name
        .strip_prefix("coffer.")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    let value_ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if !name_ok || !value_ok {
        return Err(refused(name));
    }
    let begin = pool.begin_with(format!(
        "BEGIN; SELECT set_config('{name}', '{value}', true)"
    ));
    Ok(pool_metrics::timed_begin(begin).await?)
}

/// Sets a `coffer.*` setting (not the tenant: see [`TenantTx`]) for the rest of the current
/// transaction only.
pub async fn set_local(
    tx: &mut sqlx::PgConnection,
    name: &str,
    value: &str,
) -> Result<(), DbError> {
    if name == TENANT_SETTING || !name.starts_with("coffer.") {
        return Err(refused(name));
    }
    sqlx::query("SELECT set_config($1, $2, true)")
        .bind(name)
        .bind(value)
        .execute(tx)
        .await?;
    Ok(())
}

/// Prefix a statement with this, run it (with its parameters) and pass the row to
/// [`pages_read`]: how many 8 KiB pages executing it touched. For tests of hot statements, whose
/// work must not grow with the table (row-level security policies joined by OR, for example, can
/// hide an index from the planner without changing any result).
pub const EXPLAIN_PAGES: &str = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, FORMAT JSON) ";

/// The shared buffers (hit or read) the statement explained with [`EXPLAIN_PAGES`] touched while
/// executing (planning not counted).
pub fn pages_read(row: &sqlx::postgres::PgRow) -> Result<u64, DbError> {
    let bad = |what: String| DbError::Internal(sqlx::Error::Protocol(what));
    // The column is `json`, whose wire form is its text.
    let text: String = sqlx::Row::try_get_unchecked(row, 0)?;
    let plan: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("EXPLAIN output: {e}")))?;
    let top = &plan[0]["Plan"];
    ["Shared Hit Blocks", "Shared Read Blocks"]
        .iter()
        .map(|k| {
            top[k]
                .as_u64()
                .ok_or_else(|| bad(format!("EXPLAIN output without {k}")))
        })
        .sum()
}

/// Checks a schema against the tenancy rules and returns every violation found (empty = sound).
/// "The runtime role" below includes every role it is a member of, inherited or reached with SET
/// ROLE.
///
/// - The runtime role: missing, a superuser, or allowed to bypass row-level security.
/// - The schema: missing, with any right for PUBLIC, owned by the runtime role, or one the
///   runtime role may create objects in.
/// - A table with an `org_id` column: row-level security not enabled, not forced or without a
///   policy, or TRUNCATE (which ignores policies) allowed to the runtime role.
/// - A view or materialized view the runtime role may read, unless the view is
///   `security_invoker`: it reads its tables as its owner, past their policies.
/// - A table, view or function owned by the runtime role (it could change them).
/// - A SECURITY DEFINER function that PUBLIC may execute, that is owned by a role that bypasses
///   row-level security, or whose search path is not exactly its own schema then `pg_temp`
///   (without `pg_temp` named last, a caller's temporary table is searched first and stands in
///   for the schema's own, with the owner's rights).
pub async fn rls_audit(
    pool: &PgPool,
    schema: &str,
    runtime_role: &str,
) -> Result<Vec<String>, DbError> {
    let role: Option<(bool, bool)> = sqlx::query_as(UNSAFE_ROLE)
        .bind(runtime_role)
        .fetch_optional(pool)
        .await?;
    match role {
        // The checks below ask about the role's rights: without it they cannot be asked.
        None => return Ok(vec![format!("runtime role {runtime_role} does not exist")]),
        Some((true, _)) => {
            return Ok(vec![format!(
                "runtime role {runtime_role} is a superuser or a member of one"
            )]);
        }
        Some((_, true)) => {
            return Ok(vec![format!(
                "runtime role {runtime_role} has BYPASSRLS or is a member of a role that has it"
            )]);
        }
        Some(_) => {}
    }
    // What the runtime role may do as itself or through a role it is a member of (inherited or
    // reached with SET ROLE: `MEMBER`, not `USAGE`, so a NOINHERIT membership counts too).
    let grants: Option<(bool, bool, bool, bool)> = sqlx::query_as(
        "SELECT has_schema_privilege('public', n.oid, 'USAGE'),
                has_schema_privilege('public', n.oid, 'CREATE'),
                EXISTS (SELECT 1 FROM pg_roles r
                        WHERE pg_has_role($2, r.oid, 'MEMBER')
                          AND has_schema_privilege(r.oid, n.oid, 'CREATE')),
                pg_has_role($2, n.nspowner, 'MEMBER')
         FROM pg_namespace n WHERE n.nspname = $1",
    )
    .bind(schema)
    .bind(runtime_role)
    .fetch_optional(pool)
    .await?;
    let Some((public_usage, public_create, runtime_create, runtime_owns)) = grants else {
        return Ok(vec![format!("schema {schema} does not exist")]);
    };
    let mut violations = Vec::new();
    if public_usage {
        violations.push(format!("schema {schema}: PUBLIC has USAGE"));
    }
    if public_create {
        violations.push(format!("schema {schema}: PUBLIC has CREATE"));
    }
    if runtime_create {
        violations.push(format!(
            "schema {schema}: the runtime role {runtime_role} may create objects"
        ));
    }
    if runtime_owns {
        violations.push(format!(
            "schema {schema}: owned by the runtime role {runtime_role} or a role it is a member of"
        ));
    }
    // Tables with org_id: forced under a policy, and no TRUNCATE for the runtime role (TRUNCATE
    // does not look at policies). Every view and materialized view the runtime role may read,
    // with org_id or not (a view can leave the column out and still read every org's rows): a
    // view reads its tables as its owner unless it is `security_invoker`, and a materialized
    // view has no row-level security at all.
    let tables: Vec<(String, String, bool, bool, i64, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relkind::text, c.relrowsecurity, c.relforcerowsecurity,
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid),
                EXISTS (SELECT 1 FROM pg_roles r
                        WHERE pg_has_role($2, r.oid, 'MEMBER')
                          AND has_table_privilege(r.oid, c.oid, 'TRUNCATE')),
                EXISTS (SELECT 1 FROM pg_roles r
                        WHERE pg_has_role($2, r.oid, 'MEMBER')
                          AND has_table_privilege(r.oid, c.oid, 'SELECT'))
                  AND NOT (c.relkind = 'v' AND coalesce(c.reloptions, '{}') &&
                           ARRAY['security_invoker=true', 'security_invoker=on',
                                 'security_invoker=1', 'security_invoker=yes'])
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1
           AND (c.relkind IN ('v', 'm')
                OR c.relkind IN ('r', 'p')
                   AND EXISTS (SELECT 1 FROM pg_attribute a
                               WHERE a.attrelid = c.oid AND a.attname = 'org_id'
                                 AND NOT a.attisdropped))
         ORDER BY 1",
    )
    .bind(schema)
    .bind(runtime_role)
    .fetch_all(pool)
    .await?;
    for (table, kind, enabled, forced, policies, truncates, reads_past) in tables {
        if kind == "v" || kind == "m" {
            if reads_past {
                violations.push(format!(
                    "{schema}.{table}: a view the runtime role reads past the tables' policies"
                ));
            }
            continue;
        }
        if truncates {
            violations.push(format!(
                "{schema}.{table}: the runtime role {runtime_role} may TRUNCATE it"
            ));
        }
        if !enabled {
            violations.push(format!("{schema}.{table}: row-level security not enabled"));
        }
        if !forced {
            violations.push(format!("{schema}.{table}: row-level security not forced"));
        }
        if policies == 0 {
            violations.push(format!("{schema}.{table}: no row-level security policy"));
        }
    }
    let owned: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND pg_has_role($2, c.relowner, 'MEMBER')
         ORDER BY 1",
    )
    .bind(schema)
    .bind(runtime_role)
    .fetch_all(pool)
    .await?;
    for (rel,) in owned {
        violations.push(format!(
            "{schema}.{rel}: owned by the runtime role {runtime_role} or a role it is a member of"
        ));
    }
    violations.extend(function_rules(pool, schema, runtime_role).await?);
    Ok(violations)
}

/// The functions' owners, and the SECURITY DEFINER functions' callers, owners and search paths.
async fn function_rules(
    pool: &PgPool,
    schema: &str,
    runtime_role: &str,
) -> Result<Vec<String>, DbError> {
    // A definer's path is compared whole with the one form allowed, as Postgres stores it (a
    // quoted list, `pg_temp` named twice or a schema of someone else's would each pass a looser
    // reading of it).
    let functions: Vec<(String, bool, bool, bool, bool, bool)> = sqlx::query_as(
        "SELECT format('%s.%s(%s)', n.nspname, p.proname,
                       pg_get_function_identity_arguments(p.oid)),
                pg_has_role($2, p.proowner, 'MEMBER'),
                p.prosecdef,
                has_function_privilege('public', p.oid, 'EXECUTE'),
                r.rolsuper OR r.rolbypassrls,
                coalesce(p.proconfig, '{}')
                    @> ARRAY[format('search_path=%s, pg_temp', quote_ident(n.nspname))]
         FROM pg_proc p
         JOIN pg_namespace n ON n.oid = p.pronamespace
         JOIN pg_roles r ON r.oid = p.proowner
         WHERE n.nspname = $1
         ORDER BY 1",
    )
    .bind(schema)
    .bind(runtime_role)
    .fetch_all(pool)
    .await?;
    let mut violations = Vec::new();
    for (function, runtime_owned, definer, public_executes, owner_bypasses, path_fixed) in functions
    {
        if runtime_owned {
            violations.push(format!(
                "{function}: owned by the runtime role {runtime_role} or a role it is a member of"
            ));
        }
        if !definer {
            continue;
        }
        if public_executes {
            violations.push(format!(
                "{function}: SECURITY DEFINER and PUBLIC may execute it"
            ));
        }
        if owner_bypasses {
            violations.push(format!(
                "{function}: SECURITY DEFINER, owned by a role that bypasses row-level security"
            ));
        }
        if !path_fixed {
            violations.push(format!(
                "{function}: SECURITY DEFINER without the search path `{schema}, pg_temp`"
            ));
        }
    }
    Ok(violations)
}
