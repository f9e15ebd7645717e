//! `coffer-dev dashboards`: the Grafana dashboards of `observability/grafana/dashboards/`,
//! generated from the panels below so that every dashboard shares its variables, its layout and
//! the selector every query carries; `--check` fails when the files differ from what this writes.
//!
//! Every query selects `namespace=~"$namespace", instance=~"$instance"` (written `SEL` below) and
//! groups at most by job, instance, rpc, route, code, reason, state, role and the like: never by an
//! org, a user or a file, which no series carries anyway. The queries are run against a live mesh
//! by `dev/tests/dashboards.rs`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct DashboardsArgs {
    /// Where the dashboards go.
    #[arg(long, default_value = "observability/grafana/dashboards")]
    dir: PathBuf,
    /// Fail if the files there differ from the generated ones, instead of writing them.
    #[arg(long)]
    check: bool,
}

/// The selector every query carries (the dashboard's variables).
const SEL: &str = r#"namespace=~"$namespace", instance=~"$instance""#;
/// The gRPC codes that are the server's fault (as the recording rules count them).
const SERVER_ERRORS: &str = "Unknown|Internal|Unavailable|DataLoss|DeadlineExceeded";

/// One panel: a title, a unit, and its queries with their legends.
struct Panel {
    title: &'static str,
    unit: &'static str,
    kind: Kind,
    queries: Vec<(String, &'static str)>,
}

#[derive(Clone, Copy)]
enum Kind {
    TimeSeries,
    Stat,
    Table,
}

fn panel(title: &'static str, unit: &'static str, queries: &[(&str, &'static str)]) -> Panel {
    Panel {
        title,
        unit,
        kind: Kind::TimeSeries,
        queries: queries
            .iter()
            .map(|(q, legend)| (q.replace("SEL", SEL), *legend))
            .collect(),
    }
}

fn stat(title: &'static str, unit: &'static str, query: &str, legend: &'static str) -> Panel {
    Panel {
        kind: Kind::Stat,
        ..panel(title, unit, &[(query, legend)])
    }
}

/// A row of panels under a heading.
struct Row {
    title: &'static str,
    panels: Vec<Panel>,
}

fn row(title: &'static str, panels: Vec<Panel>) -> Row {
    Row { title, panels }
}

struct Dashboard {
    uid: &'static str,
    title: &'static str,
    /// The job the per-service dashboards are about (their `instance` choices follow it).
    job: Option<&'static str>,
    rows: Vec<Row>,
}

/// Every dashboard, in the order of the files.
fn dashboards() -> Vec<Dashboard> {
    let mut out = vec![overview(), security()];
    for (service, rows) in [
        ("auth", auth()),
        ("metadata", metadata()),
        ("storage-signer", storage_signer()),
        ("audit", audit()),
        ("scan", scan()),
        ("gateway", gateway()),
    ] {
        out.push(service_dashboard(service, rows));
    }
    out
}

// === the dashboards ===

fn overview() -> Dashboard {
    Dashboard {
        uid: "coffer-overview",
        title: "Coffer / Overview",
        job: None,
        rows: vec![
            row(
                "The edge (the gateway's public API)",
                vec![
                    panel(
                        "Requests by status class",
                        "reqps",
                        &[(
                            r#"sum by (class) (label_replace(rate(coffer_http_server_requests_total{SEL}[$__rate_interval]), "class", "${1}xx", "status", "(\\d)\\d\\d"))"#,
                            "{{class}}",
                        )],
                    ),
                    panel(
                        "Refused as overloaded (503 / UNAVAILABLE) by service and kind",
                        "reqps",
                        &[(
                            r#"sum by (job, kind) (rate(coffer_load_shed_total{SEL}[$__rate_interval]))"#,
                            "{{job}} {{kind}}",
                        )],
                    ),
                    panel(
                        "Work in flight and queued",
                        "short",
                        &[
                            (
                                r#"sum by (job, kind) (coffer_in_flight{SEL})"#,
                                "{{job}} {{kind}} in flight",
                            ),
                            (
                                r#"sum by (job, kind) (coffer_queued{SEL})"#,
                                "{{job}} {{kind}} queued",
                            ),
                        ],
                    ),
                    panel(
                        "Server errors (5xx) ratio",
                        "percentunit",
                        &[(
                            r#"sum(rate(coffer_http_server_requests_total{SEL, status=~"5.."}[$__rate_interval])) / sum(rate(coffer_http_server_requests_total{SEL}[$__rate_interval]))"#,
                            "5xx",
                        )],
                    ),
                    panel(
                        "Latency p50 / p99",
                        "s",
                        &[
                            (
                                r#"histogram_quantile(0.5, sum by (le) (rate(coffer_http_server_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
                                "p50",
                            ),
                            (
                                r#"histogram_quantile(0.99, sum by (le) (rate(coffer_http_server_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
                                "p99",
                            ),
                        ],
                    ),
                ],
            ),
            row(
                "The mesh (gRPC, by service)",
                vec![
                    panel(
                        "Requests by service",
                        "reqps",
                        &[(
                            r#"sum by (job) (rate(coffer_grpc_server_requests_total{SEL}[$__rate_interval]))"#,
                            "{{job}}",
                        )],
                    ),
                    panel(
                        "Server-error ratio by service",
                        "percentunit",
                        &[(
                            &format!(
                                r#"sum by (job) (rate(coffer_grpc_server_requests_total{{SEL, code=~"{SERVER_ERRORS}"}}[$__rate_interval])) / sum by (job) (rate(coffer_grpc_server_requests_total{{SEL}}[$__rate_interval]))"#
                            ),
                            "{{job}}",
                        )],
                    ),
                    panel(
                        "Latency p99 by service",
                        "s",
                        &[(
                            r#"histogram_quantile(0.99, sum by (job, le) (rate(coffer_grpc_server_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
                            "{{job}}",
                        )],
                    ),
                ],
            ),
            row(
                "Processes",
                vec![
                    stat("Targets up", "none", r#"sum(up{SEL})"#, "up"),
                    panel(
                        "Resident memory",
                        "bytes",
                        &[(
                            r#"sum by (job, instance) (coffer_process_resident_memory_bytes{SEL})"#,
                            "{{job}} {{instance}}",
                        )],
                    ),
                    panel(
                        "CPU",
                        "percentunit",
                        &[(
                            r#"sum by (job, instance) (rate(coffer_process_cpu_seconds_total{SEL}[$__rate_interval]))"#,
                            "{{job}} {{instance}}",
                        )],
                    ),
                    Panel {
                        kind: Kind::Table,
                        ..panel(
                            "Versions running",
                            "none",
                            &[(
                                r#"count by (service, version, git_sha) (coffer_build_info{SEL})"#,
                                "{{service}} {{version}} {{git_sha}}",
                            )],
                        )
                    },
                ],
            ),
        ],
    }
}

fn security() -> Dashboard {
    Dashboard {
        uid: "coffer-security",
        title: "Coffer / Security",
        job: None,
        rows: vec![
            row(
                "Probing the mesh",
                vec![
                    panel(
                        "Caller denials (a service calling an RPC it may not)",
                        "short",
                        &[(
                            r#"sum by (job, rpc, peer) (increase(coffer_caller_denials_total{SEL}[$__rate_interval]))"#,
                            "{{job}} {{rpc}} from {{peer}}",
                        )],
                    ),
                    panel(
                        "Token rejections by reason",
                        "short",
                        &[(
                            r#"sum by (job, reason) (increase(coffer_token_rejections_total{SEL}[$__rate_interval]))"#,
                            "{{job}} {{reason}}",
                        )],
                    ),
                    panel(
                        "TLS handshake failures",
                        "short",
                        &[(
                            r#"sum by (job) (increase(coffer_tls_handshake_failures_total{SEL}[$__rate_interval]))"#,
                            "{{job}}",
                        )],
                    ),
                ],
            ),
            row(
                "Accounts",
                vec![
                    panel(
                        "Login failures and throttles by reason",
                        "short",
                        &[(
                            r#"sum by (reason) (increase(coffer_auth_login_failures_total{SEL}[$__rate_interval]))"#,
                            "{{reason}}",
                        )],
                    ),
                    panel(
                        "Refused credentials (sessions, API keys)",
                        "short",
                        &[(
                            r#"sum by (credential) (increase(coffer_auth_authentications_total{SEL, outcome="refused"}[$__rate_interval]))"#,
                            "{{credential}}",
                        )],
                    ),
                    rate_limited(),
                ],
            ),
            row(
                "Files",
                vec![
                    panel(
                        "Quarantines by verdict",
                        "short",
                        &[(
                            r#"sum by (verdict) (increase(coffer_scan_verdicts_total{SEL, verdict=~"infected|suspicious|sensitive|failed"}[$__rate_interval]))"#,
                            "{{verdict}}",
                        )],
                    ),
                    panel(
                        "Audit appends failing",
                        "short",
                        &[(
                            r#"sum(increase(coffer_audit_appends_total{SEL, outcome="failed"}[$__rate_interval]))"#,
                            "failed",
                        )],
                    ),
                    panel(
                        "Audit chain verify failures",
                        "short",
                        &[(
                            r#"sum(increase(coffer_audit_verify_failures_total{SEL}[$__rate_interval]))"#,
                            "failures",
                        )],
                    ),
                ],
            ),
        ],
    }
}

/// The panels every service has: its RPCs, its pool (when it has a database), its process.
fn service_dashboard(service: &'static str, own: Vec<Row>) -> Dashboard {
    let title: &'static str = Box::leak(format!("Coffer / {service}").into_boxed_str());
    let uid: &'static str = Box::leak(format!("coffer-{service}").into_boxed_str());
    let mut rows = Vec::new();
    if service != "gateway" {
        rows.push(row(
            "gRPC",
            vec![
                panel(
                    "Requests by RPC",
                    "reqps",
                    &[(
                        r#"sum by (rpc) (rate(coffer_grpc_server_requests_total{SEL}[$__rate_interval]))"#,
                        "{{rpc}}",
                    )],
                ),
                panel(
                    "Answers other than Ok, by RPC and code",
                    "reqps",
                    &[(
                        r#"sum by (rpc, code) (rate(coffer_grpc_server_requests_total{SEL, code!="Ok"}[$__rate_interval]))"#,
                        "{{rpc}} {{code}}",
                    )],
                ),
                panel(
                    "Latency p99 by RPC",
                    "s",
                    &[(
                        r#"histogram_quantile(0.99, sum by (rpc, le) (rate(coffer_grpc_server_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
                        "{{rpc}}",
                    )],
                ),
            ],
        ));
    }
    rows.extend(own);
    if matches!(service, "auth" | "metadata" | "audit" | "scan") {
        rows.push(row(
            "Database pool",
            vec![
                panel(
                    "Connections by role and state",
                    "short",
                    &[
                        (
                            r#"sum by (role, state) (coffer_db_pool_connections{SEL})"#,
                            "{{role}} {{state}}",
                        ),
                        (
                            r#"sum by (role) (coffer_db_pool_max_connections{SEL})"#,
                            "{{role}} max",
                        ),
                    ],
                ),
                panel(
                    "Waiting for a connection",
                    "short",
                    &[(r#"sum(coffer_db_pool_waiting{SEL})"#, "waiting")],
                ),
                panel(
                    "Connection and BEGIN p99",
                    "s",
                    &[(
                        r#"histogram_quantile(0.99, sum by (le) (rate(coffer_db_begin_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
                        "p99",
                    )],
                ),
            ],
        ));
    }
    rows.push(row(
        "Process",
        vec![
            panel(
                "Resident memory",
                "bytes",
                &[(
                    r#"coffer_process_resident_memory_bytes{SEL}"#,
                    "{{instance}}",
                )],
            ),
            panel(
                "CPU",
                "percentunit",
                &[(
                    r#"rate(coffer_process_cpu_seconds_total{SEL}[$__rate_interval])"#,
                    "{{instance}}",
                )],
            ),
            panel(
                "Open file descriptors of the limit",
                "percentunit",
                &[(
                    r#"coffer_process_open_fds{SEL} / coffer_process_max_fds{SEL}"#,
                    "{{instance}}",
                )],
            ),
            panel(
                "Days until the mesh certificate expires",
                "d",
                &[(
                    r#"(coffer_tls_certificate_not_after_seconds{SEL} - time()) / 86400"#,
                    "{{instance}}",
                )],
            ),
        ],
    ));
    Dashboard {
        uid,
        title,
        job: Some(Box::leak(format!("coffer-{service}").into_boxed_str())),
        rows,
    }
}

fn auth() -> Vec<Row> {
    vec![row(
        "Logins and credentials",
        vec![
            panel(
                "Logins and refusals",
                "short",
                &[
                    (
                        r#"sum(increase(coffer_auth_logins_total{SEL}[$__rate_interval]))"#,
                        "opened a session",
                    ),
                    (
                        r#"sum by (reason) (increase(coffer_auth_login_failures_total{SEL}[$__rate_interval]))"#,
                        "{{reason}}",
                    ),
                ],
            ),
            panel(
                "Credentials checked by kind and outcome",
                "reqps",
                &[(
                    r#"sum by (credential, outcome) (rate(coffer_auth_authentications_total{SEL}[$__rate_interval]))"#,
                    "{{credential}} {{outcome}}",
                )],
            ),
            stat(
                "Active sessions",
                "short",
                r#"max(coffer_auth_active_sessions{SEL})"#,
                "sessions",
            ),
        ],
    )]
}

fn metadata() -> Vec<Row> {
    vec![row(
        "Files",
        vec![
            panel(
                "Presigned URLs by kind",
                "short",
                &[(
                    r#"sum by (kind) (increase(coffer_metadata_presigns_total{SEL}[$__rate_interval]))"#,
                    "{{kind}}",
                )],
            ),
            panel(
                "Quota refusals",
                "short",
                &[(
                    r#"sum(increase(coffer_metadata_quota_refusals_total{SEL}[$__rate_interval]))"#,
                    "refused",
                )],
            ),
            panel(
                "Stale uploads swept, purged objects deleted after the recovery window",
                "short",
                &[
                    (
                        r#"sum(increase(coffer_metadata_sweep_removals_total{SEL}[$__rate_interval]))"#,
                        "stale uploads removed",
                    ),
                    (
                        r#"sum(increase(coffer_metadata_deferred_deletions_total{SEL}[$__rate_interval]))"#,
                        "purged objects deleted",
                    ),
                ],
            ),
        ],
    )]
}

fn storage_signer() -> Vec<Row> {
    vec![row(
        "The object store",
        vec![
            panel(
                "Store calls by operation and outcome",
                "reqps",
                &[(
                    r#"sum by (operation, outcome) (rate(coffer_signer_store_calls_total{SEL}[$__rate_interval]))"#,
                    "{{operation}} {{outcome}}",
                )],
            ),
            panel(
                "Store call p99 by operation",
                "s",
                &[(
                    r#"histogram_quantile(0.99, sum by (operation, le) (rate(coffer_signer_store_call_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
                    "{{operation}}",
                )],
            ),
        ],
    )]
}

fn audit() -> Vec<Row> {
    vec![row(
        "The log",
        vec![
            panel(
                "Appends by outcome",
                "reqps",
                &[(
                    r#"sum by (outcome) (rate(coffer_audit_appends_total{SEL}[$__rate_interval]))"#,
                    "{{outcome}}",
                )],
            ),
            panel(
                "Group-commit batch size p50 / p99",
                "short",
                &[
                    (
                        r#"histogram_quantile(0.5, sum by (le) (rate(coffer_audit_append_batch_size_bucket{SEL}[$__rate_interval])))"#,
                        "p50",
                    ),
                    (
                        r#"histogram_quantile(0.99, sum by (le) (rate(coffer_audit_append_batch_size_bucket{SEL}[$__rate_interval])))"#,
                        "p99",
                    ),
                ],
            ),
            panel(
                "Append latency p99",
                "s",
                &[(
                    r#"histogram_quantile(0.99, sum by (le) (rate(coffer_audit_append_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
                    "p99",
                )],
            ),
            panel(
                "Checkpoints written and verify failures",
                "short",
                &[
                    (
                        r#"sum(increase(coffer_audit_checkpoints_total{SEL}[$__rate_interval]))"#,
                        "checkpoints",
                    ),
                    (
                        r#"sum(increase(coffer_audit_verify_failures_total{SEL}[$__rate_interval]))"#,
                        "verify failures",
                    ),
                ],
            ),
            stat(
                "Age of the newest checkpoint",
                "s",
                r#"time() - max(coffer_audit_newest_checkpoint_timestamp_seconds{SEL} > 0)"#,
                "age",
            ),
        ],
    )]
}

fn scan() -> Vec<Row> {
    vec![
        row(
            "The queue",
            vec![
                panel(
                    "Jobs by state",
                    "short",
                    &[(r#"max by (state) (coffer_scan_jobs{SEL})"#, "{{state}}")],
                ),
                panel(
                    "Oldest queued job",
                    "s",
                    &[(
                        r#"max(coffer_scan_oldest_queued_job_age_seconds{SEL})"#,
                        "age",
                    )],
                ),
                panel(
                    "Claims and tries by outcome",
                    "short",
                    &[
                        (
                            r#"sum(increase(coffer_scan_jobs_claimed_total{SEL}[$__rate_interval]))"#,
                            "claimed",
                        ),
                        (
                            r#"sum by (outcome) (increase(coffer_scan_job_tries_total{SEL}[$__rate_interval]))"#,
                            "{{outcome}}",
                        ),
                    ],
                ),
                panel(
                    "Leases reaped (workers that died or hung)",
                    "short",
                    &[(
                        r#"sum(increase(coffer_scan_leases_reaped_total{SEL}[$__rate_interval]))"#,
                        "reaped",
                    )],
                ),
            ],
        ),
        row(
            "The engines",
            vec![
                panel(
                    "Verdicts by kind",
                    "short",
                    &[(
                        r#"sum by (verdict) (increase(coffer_scan_verdicts_total{SEL}[$__rate_interval]))"#,
                        "{{verdict}}",
                    )],
                ),
                panel(
                    "Engine time p99 by stage",
                    "s",
                    &[(
                        r#"histogram_quantile(0.99, sum by (engine, le) (rate(coffer_scan_engine_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
                        "{{engine}}",
                    )],
                ),
                panel(
                    "Bytes scanned",
                    "Bps",
                    &[(
                        r#"sum(rate(coffer_scan_bytes_total{SEL}[$__rate_interval]))"#,
                        "bytes",
                    )],
                ),
                panel(
                    "clamd errors",
                    "short",
                    &[(
                        r#"sum(increase(coffer_scan_clamd_errors_total{SEL}[$__rate_interval]))"#,
                        "errors",
                    )],
                ),
                panel(
                    "Engine children without a report, by reason",
                    "short",
                    &[(
                        r#"sum by (reason) (increase(coffer_scan_engine_child_failures_total{SEL}[$__rate_interval]))"#,
                        "{{reason}}",
                    )],
                ),
            ],
        ),
        row(
            "Webhooks",
            vec![
                panel(
                    "Deliveries by outcome",
                    "short",
                    &[(
                        r#"sum by (outcome) (increase(coffer_scan_webhook_deliveries_total{SEL}[$__rate_interval]))"#,
                        "{{outcome}}",
                    )],
                ),
                panel(
                    "Oldest event still owed",
                    "s",
                    &[(
                        r#"max(coffer_scan_webhook_oldest_undelivered_age_seconds{SEL})"#,
                        "age",
                    )],
                ),
            ],
        ),
    ]
}

/// The gateway's 429s: on the security dashboard (someone hammering) and the gateway's own.
fn rate_limited() -> Panel {
    panel(
        "Rate-limit refusals (429)",
        "short",
        &[(
            r#"sum(increase(coffer_gateway_rate_limited_total{SEL}[$__rate_interval]))"#,
            "429",
        )],
    )
}

fn gateway() -> Vec<Row> {
    vec![row(
        "The public API",
        vec![
            panel(
                "Requests by route",
                "reqps",
                &[(
                    r#"sum by (method, route) (rate(coffer_http_server_requests_total{SEL}[$__rate_interval]))"#,
                    "{{method}} {{route}}",
                )],
            ),
            panel(
                "Answers by status",
                "reqps",
                &[(
                    r#"sum by (status) (rate(coffer_http_server_requests_total{SEL}[$__rate_interval]))"#,
                    "{{status}}",
                )],
            ),
            panel(
                "Latency p99 by route",
                "s",
                &[(
                    r#"histogram_quantile(0.99, sum by (method, route, le) (rate(coffer_http_server_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
                    "{{method}} {{route}}",
                )],
            ),
            rate_limited(),
            stat(
                "Event streams open",
                "short",
                r#"sum(coffer_gateway_event_streams_open{SEL})"#,
                "streams",
            ),
        ],
    )]
}

// === JSON ===

const DATASOURCE: &str = "${datasource}";

/// The histograms whose observations carry a trace id as their exemplar.
const EXEMPLARS: [&str; 2] = [
    "coffer_grpc_server_duration_seconds_bucket",
    "coffer_http_server_duration_seconds_bucket",
];

fn variables(job: Option<&str>) -> Value {
    let ds = json!({"type": "prometheus", "uid": DATASOURCE});
    let query = |name: &str, q: String| {
        json!({
            "name": name,
            "label": name,
            "type": "query",
            "datasource": ds,
            "definition": q,
            "query": {"query": q, "refId": name},
            "refresh": 2,
            "includeAll": true,
            "multi": true,
            "allValue": ".*",
            "current": {"text": "All", "value": "$__all"},
            "sort": 1,
        })
    };
    let job_matcher = job.map(|j| format!(r#", job="{j}""#)).unwrap_or_default();
    json!({"list": [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {"text": "Prometheus", "value": "prometheus"},
        },
        query("namespace", "label_values(coffer_build_info, namespace)".into()),
        query(
            "instance",
            format!(r#"label_values(coffer_build_info{{namespace=~"$namespace"{job_matcher}}}, instance)"#),
        ),
    ]})
}

/// Adds the dashboard's job to a query's selector (a per-service dashboard shows that service).
fn scoped(expr: &str, job: Option<&str>) -> String {
    match job {
        Some(j) => expr.replace(SEL, &format!(r#"job="{j}", {SEL}"#)),
        None => expr.to_owned(),
    }
}

fn render(d: &Dashboard) -> Value {
    let ds = json!({"type": "prometheus", "uid": DATASOURCE});
    let mut panels = Vec::new();
    let mut id = 0;
    let mut y = 0;
    for r in &d.rows {
        id += 1;
        panels.push(json!({
            "id": id, "type": "row", "title": r.title, "collapsed": false,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": [],
        }));
        y += 1;
        // Up to four panels side by side.
        let width = 24 / r.panels.len().clamp(1, 4);
        for (i, p) in r.panels.iter().enumerate() {
            id += 1;
            let x = (i % 4) * width;
            let py = y + (i / 4) * 8;
            let targets: Vec<Value> = p
                .queries
                .iter()
                .zip('A'..)
                .map(|((expr, legend), ref_id)| {
                    json!({
                        "refId": ref_id.to_string(),
                        "datasource": ds,
                        "expr": scoped(expr, d.job),
                        "legendFormat": legend,
                        "range": !matches!(p.kind, Kind::Table),
                        "instant": matches!(p.kind, Kind::Table),
                        // The request latencies carry their traces (exemplars).
                        "exemplar": EXEMPLARS.iter().any(|h| expr.contains(h)),
                    })
                })
                .collect();
            let kind = match p.kind {
                Kind::TimeSeries => "timeseries",
                Kind::Stat => "stat",
                Kind::Table => "table",
            };
            panels.push(json!({
                "id": id,
                "type": kind,
                "title": p.title,
                "datasource": ds,
                "gridPos": {"h": 8, "w": width, "x": x, "y": py},
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                "options": {},
                "targets": targets,
            }));
        }
        y += r.panels.len().div_ceil(4) * 8;
    }
    let mut tags = vec!["coffer"];
    if let Some(j) = d.job {
        tags.push(j);
    }
    json!({
        "uid": d.uid,
        "title": d.title,
        "tags": tags,
        "editable": false,
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "utc",
        "templating": variables(d.job),
        "links": [{"title": "Coffer", "type": "dashboards", "tags": ["coffer"], "asDropdown": true}],
        "panels": panels,
    })
}

/// The files and their contents: `<uid>.json`, pretty-printed, ending in a newline.
fn files() -> anyhow::Result<Vec<(String, String)>> {
    dashboards()
        .iter()
        .map(|d| {
            let mut text = serde_json::to_string_pretty(&render(d))?;
            text.push('\n');
            Ok((format!("{}.json", d.uid), text))
        })
        .collect()
}

pub fn run(args: &DashboardsArgs) -> anyhow::Result<()> {
    let dir = Path::new(&args.dir);
    let files = files()?;
    if args.check {
        let mut stale = Vec::new();
        for (name, text) in &files {
            if std::fs::read_to_string(dir.join(name)).ok().as_deref() != Some(text.as_str()) {
                stale.push(name.clone());
            }
        }
        let known: Vec<&String> = files.iter().map(|f| &f.0).collect();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") && !known.contains(&&name) {
                stale.push(format!("{name} (not generated)"));
            }
        }
        anyhow::ensure!(
            stale.is_empty(),
            "dashboards differ from the generated ones: {stale:?}; run `coffer-dev dashboards`"
        );
        println!("{} dashboards are current", files.len());
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    for (name, text) in &files {
        std::fs::write(dir.join(name), text)?;
    }
    println!("wrote {} dashboards to {}", files.len(), dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_carries_the_selector_and_no_tenant() {
        for d in dashboards() {
            let v = render(&d);
            for p in v["panels"].as_array().unwrap() {
                for t in p["targets"].as_array().into_iter().flatten() {
                    let expr = t["expr"].as_str().unwrap();
                    assert!(expr.contains(SEL), "{}: {expr}", d.uid);
                    if let Some(job) = d.job {
                        assert!(expr.contains(&format!(r#"job="{job}""#)), "{expr}");
                    }
                    for tenant in ["org", "user", "file", "tenant"] {
                        assert!(!expr.contains(&format!("{tenant}_id")), "{expr}");
                    }
                }
            }
        }
    }
}
