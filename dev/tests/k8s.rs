//! The Kubernetes manifests of k8s/, checked as strictly as this machine allows: every overlay
//! renders with `kubectl kustomize`; Kubernetes' own kinds pass `kubernetes-validate --strict`
//! for the targeted minor; the custom resources validate against the CRDs' JSON Schemas in
//! ../shared/schemas/crds; `checkov` passes with its short skip list; and Coffer's own rules hold
//! — non-root read-only containers without capabilities, probes on the admin port, secrets as
//! files only (exactly the files each service reads), SPIFFE ids in the certificates, configs
//! the services load, and network policies whose mesh edges are the ones compiled into the
//! services (each server's policy, each client's PEERS).
//!
//! The tools come from scripts/install-deps (kubectl from the machine; kubernetes-validate and
//! checkov from PyPI into a virtual environment).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use coffer_config::{SecretFile, SecretKind};
use coffer_token::Service;
use serde_json::Value;
use support::to_json;
use yaml_rust2::YamlLoader;

/// The Kubernetes minor the manifests target (kubernetes-validate's schemas of it).
const KUBERNETES_VERSION: &str = "1.32.0";
const OVERLAYS: [&str; 2] = ["dev", "prod"];

/// The six services: name, what they read from their secrets directory, whom they call.
const SERVICES: [(&str, &[SecretFile], &[Service]); 6] = [
    ("auth", coffer_auth::SECRETS, coffer_auth::PEERS),
    ("metadata", coffer_metadata::SECRETS, coffer_metadata::PEERS),
    (
        "storage-signer",
        coffer_storage_signer::SECRETS,
        coffer_storage_signer::PEERS,
    ),
    ("audit", coffer_audit::SECRETS, coffer_audit::PEERS),
    ("scan", coffer_scan::SECRETS, coffer_scan::PEERS),
    ("gateway", coffer_gateway::SECRETS, coffer_gateway::PEERS),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where scripts/install-deps puts the Python tools.
fn tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("COFFER_TOOLS_VENV").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/coffer-tools/venv"),
        PathBuf::from,
    );
    let path = venv.join("bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-deps",
        path.display()
    );
    path
}

struct Rendered {
    text: String,
    docs: Vec<Value>,
}

/// `kubectl kustomize k8s/overlays/<overlay>`, once per overlay and test binary.
fn rendered(overlay: &str) -> &'static Rendered {
    static CACHE: OnceLock<BTreeMap<&'static str, Rendered>> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        OVERLAYS
            .iter()
            .map(|o| {
                let out = Command::new("kubectl")
                    .arg("kustomize")
                    .arg(root().join("k8s/overlays").join(o))
                    .output()
                    .unwrap_or_else(|e| {
                        panic!("kubectl is missing ({e}): run scripts/install-deps")
                    });
                assert!(
                    out.status.success(),
                    "kubectl kustomize {o}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let text = String::from_utf8(out.stdout).unwrap();
                let docs = YamlLoader::load_from_str(&text)
                    .unwrap()
                    .iter()
                    .map(to_json)
                    .filter(|d| !d.is_null())
                    .collect();
                (*o, Rendered { text, docs })
            })
            .collect()
    });
    &all[overlay]
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn write_temp(text: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn every_overlay_renders_and_passes_kubernetes_validate_strict() {
    for overlay in OVERLAYS {
        let r = rendered(overlay);
        assert!(
            r.docs.len() > 50,
            "{overlay}: only {} objects",
            r.docs.len()
        );
        let (_dir, path) = write_temp(&r.text, &format!("{overlay}.yaml"));
        let out = Command::new(tool("kubernetes-validate"))
            .args(["--strict", "--quiet", "--no-warn", "-k", KUBERNETES_VERSION])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{overlay}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The check can fail: a field Kubernetes does not know is refused.
    let (_dir, path) = write_temp(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  selectr: {}\n",
        "wrong.yaml",
    );
    let out = Command::new(tool("kubernetes-validate"))
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a misspelt field passed");
}

#[test]
fn custom_resources_validate_against_the_crd_schemas() {
    let schemas = root().join("../shared/schemas/crds");
    let mut seen = BTreeSet::new();
    for overlay in OVERLAYS {
        for doc in &rendered(overlay).docs {
            let api = doc["apiVersion"].as_str().unwrap();
            let Some((group, version)) = api.split_once('/') else {
                continue; // core v1
            };
            if !group.contains('.') || group.ends_with(".k8s.io") {
                continue; // Kubernetes' own (apps, policy, autoscaling, *.k8s.io)
            }
            let kind = doc["kind"].as_str().unwrap();
            let file = schemas
                .join(group)
                .join(format!("{}_{version}.json", kind.to_lowercase()));
            let schema: Value = serde_json::from_slice(
                &std::fs::read(&file)
                    .unwrap_or_else(|e| panic!("no schema for {kind} ({}): {e}", file.display())),
            )
            .unwrap();
            let validator = jsonschema::validator_for(&schema).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(doc)
                .map(|e| format!("{e} at {}", e.instance_path))
                .collect();
            let name = &doc["metadata"]["name"];
            assert!(errors.is_empty(), "{overlay}: {kind} {name}: {errors:?}");
            let mut wrong = doc.clone();
            wrong["spec"]["unknownField"] = true.into();
            assert!(
                !validator.is_valid(&wrong),
                "{kind}: the schema is not strict"
            );
            seen.insert(kind.to_owned());
        }
    }
    for kind in [
        "Cluster",
        "ScheduledBackup",
        "ObjectStore",
        "Certificate",
        "Issuer",
        "PodMonitor",
        "PrometheusRule",
    ] {
        assert!(seen.contains(kind), "no {kind} was rendered");
    }
}

/// checkov's Kubernetes checks, with this skip list (and two resource annotations in the base,
/// each with its reason): CKV_K8S_15 ("pull policy Always"): the prod images are pinned by
/// digest, so IfNotPresent cannot run a stale image; CKV_K8S_43 ("image by digest") in dev only,
/// where images are local builds by tag.
#[test]
fn checkov_passes_with_the_short_skip_list() {
    for overlay in OVERLAYS {
        // Not tempdir()'s `.tmp…`: checkov skips hidden directories.
        let dir = tempfile::Builder::new()
            .prefix("coffer-k8s-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("rendered.yaml"), &rendered(overlay).text).unwrap();
        let skip = if overlay == "dev" {
            "CKV_K8S_15,CKV_K8S_43"
        } else {
            "CKV_K8S_15"
        };
        let out = Command::new(tool("checkov"))
            .args([
                "--framework",
                "kubernetes",
                "--skip-download",
                "--compact",
                "--skip-check",
                skip,
                "-d",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{overlay}: {text}");
        let passed = text
            .split("Passed checks: ")
            .nth(1)
            .and_then(|t| t.split(',').next())
            .and_then(|n| n.parse::<u32>().ok());
        assert!(
            passed.is_some_and(|n| n > 500),
            "{overlay}: checkov ran little: {text}"
        );
        assert!(text.contains("Failed checks: 0,"), "{overlay}: {text}");
    }
}

/// Every container of every workload: non-root, read-only root filesystem, no privilege
/// escalation, every capability dropped, the runtime's seccomp profile, and no secret in the
/// environment.
#[test]
fn every_container_is_locked_down_and_takes_no_secret_from_the_environment() {
    for overlay in OVERLAYS {
        let docs = &rendered(overlay).docs;
        let workloads: Vec<_> = docs
            .iter()
            .filter(|d| {
                ["Deployment", "StatefulSet", "DaemonSet", "Job"]
                    .contains(&d["kind"].as_str().unwrap())
            })
            .collect();
        assert!(workloads.len() >= 9);
        for w in workloads {
            let name = &w["metadata"]["name"];
            let pod = &w["spec"]["template"]["spec"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
            assert!(
                pod["securityContext"]["runAsUser"].as_i64().unwrap() >= 10000,
                "{name}"
            );
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{name}"
            );
            assert_ne!(pod["hostNetwork"], true, "{name}");
            assert_ne!(pod["hostPID"], true, "{name}");
            let containers = pod["containers"]
                .as_array()
                .unwrap()
                .iter()
                .chain(pod["initContainers"].as_array().into_iter().flatten());
            for c in containers {
                let sc = &c["securityContext"];
                let cname = &c["name"];
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}/{cname}");
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}/{cname}");
                assert_ne!(sc["privileged"], true, "{name}/{cname}");
                assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"], "{name}/{cname}");
                assert!(sc["capabilities"]["add"].is_null(), "{name}/{cname}");
                assert!(
                    c["resources"]["requests"]["memory"].is_string(),
                    "{name}/{cname}"
                );
                assert!(
                    c["resources"]["limits"]["memory"].is_string(),
                    "{name}/{cname}"
                );
                for env in c["env"].as_array().into_iter().flatten() {
                    assert!(
                        env["valueFrom"]["secretKeyRef"].is_null(),
                        "{name}/{cname}: a secret in the environment"
                    );
                }
                for from in c["envFrom"].as_array().into_iter().flatten() {
                    assert!(
                        from["secretRef"].is_null(),
                        "{name}/{cname}: envFrom a secret"
                    );
                }
            }
        }
    }
}

/// The six services as Coffer runs them: probes on the admin port the config names, the secrets
/// directory holding exactly the files the service reads, a config it loads, its peers, its
/// binary in the image, no API token, and time to drain.
#[test]
fn each_service_gets_its_probes_secrets_config_and_peers() {
    let dockerfile = std::fs::read_to_string(root().join("k8s/image/Dockerfile")).unwrap();
    for overlay in OVERLAYS {
        let docs = &rendered(overlay).docs;
        for (svc, secrets, peers) in SERVICES {
            let d = named(docs, "Deployment", svc);
            let pod = &d["spec"]["template"]["spec"];
            assert_eq!(pod["automountServiceAccountToken"], false, "{svc}");
            assert_eq!(pod["enableServiceLinks"], false, "{svc}");
            assert!(
                pod["topologySpreadConstraints"]
                    .as_array()
                    .is_some_and(|t| t.len() == 2)
            );
            let c = &pod["containers"][0];

            // The config, loaded as the service loads it.
            let config_map = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|v| v["configMap"]["name"].as_str())
                .unwrap();
            let text = named(docs, "ConfigMap", config_map)["data"]["config.toml"]
                .as_str()
                .unwrap();
            let (_dir, path) = write_temp(text, "config.toml");
            let service = load(svc, &path);
            let mut want: Vec<&str> = peers.iter().map(|p| p.name()).collect();
            want.sort_unstable();
            assert_eq!(
                service.peers.keys().map(String::as_str).collect::<Vec<_>>(),
                want,
                "{overlay}: {svc}'s [peers] are not its PEERS"
            );
            if let Some(db) = &service.database {
                assert_eq!(db.host, "coffer-db-rw", "{svc}");
                assert_eq!(db.schema, svc);
            }
            let admin = c["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "admin")
                .unwrap_or_else(|| panic!("{svc}: no port named admin"));
            assert_eq!(
                admin["containerPort"].as_u64(),
                Some(u64::from(service.admin_listen.port())),
                "{svc}"
            );
            for (probe, path) in [
                ("livenessProbe", "/healthz"),
                ("readinessProbe", "/readyz"),
                ("startupProbe", "/healthz"),
            ] {
                assert_eq!(c[probe]["httpGet"]["path"], path, "{svc} {probe}");
                assert_eq!(c[probe]["httpGet"]["port"], "admin", "{svc} {probe}");
            }
            // preStop, in-flight calls, then background jobs: each up to the grace.
            let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
                .as_u64()
                .unwrap();
            let drain = pre_stop + 2 * service.shutdown_grace_ms.div_ceil(1000);
            let period = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
            assert!(
                period > drain,
                "{svc}: {period} s to stop, draining takes {drain}"
            );

            // Secrets: one projected volume at secrets_dir, exactly the service's files.
            let mount = c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["mountPath"] == service.secrets_dir.to_str().unwrap())
                .unwrap_or_else(|| panic!("{svc}: nothing at its secrets_dir"));
            assert_eq!(mount["readOnly"], true);
            assert!(
                mount["subPath"].is_null(),
                "{svc}: a subPath never sees a rotation"
            );
            let volume = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == mount["name"])
                .unwrap();
            let mut files: Vec<&str> = volume["projected"]["sources"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["secret"]["items"].as_array().unwrap())
                .map(|i| i["path"].as_str().unwrap())
                .collect();
            files.sort_unstable();
            let mut want: Vec<&str> = secrets.iter().flat_map(|s| s.files).copied().collect();
            want.sort_unstable();
            assert_eq!(files, want, "{overlay}: {svc}'s secrets directory");
            let mesh_secret = format!("{svc}-mesh-tls");
            assert!(
                volume["projected"]["sources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["secret"]["name"] == mesh_secret.as_str()),
                "{svc}: its certificate's secret is not mounted"
            );

            // The binary is one the image copies.
            let binary = c["command"][0].as_str().unwrap();
            assert_eq!(binary, format!("/usr/local/bin/coffer-{svc}"));
            assert!(
                dockerfile.contains(&format!("/out/coffer-{svc} {binary}")),
                "the image does not copy {binary}"
            );
            if ["gateway", "metadata", "scan"].contains(&svc) {
                named(docs, "HorizontalPodAutoscaler", svc);
            }
            named(docs, "PodDisruptionBudget", svc);
            named(docs, "Service", svc);
            assert_eq!(
                named(docs, "ServiceAccount", svc)["automountServiceAccountToken"],
                false
            );
        }
    }
    // The image copies binaries the workspace builds.
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root())
        .output()
        .unwrap();
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bins: BTreeSet<&str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter(|t| strs(&t["kind"]).contains(&"bin"))
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY --from=build"))
    {
        let bin = line.rsplit('/').next().unwrap();
        assert!(
            bins.contains(bin),
            "the Dockerfile copies {bin}, which nothing builds"
        );
    }
}

/// The web app reaches the store the presigned URLs name: the gateway's policy allows the
/// origin storage-signer's URLs point to (the bucket's host unless path-style), and the bucket's CORS rule lets the app's origin send the
/// headers the embedded dev store allows (those the gateway's tests PUT with).
#[test]
fn the_web_app_may_reach_the_store_its_urls_name() {
    for overlay in OVERLAYS {
        let docs = &rendered(overlay).docs;
        let (_d, path) = write_temp(&config_text(docs, "gateway"), "config.toml");
        let (_, gateway) = coffer_config::load_service_with_env::<coffer_gateway::GatewayConfig>(
            Some(&path),
            "gateway",
            "COFFER_K8S_TEST_UNSET_",
        )
        .unwrap();
        let (_d, path) = write_temp(&config_text(docs, "storage-signer"), "config.toml");
        let (_, signer) =
            coffer_config::load_service_with_env::<coffer_storage_signer::SignerConfig>(
                Some(&path),
                "storage_signer",
                "COFFER_K8S_TEST_UNSET_",
            )
            .unwrap();
        // The ingress serves the gateway under the name its links and the app's origin use.
        let public = url::Url::parse(&gateway.public_url().unwrap()).unwrap();
        let ingress = named(docs, "Ingress", "gateway");
        assert_eq!(
            ingress["spec"]["rules"][0]["host"].as_str(),
            public.host_str(),
            "{overlay}: the ingress host is the public_url's"
        );
        assert_eq!(
            ingress["spec"]["tls"][0]["hosts"][0].as_str(),
            public.host_str(),
            "{overlay}: the ingress certificate names the public_url's host"
        );
        let (origin, _) = signer.public_base().unwrap();
        let origin = url::Url::parse(&origin)
            .unwrap()
            .origin()
            .ascii_serialization();
        assert_eq!(
            gateway.store_origin().unwrap(),
            Some(origin),
            "{overlay}: the gateway's store_origin is where the signer's URLs point"
        );
    }
    let cors: Value =
        serde_json::from_slice(&std::fs::read(root().join("k8s/object-store/cors.json")).unwrap())
            .unwrap();
    let rule = &cors["CORSRules"][0];
    assert_eq!(
        strs(&rule["AllowedHeaders"]),
        coffer_testkit::CORS_ALLOWED_HEADERS
    );
    assert_eq!(
        strs(&rule["AllowedMethods"]),
        coffer_testkit::CORS_ALLOWED_METHODS
    );
    assert_eq!(strs(&rule["ExposeHeaders"]), ["ETag"]);
}

/// The config file a service's Deployment mounts.
fn config_text(docs: &[Value], svc: &str) -> String {
    let map = named(docs, "Deployment", svc)["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|v| v["configMap"]["name"].as_str())
        .unwrap();
    named(docs, "ConfigMap", map)["data"]["config.toml"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The shared part of the config a service's Deployment mounts, loaded as the service does.
fn config_of(docs: &[Value], svc: &str) -> coffer_config::ServiceConfig {
    let (_dir, path) = write_temp(&config_text(docs, svc), "config.toml");
    load(svc, &path)
}

/// Loads `svc`'s config file as the service does (its section, unknown keys refused).
fn load(svc: &str, path: &Path) -> coffer_config::ServiceConfig {
    use coffer_config::load_service_with_env as l;
    let env = "COFFER_K8S_TEST_UNSET_";
    let loaded = match svc {
        "auth" => l::<coffer_auth::AuthConfig>(Some(path), "auth", env).map(|c| c.0),
        "metadata" => {
            l::<coffer_metadata::MetadataConfig>(Some(path), "metadata", env).map(|c| c.0)
        }
        "storage-signer" => {
            l::<coffer_storage_signer::SignerConfig>(Some(path), "storage_signer", env).map(|c| c.0)
        }
        "audit" => l::<coffer_audit::AuditConfig>(Some(path), "audit", env).map(|c| c.0),
        "scan" => l::<coffer_scan::ScanConfig>(Some(path), "scan", env).map(|c| c.0),
        "gateway" => {
            l::<coffer_gateway::GatewayConfig>(Some(path), "gateway", env).map(|(s, g)| {
                assert!(
                    !g.trusted_proxies.is_empty(),
                    "the gateway must trust the ingress"
                );
                g.public_url().expect("a usable public_url");
                s
            })
        }
        other => panic!("{other}"),
    };
    loaded.unwrap_or_else(|e| panic!("{svc}'s config does not load: {e}"))
}

#[test]
fn every_certificate_names_its_services_spiffe_id() {
    for overlay in OVERLAYS {
        let docs = &rendered(overlay).docs;
        for (svc, _, _) in SERVICES {
            let cert = named(docs, "Certificate", &format!("{svc}-mesh"));
            let spec = &cert["spec"];
            assert_eq!(
                strs(&spec["uris"]),
                [coffer_token::identity::spiffe_uri(svc)],
                "{svc}"
            );
            assert_eq!(
                strs(&spec["dnsNames"]),
                [coffer_token::identity::dns_name(svc)]
            );
            assert_eq!(spec["secretName"], format!("{svc}-mesh-tls").as_str());
            assert_eq!(spec["issuerRef"]["name"], "coffer-mesh");
            assert!(spec["renewBefore"].is_string() && spec["duration"].is_string());
            assert!(strs(&spec["usages"]).contains(&"client auth"));
        }
        let ca = named(docs, "Certificate", "coffer-mesh-ca");
        assert_eq!(ca["spec"]["isCA"], true);
        assert_eq!(ca["spec"]["privateKey"]["rotationPolicy"], "Never");
    }
}

/// (caller, server) pairs.
type Edges = BTreeSet<(String, String)>;

fn app_name(selector: &Value) -> Option<String> {
    selector["matchLabels"]["app.kubernetes.io/name"]
        .as_str()
        .map(str::to_owned)
}

/// Whether a rule's ports include the gRPC port: named, numbered, in a range, or (no ports at
/// all) every port.
fn is_grpc(ports: &Value) -> bool {
    let Some(ports) = ports.as_array().filter(|p| !p.is_empty()) else {
        return true;
    };
    ports.iter().any(|p| {
        p["port"].is_null()
            || p["port"] == "grpc"
            || p["port"] == 7000
            || p["port"]
                .as_u64()
                .zip(p["endPort"].as_u64())
                .is_some_and(|(lo, hi)| (lo..=hi).contains(&7000))
    })
}

/// The mesh services' pod names: the only pods with a gRPC port.
const MESH: [&str; 5] = ["auth", "metadata", "storage-signer", "audit", "scan"];

/// The mesh edges the network policies allow, read from the ingress side and the egress side.
fn policy_edges(docs: &[Value]) -> (Edges, Edges) {
    let (mut ingress, mut egress) = (Edges::new(), Edges::new());
    for p in of_kind(docs, "NetworkPolicy") {
        let spec = &p["spec"];
        let name = &p["metadata"]["name"];
        let target = app_name(&spec["podSelector"]);
        // A rule on pods that may be mesh servers (a named mesh service, or a selector that
        // names none) and opens the gRPC port must name each caller; any other shape (a
        // namespace, an address block, every pod) would let in more than the allow-lists.
        let may_serve = target.as_deref().is_none_or(|t| MESH.contains(&t));
        for rule in spec["ingress"].as_array().into_iter().flatten() {
            if !may_serve || !is_grpc(&rule["ports"]) {
                continue;
            }
            let server = target
                .clone()
                .unwrap_or_else(|| panic!("{name}: a gRPC ingress rule on unnamed pods"));
            for from in rule["from"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: gRPC ingress from anywhere"))
            {
                assert!(
                    from["namespaceSelector"].is_null() && from["ipBlock"].is_null(),
                    "{name}: gRPC ingress from outside the mesh"
                );
                let caller = app_name(&from["podSelector"])
                    .unwrap_or_else(|| panic!("{name}: gRPC ingress from unnamed pods"));
                ingress.insert((caller, server.clone()));
            }
        }
        for rule in spec["egress"].as_array().into_iter().flatten() {
            if !is_grpc(&rule["ports"]) {
                continue;
            }
            let to = rule["to"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: egress to anywhere on the gRPC port"));
            for to in to {
                // The internet (webhooks, the store, freshclam) is reached by address block on
                // 443; an address block or a namespace on the gRPC port would bypass PEERS.
                let peer = app_name(&to["podSelector"])
                    .filter(|p| MESH.contains(&p.as_str()) && to["namespaceSelector"].is_null())
                    .unwrap_or_else(|| {
                        panic!("{name}: egress on the gRPC port to something not a mesh service")
                    });
                let client = target
                    .clone()
                    .unwrap_or_else(|| panic!("{name}: gRPC egress from unnamed pods"));
                egress.insert((client, peer));
            }
        }
    }
    (ingress, egress)
}

/// The mesh edges as the code has them: each server's policy (who may call it) and each client's
/// PEERS (whom it dials). The two must agree with each other and with the network policies.
#[test]
fn the_network_policy_edges_are_the_allow_lists_compiled_into_the_services() {
    let policies = [
        ("auth", coffer_auth::policy().unwrap()),
        ("metadata", coffer_metadata::policy().unwrap()),
        ("storage-signer", coffer_storage_signer::policy().unwrap()),
        ("audit", coffer_audit::policy().unwrap()),
        ("scan", coffer_scan::policy().unwrap()),
    ];
    let allowed: Edges = policies
        .iter()
        .flat_map(|(server, p)| {
            p.callers()
                .into_iter()
                .map(move |c| (c.to_owned(), (*server).to_owned()))
        })
        .collect();
    let dialled: Edges = SERVICES
        .iter()
        .flat_map(|(client, _, peers)| {
            peers
                .iter()
                .map(move |p| ((*client).to_owned(), p.name().to_owned()))
        })
        .collect();
    assert_eq!(
        allowed, dialled,
        "a service calls a peer whose policy does not let it, or a policy lets in a service that never calls"
    );
    for overlay in OVERLAYS {
        let docs = &rendered(overlay).docs;
        let (ingress, egress) = policy_edges(docs);
        assert_eq!(ingress, allowed, "{overlay}: the gRPC ingress policies");
        assert_eq!(egress, allowed, "{overlay}: the gRPC egress policies");
        // Everything else is denied first, both ways.
        let deny = named(docs, "NetworkPolicy", "default-deny");
        assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}));
        assert_eq!(strs(&deny["spec"]["policyTypes"]), ["Ingress", "Egress"]);
        assert!(deny["spec"]["ingress"].is_null() && deny["spec"]["egress"].is_null());
        // The collector's OTLP port takes the services only; the gateway's HTTPS the ingress only.
        let collector = named(docs, "NetworkPolicy", "collector-in");
        assert_eq!(
            strs(
                &collector["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"]
            ),
            [
                "auth",
                "metadata",
                "storage-signer",
                "audit",
                "scan",
                "gateway"
            ]
        );
        let https = named(docs, "NetworkPolicy", "gateway-from-ingress");
        assert_eq!(
            https["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "ingress-nginx"
        );
        // Webhooks and signature updates: HTTPS to public addresses, never a private range.
        for name in ["scan-webhooks", "clamd-updates"] {
            let p = named(docs, "NetworkPolicy", name);
            let except = strs(&p["spec"]["egress"][0]["to"][0]["ipBlock"]["except"]);
            for private in [
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "169.254.0.0/16",
            ] {
                assert!(except.contains(&private), "{name} may reach {private}");
            }
            assert_eq!(p["spec"]["egress"][0]["ports"][0]["port"], 443);
        }
    }
    // The check can fail: a caller dropped from a rendered policy is an edge fewer.
    let mut docs = rendered("prod").docs.clone();
    let policy = docs
        .iter_mut()
        .find(|d| {
            d["kind"] == "NetworkPolicy" && d["metadata"]["name"] == "audit-grpc-from-callers"
        })
        .unwrap();
    policy["spec"]["ingress"][0]["from"]
        .as_array_mut()
        .unwrap()
        .pop();
    assert_ne!(policy_edges(&docs).0, allowed);
}

#[test]
fn postgres_is_tls_only_with_safe_roles_backups_and_prod_replicates_synchronously() {
    for overlay in OVERLAYS {
        let docs = &rendered(overlay).docs;
        let cluster = &named(docs, "Cluster", "coffer-db")["spec"];
        let hba = strs(&cluster["postgresql"]["pg_hba"]);
        assert!(hba[0].starts_with("hostnossl all all") && hba[0].ends_with("reject"));
        assert_eq!(cluster["enableSuperuserAccess"], false);
        let roles = cluster["managed"]["roles"].as_array().unwrap();
        for (svc, secrets, _) in SERVICES {
            if !secrets.iter().any(|s| s.kind == SecretKind::DatabaseRoles) {
                continue;
            }
            for role in ["owner", "runtime"] {
                let name = format!("{}_{role}", svc);
                let r = roles
                    .iter()
                    .find(|r| r["name"] == name.as_str())
                    .unwrap_or_else(|| panic!("no managed role {name}"));
                assert_eq!(r["superuser"], false, "{name}");
                assert_eq!(r["bypassrls"], false, "{name}");
                assert_eq!(
                    r["passwordSecret"]["name"],
                    format!("{svc}-{role}-role").as_str()
                );
            }
        }
        assert_eq!(cluster["plugins"][0]["isWALArchiver"], true);
        named(docs, "ScheduledBackup", "coffer-db-nightly");
        // A purged file's object outlives its row by at least the recovery window.
        let store = named(docs, "ObjectStore", "coffer-db-backups");
        let window_days: u64 = store["spec"]["retentionPolicy"]
            .as_str()
            .and_then(|r| r.strip_suffix('d'))
            .and_then(|d| d.parse().ok())
            .expect("a retention policy in days");
        let (_dir, path) = write_temp(&config_text(docs, "metadata"), "config.toml");
        let (_, config) = coffer_config::load_service_with_env::<coffer_metadata::MetadataConfig>(
            Some(&path),
            "metadata",
            "COFFER_K8S_TEST_UNSET_",
        )
        .unwrap();
        // The retention keeps the newest base backup older than the window: up to one backup
        // interval (nightly) more can be reached.
        assert_eq!(
            named(docs, "ScheduledBackup", "coffer-db-nightly")["spec"]["schedule"],
            "0 0 3 * * *"
        );
        assert!(
            config.object_delete_delay_secs >= (window_days + 1) * 86_400,
            "{overlay}: purged objects go before the reachable recovery window ({window_days} d + a day) ends"
        );
    }
    // Every replica's pool fits its role's connection limit, at the autoscalers' maximum, and all
    // of them fit the server's max_connections.
    for overlay in OVERLAYS {
        let docs = &rendered(overlay).docs;
        let cluster = &named(docs, "Cluster", "coffer-db")["spec"];
        let max: u64 = cluster["postgresql"]["parameters"]["max_connections"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let mut total = 0;
        for (svc, secrets, _) in SERVICES {
            if !secrets.iter().any(|s| s.kind == SecretKind::DatabaseRoles) {
                continue;
            }
            let d = named(docs, "Deployment", svc);
            let hpa = docs
                .iter()
                .find(|h| h["kind"] == "HorizontalPodAutoscaler" && h["metadata"]["name"] == svc);
            let pods = match hpa {
                Some(h) => {
                    assert!(
                        d["spec"]["replicas"].is_null(),
                        "{svc}: replicas would fight its autoscaler"
                    );
                    h["spec"]["maxReplicas"].as_u64().unwrap()
                }
                None => d["spec"]["replicas"].as_u64().unwrap(),
            };
            let pool = u64::from(config_of(docs, svc).database.unwrap().pool_size);
            let limit = cluster["managed"]["roles"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == format!("{svc}_runtime").as_str())
                .unwrap()["connectionLimit"]
                .as_u64()
                .unwrap();
            assert!(
                pods * pool <= limit,
                "{overlay}: {svc}: {pods} × {pool} > {limit}"
            );
            // The owner: one connection for the migrations at start, one pool of one (audit).
            total += pods * (pool + 1);
        }
        assert!(
            total + 10 <= max,
            "{overlay}: {total} connections and 10 for the operator > {max}"
        );
    }
    let prod = &named(&rendered("prod").docs, "Cluster", "coffer-db")["spec"];
    assert_eq!(prod["instances"], 3);
    assert_eq!(
        prod["postgresql"]["synchronous"]["dataDurability"],
        "required"
    );
    assert!(
        named(&rendered("dev").docs, "Cluster", "coffer-db")["spec"]["postgresql"]["synchronous"]
            .is_null()
    );
    // Prod pins every image by digest.
    for line in rendered("prod")
        .text
        .lines()
        .filter(|l| l.trim_start().starts_with("image:"))
    {
        assert!(line.contains("@sha256:"), "prod: {line}");
    }
}

/// One source for the collector's and Alloy's configs: the ConfigMaps carry observability/'s files.
#[test]
fn the_telemetry_configs_are_observabilitys_own() {
    let docs = &rendered("prod").docs;
    for (map, key, file) in [
        (
            "otel-collector-config",
            "otel-collector.yaml",
            "otel-collector/otel-collector.yaml",
        ),
        ("alloy-config", "config.alloy", "alloy/config.alloy"),
    ] {
        let cm = docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == map)
            .unwrap_or_else(|| panic!("no ConfigMap {map}"));
        let want = std::fs::read_to_string(root().join("observability").join(file)).unwrap();
        assert_eq!(
            cm["data"][key].as_str(),
            Some(want.as_str()),
            "{map} differs from {file}"
        );
    }
    // The object store's lifecycle carries the scan service's own fail-safe rule.
    let lifecycle: Value = serde_json::from_slice(
        &std::fs::read(root().join("k8s/object-store/lifecycle.json")).unwrap(),
    )
    .unwrap();
    let scan: Value = serde_json::from_slice(
        &std::fs::read(root().join("services/scan/s3-lifecycle.json")).unwrap(),
    )
    .unwrap();
    assert!(
        lifecycle["Rules"]
            .as_array()
            .unwrap()
            .contains(&scan["Rules"][0])
    );
}

/// `coffer-dev keys new` writes exactly the Secrets the Deployments mount that nobody else makes
/// (cert-manager makes the certificates, CloudNativePG the database's CA, the object store its
/// credentials), under the names and keys the projected volumes read.
#[test]
fn coffer_dev_keys_writes_the_secrets_the_deployments_mount() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let run = Command::new(env!("CARGO_BIN_EXE_coffer-dev"))
        .args(["keys", "new", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut written = BTreeSet::new();
    for secret in std::fs::read_dir(&out).unwrap().flatten() {
        for key in std::fs::read_dir(secret.path()).unwrap().flatten() {
            let (secret, key) = (
                secret.file_name().to_string_lossy().into_owned(),
                key.file_name().to_string_lossy().into_owned(),
            );
            if key != "username" {
                written.insert((secret, key));
            }
        }
    }
    let made_elsewhere = |name: &str| {
        name.ends_with("-mesh-tls")
            || ["gateway-public-tls", "coffer-db-ca", "storage-signer-s3"].contains(&name)
    };
    let mut mounted = BTreeSet::new();
    for d in of_kind(&rendered("prod").docs, "Deployment") {
        for v in d["spec"]["template"]["spec"]["volumes"].as_array().unwrap() {
            for s in v["projected"]["sources"].as_array().into_iter().flatten() {
                let name = s["secret"]["name"].as_str().unwrap();
                if made_elsewhere(name) {
                    continue;
                }
                for item in s["secret"]["items"].as_array().unwrap() {
                    mounted.insert((name.to_owned(), item["key"].as_str().unwrap().to_owned()));
                }
            }
        }
    }
    assert_eq!(written, mounted);
    // The role secrets carry the role's name, as CloudNativePG's managed roles want.
    assert_eq!(
        std::fs::read_to_string(out.join("metadata-runtime-role/username")).unwrap(),
        "metadata_runtime"
    );
}

/// clamd spools every stream it receives before a thread scans it: the clamd pods' scratch
/// volumes together must hold one largest stream per scan worker the autoscaler can start, and
/// the pod's storage limit must hold its volumes.
#[test]
fn clamds_scratch_holds_a_stream_for_every_scan_worker() {
    let bytes = |q: &str| -> u64 {
        let (n, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
        let n: u64 = n.parse().unwrap();
        n * match unit {
            "Gi" => 1 << 30,
            "Mi" | "M" => 1 << 20,
            other => panic!("unit {other}"),
        }
    };
    for overlay in OVERLAYS {
        let docs = &rendered(overlay).docs;
        let clamd = named(docs, "Deployment", "clamd");
        let pod = &clamd["spec"]["template"]["spec"];
        let volume = |name: &str| {
            pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == name)
                .map(|v| bytes(v["emptyDir"]["sizeLimit"].as_str().unwrap()))
                .unwrap()
        };
        let conf = docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap" && d["data"]["clamd.conf"].is_string())
            .unwrap()["data"]["clamd.conf"]
            .as_str()
            .unwrap();
        let setting = |key: &str| {
            conf.lines()
                .find_map(|l| l.strip_prefix(key).map(str::trim))
                .unwrap_or_else(|| panic!("clamd.conf sets no {key}"))
        };
        assert_eq!(setting("TemporaryDirectory"), "/tmp");
        let stream = bytes(setting("StreamMaxLength"));
        let per_pod = volume("tmp") / stream;
        let clamds = clamd["spec"]["replicas"].as_u64().unwrap();
        let (_dir, path) = write_temp(&config_text(docs, "scan"), "config.toml");
        let (_, scan) = coffer_config::load_service_with_env::<coffer_scan::ScanConfig>(
            Some(&path),
            "scan",
            "COFFER_K8S_TEST_UNSET_",
        )
        .unwrap();
        let scan_pods = named(docs, "HorizontalPodAutoscaler", "scan")["spec"]["maxReplicas"]
            .as_u64()
            .unwrap();
        let workers = scan_pods * scan.workers as u64;
        assert!(
            clamds * per_pod >= workers,
            "{overlay}: {clamds} clamd × {per_pod} streams < {workers} scan workers"
        );
        // The largest file scan sends fits one stream.
        assert!(
            scan.max_file_bytes <= stream,
            "{overlay}: scan sends more than clamd takes"
        );
        let limit: u64 = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                bytes(
                    c["resources"]["limits"]["ephemeral-storage"]
                        .as_str()
                        .unwrap(),
                )
            })
            .sum();
        assert!(
            limit > volume("tmp") + volume("signatures"),
            "{overlay}: clamd's pod would be evicted before its volumes fill"
        );
    }
}
