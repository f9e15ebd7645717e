//! The shipped Prometheus and Alertmanager files, checked with the real tools (Debian's
//! `promtool` and `amtool`, installed by `scripts/install-deps`) and against what the services
//! expose: the config and rules load, every alert fires and stays quiet in its unit tests, every
//! recording rule has a test, the routing sends pages and tickets where they belong, every alert
//! has its annotations and its runbook section, no expression pads itself to look non-empty, and
//! every metric a rule reads is one the shared telemetry exposes under that name.

use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

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
        let mut rest = rule.expr.as_str();
        while let Some(at) = rest.find("coffer_") {
            let before = rest[..at].chars().last();
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            rest = &rest[at + name.len()..];
            // Recording rules' names (`job:coffer_…`) are not metrics a service exposes.
            if name.contains(':') || before.is_some_and(|c| c == ':' || c.is_ascii_alphanumeric()) {
                continue;
            }
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
