//! The shipped Prometheus and Alertmanager files, checked with the real tools (Debian's
//! `promtool` and `amtool`, installed by `scripts/install-deps`) and against what the services
//! expose: the config and rules load, every alert fires and stays quiet in its unit tests, every
//! recording rule has a test, the routing sends pages and tickets where they belong, every alert
//! has its annotations and its runbook section, no expression pads itself to look non-empty, and
//! every metric a rule reads is one the shared telemetry exposes under that name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

mod support;
use support::to_json;

fn observability() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../observability")
}

fn run(tool: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is missing ({e}): run scripts/install-deps"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .remove(0)
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

struct Rule {
    name: String,
    alert: bool,
    expr: String,
    rule: Yaml,
}

fn rules() -> Vec<Rule> {
    let mut out = Vec::new();
    for file in files(&observability().join("prometheus/rules"), "yml") {
        for group in yaml(&file)["groups"].as_vec().unwrap() {
            for rule in group["rules"].as_vec().unwrap() {
                let (name, alert) = match (rule["alert"].as_str(), rule["record"].as_str()) {
                    (Some(a), _) => (a, true),
                    (_, Some(r)) => (r, false),
                    _ => panic!("a rule with neither alert nor record in {}", file.display()),
                };
                out.push(Rule {
                    name: name.to_owned(),
                    alert,
                    expr: rule["expr"].as_str().unwrap().to_owned(),
                    rule: rule.clone(),
                });
            }
        }
    }
    assert!(out.len() > 10, "read the rules");
    out
}

#[test]
fn prometheus_config_and_rules_load_and_their_unit_tests_pass() {
    let dir = observability().join("prometheus");
    let (ok, out) = run("promtool", &["check", "config", "prometheus.yml"], &dir);
    assert!(ok, "{out}");
    for file in files(&dir.join("rules"), "yml") {
        let (ok, out) = run(
            "promtool",
            &["check", "rules", file.to_str().unwrap()],
            &dir,
        );
        assert!(ok, "{out}");
    }
    let tests = files(&dir.join("tests"), "yml");
    assert!(!tests.is_empty());
    for file in tests {
        let (ok, out) = run(
            "promtool",
            &["test", "rules", file.file_name().unwrap().to_str().unwrap()],
            &dir.join("tests"),
        );
        assert!(ok, "{out}");
        assert!(out.contains("SUCCESS"), "{out}");
    }
}

#[test]
fn every_alert_fires_and_stays_quiet_in_a_test_and_every_recording_rule_is_tested() {
    let mut fired = std::collections::HashSet::new();
    let mut quiet = std::collections::HashSet::new();
    let mut queried = String::new();
    for file in files(&observability().join("prometheus/tests"), "yml") {
        for test in yaml(&file)["tests"].as_vec().unwrap() {
            for case in test["alert_rule_test"].as_vec().into_iter().flatten() {
                let name = case["alertname"].as_str().unwrap().to_owned();
                if case["exp_alerts"].as_vec().is_some_and(|a| !a.is_empty()) {
                    fired.insert(name);
                } else {
                    quiet.insert(name);
                }
            }
            for case in test["promql_expr_test"].as_vec().into_iter().flatten() {
                queried += case["expr"].as_str().unwrap();
                queried += "\n";
            }
        }
    }
    for rule in rules() {
        if rule.alert {
            assert!(fired.contains(&rule.name), "no test fires {}", rule.name);
            assert!(
                quiet.contains(&rule.name),
                "no test keeps {} quiet",
                rule.name
            );
        } else {
            assert!(
                queried.lines().any(|q| q == rule.name),
                "no test queries the recording rule {}",
                rule.name
            );
        }
    }
}

#[test]
fn every_alert_says_what_it_means_and_links_its_runbook() {
    let runbooks = std::fs::read_to_string(observability().join("runbooks.md")).unwrap();
    for rule in rules().into_iter().filter(|r| r.alert) {
        let severity = rule.rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("page" | "ticket")),
            "{}: severity {severity:?}",
            rule.name
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                rule.rule["annotations"][key]
                    .as_str()
                    .is_some_and(|v| v.len() > 10),
                "{} has no {key}",
                rule.name
            );
        }
        let url = rule.rule["annotations"]["runbook_url"].as_str().unwrap();
        assert_eq!(
            url,
            format!("observability/runbooks.md#{}", rule.name.to_lowercase()),
            "{}",
            rule.name
        );
        assert!(
            runbooks.contains(&format!("\n## {}\n", rule.name)),
            "runbooks.md has no section for {}",
            rule.name
        );
    }
}

#[test]
fn no_expression_pads_itself_to_look_non_empty() {
    for rule in rules() {
        let expr = rule.expr.replace(' ', "");
        for padding in ["vector(0)", "absent(", "absent_over_time("] {
            assert!(!expr.contains(padding), "{}: {}", rule.name, rule.expr);
        }
    }
}

/// Every `coffer_*` series a rule reads is one the shared telemetry exposes under exactly that
/// name (`_total`, `_bucket` and `_count` as the exposition writes them).
#[tokio::test]
async fn every_metric_the_rules_read_is_one_the_services_expose() {
    let m = coffer_telemetry::metrics();
    m.record_rpc("/coffer.v1.Test/Call", "Ok", 0.001);
    m.record_http("/v1/me", "GET", 200, 0.001);
    m.token_rejected("bad_tag");
    m.caller_denied("/coffer.v1.Test/Call", "gateway");
    m.set_build_info("test");
    coffer_audit::register_metrics();
    coffer_scan::register_metrics();
    // A pool that never connects is enough for its gauges to exist.
    let pool = sqlx::PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
    coffer_db::record_pool(&pool, "runtime");
    let exposed = m.encode();
    let mut checked = 0;
    for rule in rules() {
        for name in support::metric_names(&rule.expr) {
            assert!(
                exposed
                    .lines()
                    .any(|l| l.starts_with(&format!("{name}{{"))
                        || l.starts_with(&format!("{name} "))),
                "{}: {name} is not exposed:\n{exposed}",
                rule.name
            );
            checked += 1;
        }
    }
    assert!(checked > 10, "read the rules' metrics");
}

#[test]
fn alertmanager_config_loads_and_routes_pages_and_tickets() {
    let dir = observability().join("alertmanager");
    let (ok, out) = run("amtool", &["check-config", "alertmanager.yml"], &dir);
    assert!(ok, "{out}");
    for (labels, receiver) in [
        (
            &[
                "severity=page",
                "alertname=CofferTargetDown",
                "job=coffer-auth",
            ][..],
            "page",
        ),
        (
            &["severity=ticket", "alertname=CofferCallerDenied"][..],
            "ticket",
        ),
        (&["alertname=SomethingElse"][..], "null"),
    ] {
        let mut args = vec!["config", "routes", "test", "--config.file=alertmanager.yml"];
        let verify = format!("--verify.receivers={receiver}");
        args.push(&verify);
        args.extend_from_slice(labels);
        let (ok, out) = run("amtool", &args, &dir);
        assert!(ok, "{labels:?} should go to {receiver}: {out}");
    }
    // And the check can fail: a page is not routed to the ticket receiver.
    let (ok, _) = run(
        "amtool",
        &[
            "config",
            "routes",
            "test",
            "--config.file=alertmanager.yml",
            "--verify.receivers=ticket",
            "severity=page",
        ],
        &dir,
    );
    assert!(!ok, "a page went to the ticket receiver");
}

// === the configs that cannot run here: Grafana, Loki, Alloy, the collector, Tempo ===

/// `host:port` of a URL or an endpoint (`http://loki:3100/path`, `tempo:4317`, `0.0.0.0:4317`).
fn host_port(url: &str) -> (String, u16) {
    let rest = url.split("://").last().unwrap();
    let authority = rest.split('/').next().unwrap();
    let (host, port) = authority.rsplit_once(':').expect("a port");
    (host.to_owned(), port.parse().expect("a numeric port"))
}

/// A small reader of Alloy's configuration syntax, enough to check the file: strings and
/// comments are skipped correctly, braces balance, and it returns the components (`kind
/// "label"`) and every reference to a component's export (`kind.label.export`).
struct Alloy {
    components: Vec<(String, String)>,
    references: Vec<String>,
    strings: Vec<String>,
}

fn read_alloy(text: &str) -> Alloy {
    let mut components = Vec::new();
    let mut references = Vec::new();
    let mut strings = Vec::new();
    let mut depth = 0i32;
    let mut chars = text.char_indices().peekable();
    let mut word = String::new();
    let mut last_word = String::new();
    let mut pending_label: Option<(String, String)> = None;
    while let Some((_, c)) = chars.next() {
        match c {
            '/' if chars.peek().map(|p| p.1) == Some('/') => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                let mut s = String::new();
                let mut escaped = false;
                for (_, c) in chars.by_ref() {
                    if escaped {
                        s.push(c);
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    } else {
                        s.push(c);
                    }
                }
                if depth == 0 && !last_word.is_empty() {
                    pending_label = Some((last_word.clone(), s.clone()));
                }
                strings.push(s);
            }
            '{' => {
                if let Some(block) = pending_label.take() {
                    components.push(block);
                }
                depth += 1;
            }
            '}' => {
                depth -= 1;
                assert!(depth >= 0, "an unbalanced closing brace");
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '.' => word.push(c),
            _ => {}
        }
        let in_word = c.is_ascii_alphanumeric() || c == '_' || c == '.';
        if !in_word && !word.is_empty() {
            // `a.b.c.label.receiver`-like words inside blocks are references.
            if depth > 0 && word.matches('.').count() >= 2 && !word.starts_with('.') {
                references.push(word.clone());
            }
            last_word = std::mem::take(&mut word);
        }
    }
    assert_eq!(depth, 0, "unbalanced braces");
    Alloy {
        components,
        references,
        strings,
    }
}

#[test]
fn the_configs_that_cannot_run_here_agree_with_each_other() {
    let o = observability();
    let datasources = yaml(&o.join("grafana/provisioning/datasources/coffer.yaml"));
    let providers = yaml(&o.join("grafana/provisioning/dashboards/coffer.yaml"));
    let loki = yaml(&o.join("loki/loki.yaml"));
    let tempo = yaml(&o.join("tempo/tempo.yaml"));
    let otel = yaml(&o.join("otel-collector/otel-collector.yaml"));
    let alloy = read_alloy(&std::fs::read_to_string(o.join("alloy/config.alloy")).unwrap());

    let source = |uid: &str| {
        datasources["datasources"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|d| d["uid"].as_str() == Some(uid))
            .unwrap_or_else(|| panic!("no data source {uid}"))
            .clone()
    };
    let (prom, loki_ds, tempo_ds) = (source("prometheus"), source("loki"), source("tempo"));
    assert_eq!(prom["type"].as_str(), Some("prometheus"));
    assert_eq!(loki_ds["type"].as_str(), Some("loki"));
    assert_eq!(tempo_ds["type"].as_str(), Some("tempo"));

    // Grafana reaches Loki and Tempo on the ports their configs serve.
    let loki_port = loki["server"]["http_listen_port"].as_i64().unwrap() as u16;
    assert_eq!(host_port(loki_ds["url"].as_str().unwrap()).1, loki_port);
    let tempo_port = tempo["server"]["http_listen_port"].as_i64().unwrap() as u16;
    assert_eq!(host_port(tempo_ds["url"].as_str().unwrap()).1, tempo_port);

    // Exemplars (the latency histograms' trace ids) open Tempo.
    let exemplars = &prom["jsonData"]["exemplarTraceIdDestinations"][0];
    assert_eq!(exemplars["datasourceUid"].as_str(), Some("tempo"));
    assert_eq!(exemplars["name"].as_str(), Some("trace_id"));
    // Logs link to traces and back, through data sources that exist.
    let derived = &loki_ds["jsonData"]["derivedFields"][0];
    assert_eq!(derived["datasourceUid"].as_str(), Some("tempo"));
    assert!(
        derived["matcherRegex"]
            .as_str()
            .unwrap()
            .contains("trace_id")
    );
    let to_logs = &tempo_ds["jsonData"]["tracesToLogsV2"];
    assert_eq!(to_logs["datasourceUid"].as_str(), Some("loki"));
    assert_eq!(
        tempo_ds["jsonData"]["serviceMap"]["datasourceUid"].as_str(),
        Some("prometheus")
    );

    // Alloy: every reference names a component of the file, it writes to Loki's push API on
    // Grafana's host and Loki's port, and keeps exactly the three labels the traces-to-logs
    // query and the dashboards rely on.
    let defined: Vec<String> = alloy
        .components
        .iter()
        .map(|(kind, label)| format!("{kind}.{label}"))
        .collect();
    for r in &alloy.references {
        let (component, _export) = r.rsplit_once('.').unwrap();
        assert!(
            defined.iter().any(|d| d == component),
            "{r} refers to no component of config.alloy ({defined:?})"
        );
    }
    assert!(alloy.references.len() >= 5, "{:?}", alloy.references);
    let push = alloy
        .strings
        .iter()
        .find(|s| s.ends_with("/loki/api/v1/push"))
        .expect("loki.write's endpoint");
    assert_eq!(
        host_port(push),
        host_port(loki_ds["url"].as_str().unwrap()),
        "Alloy and Grafana reach the same Loki"
    );
    // The last strings of `stage.label_keep` before the endpoint are the kept labels.
    let keep_at = alloy
        .strings
        .iter()
        .rposition(|s| s == "service")
        .expect("the kept labels");
    let kept: BTreeSet<&str> = alloy.strings[keep_at..keep_at + 3]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(kept, BTreeSet::from(["service", "level", "namespace"]));
    let query = to_logs["query"].as_str().unwrap();
    assert!(query.starts_with("{service="), "{query}");
    assert!(
        loki["limits_config"]["max_label_names_per_series"]
            .as_i64()
            .unwrap()
            >= 3
    );
    assert!(loki["compactor"]["retention_enabled"].as_bool().unwrap());
    assert_eq!(
        loki["limits_config"]["discover_service_name"]
            .as_vec()
            .map(Vec::len),
        Some(0),
        "Loki adds no service_name label of its own"
    );
    assert!(loki["limits_config"]["retention_period"].as_str().is_some());

    // The collector: its pipeline uses only what it defines, receives OTLP/gRPC on the port the
    // services are told, and exports to Tempo's OTLP receiver.
    let pipeline = &otel["service"]["pipelines"]["traces"];
    for (section, key) in [
        ("receivers", "receivers"),
        ("processors", "processors"),
        ("exporters", "exporters"),
    ] {
        for name in pipeline[key].as_vec().unwrap() {
            let name = name.as_str().unwrap();
            assert!(
                !otel[section][name].is_badvalue(),
                "the traces pipeline uses {section}.{name}, which is not defined"
            );
        }
    }
    let policies: Vec<&str> = otel["processors"]["tail_sampling"]["policies"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert!(policies.contains(&"status_code") && policies.contains(&"latency"));
    let otlp_in = host_port(
        otel["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
            .as_str()
            .unwrap(),
    );
    let telemetry = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../libs/telemetry/src/tracing_init.rs"),
    )
    .unwrap();
    assert!(
        telemetry.contains(&format!("http://otel-collector:{}", otlp_in.1)),
        "the services' documented otlp_endpoint is the collector's port {}",
        otlp_in.1
    );
    let to_tempo = host_port(
        otel["exporters"]["otlp/tempo"]["endpoint"]
            .as_str()
            .unwrap(),
    );
    let tempo_in = host_port(
        tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(to_tempo.1, tempo_in.1);
    assert_eq!(to_tempo.0, host_port(tempo_ds["url"].as_str().unwrap()).0);
    // Tempo's generator writes to the Prometheus Grafana reads.
    let remote = tempo["metrics_generator"]["storage"]["remote_write"][0]["url"]
        .as_str()
        .unwrap();
    assert_eq!(host_port(remote), host_port(prom["url"].as_str().unwrap()));

    // The dashboards: provisioned from one directory, every panel on the chosen Prometheus.
    assert!(
        providers["providers"][0]["options"]["path"]
            .as_str()
            .is_some()
    );
    for file in files(&o.join("grafana/dashboards"), "json") {
        let d: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let vars: Vec<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(vars, ["datasource", "namespace", "instance"], "{file:?}");
        for p in d["panels"].as_array().unwrap() {
            if p["type"] != "row" {
                assert_eq!(p["datasource"]["uid"], "${datasource}", "{file:?}");
            }
        }
    }
}

#[test]
fn the_dashboards_are_the_generated_ones() {
    let out = Command::new(env!("CARGO_BIN_EXE_coffer-dev"))
        .args(["dashboards", "--check", "--dir"])
        .arg(observability().join("grafana/dashboards"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Prometheus Operator resources k8s/ applies: the PrometheusRule is exactly the rules file,
/// the PodMonitor names jobs as the rules expect (dev/tests/k8s.rs validates both against the
/// CRDs' schemas with everything else the overlays render).
#[test]
fn the_kubernetes_monitoring_resources_match_the_rules() {
    let o = observability().join("prometheus");
    let k8s = Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s/base/observability");
    let rule = yaml(&k8s.join("prometheusrule.yaml"));
    let rules = yaml(&o.join("rules/coffer.rules.yml"));
    assert_eq!(
        to_json(&rule["spec"]),
        to_json(&rules),
        "k8s/base/observability/prometheusrule.yaml differs from rules/coffer.rules.yml"
    );
    let monitor = yaml(&k8s.join("podmonitor.yaml"));
    let relabel = &monitor["spec"]["podMetricsEndpoints"][0]["relabelings"][0];
    assert_eq!(relabel["targetLabel"].as_str(), Some("job"));
    assert_eq!(relabel["replacement"].as_str(), Some("coffer-$1"));
}
