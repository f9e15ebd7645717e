use std::net::SocketAddr;

use coffer_config::LoadLimits;
use coffer_metadata::MetadataConfig;
use coffer_scan::ScanConfig;
use coffer_scan::testing::ScanStack;
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery staple 42";

pub struct Harness {
    pub base: String,
    pub admin: SocketAddr,
    pub http: reqwest::Client,
    pub ca_pem: String,
    /// Auth, S3, storage-signer, metadata and audit, for real.
    pub stack: coffer_metadata::testing::Stack,
    /// The scan service and how it was set up.
    pub scan: ScanStackRest,
}

/// What the scan stack adds to the metadata stack.
pub struct ScanStackRest {
    pub setup: coffer_scan::testing::ScanSetup,
    /// Held so the service runs as long as the harness.
    _server: coffer_mesh::RunningServer,
}

impl Harness {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(unthrottled()).await
    }

    pub async fn start_with(config: coffer_gateway::GatewayConfig) -> anyhow::Result<Self> {
        Self::start_full(config, MetadataConfig::default()).await
    }

    /// A gateway whose scan service scans nothing (tests record verdicts themselves).
    pub async fn start_full(
        config: coffer_gateway::GatewayConfig,
        metadata: MetadataConfig,
    ) -> anyhow::Result<Self> {
        Self::start_scanning(
            config,
            metadata,
            ScanConfig {
                workers: 0,
                ..ScanConfig::default()
            },
        )
        .await
    }

    /// A gateway over the whole mesh, the scan service configured by `scan`.
    pub async fn start_scanning(
        config: coffer_gateway::GatewayConfig,
        metadata: MetadataConfig,
        scan: ScanConfig,
    ) -> anyhow::Result<Self> {
        Self::start_all(config, metadata, Default::default(), scan).await
    }

    /// A gateway over the whole mesh, every service configured by the caller.
    pub async fn start_all(
        config: coffer_gateway::GatewayConfig,
        metadata: MetadataConfig,
        auth: coffer_metadata::testing::AuthConfig,
        scan: ScanConfig,
    ) -> anyhow::Result<Self> {
        Self::start_limited(config, LoadLimits::default(), metadata, auth, scan).await
    }

    /// A gateway with these admission limits in front of the default mesh.
    pub async fn start_with_limits(limits: LoadLimits) -> anyhow::Result<Self> {
        Self::start_limited(
            unthrottled(),
            limits,
            MetadataConfig::default(),
            Default::default(),
            ScanConfig {
                workers: 0,
                ..ScanConfig::default()
            },
        )
        .await
    }

    /// A gateway with its config and admission limits over the whole mesh, every service
    /// configured by the caller.
    async fn start_limited(
        config: coffer_gateway::GatewayConfig,
        limits: LoadLimits,
        metadata: MetadataConfig,
        auth: coffer_metadata::testing::AuthConfig,
        scan: ScanConfig,
    ) -> anyhow::Result<Self> {
        let ScanStack {
            stack,
            setup,
            scan: server,
        } = ScanStack::start_full(metadata, auth, scan).await?;
        let (auth, metadata, audit, scan) = (
            stack.auth.server.addr().to_string(),
            stack.metadata.server.addr().to_string(),
            stack.audit().server.addr().to_string(),
            server.addr().to_string(),
        );
        let peers = coffer_gateway::testing::Peers {
            auth: &auth,
            metadata: &metadata,
            audit: &audit,
            scan: &scan,
        };
        let gw = coffer_gateway::testing::start_limited(
            &stack.ca,
            stack.dir.path(),
            &peers,
            config,
            limits,
        )
        .await?;
        let ca_pem = stack.ca.ca_pem();
        let http = client(&ca_pem, None)?;
        Ok(Harness {
            base: gw.base,
            admin: gw.admin,
            http,
            ca_pem,
            stack,
            scan: ScanStackRest {
                setup,
                _server: server,
            },
        })
    }

    /// The gateway's loopback address (it listens on 127.0.0.1; `base` names it `localhost`).
    pub fn base_addr(&self) -> SocketAddr {
        let port = self.base.rsplit(':').next().and_then(|p| p.parse().ok());
        SocketAddr::from(([127, 0, 0, 1], port.expect("base ends in a port")))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs up and logs in; returns (org id, cookie header value, csrf token).
    pub async fn session(&self, email: &str) -> anyhow::Result<(String, String, String)> {
        let res = self
            .http
            .post(self.url("/v1/auth/signup"))
            .json(
                &json!({"org_name": format!("org {email}"), "email": email, "password": PASSWORD}),
            )
            .send()
            .await?;
        assert_eq!(res.status(), 201, "{}", res.text().await?);
        let org: Value = res.json().await?;
        let (_, cookie, csrf) = self.login(email).await?;
        Ok((org["org_id"].as_str().unwrap().to_owned(), cookie, csrf))
    }

    /// Logs an existing account in; returns (org id, cookie header value, csrf token).
    pub async fn login(&self, email: &str) -> anyhow::Result<(String, String, String)> {
        let res = self
            .http
            .post(self.url("/v1/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await?;
        assert_eq!(res.status(), 200);
        let cookie = res.headers()["set-cookie"]
            .to_str()?
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let body: Value = res.json().await?;
        Ok((
            body["org_id"].as_str().unwrap().to_owned(),
            cookie,
            body["csrf_token"].as_str().unwrap().to_owned(),
        ))
    }
}

/// A gateway config whose rate limit no test reaches.
pub fn unthrottled() -> coffer_gateway::GatewayConfig {
    coffer_gateway::GatewayConfig {
        rate_per_second: 1000,
        rate_burst: 1000,
        ..Default::default()
    }
}

/// A client that trusts only the dev CA, optionally capped at a TLS version.
pub fn client(
    ca_pem: &str,
    max_tls: Option<reqwest::tls::Version>,
) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes())?)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(v) = max_tls {
        builder = builder.max_tls_version(v);
    }
    Ok(builder.build()?)
}

/// Checks the API.md error shape and returns the code.
pub async fn error_code(res: reqwest::Response) -> anyhow::Result<(u16, String)> {
    let status = res.status().as_u16();
    let header_id = res
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await?;
    matches_schema(
        &serde_json::json!({"$ref": "#/components/schemas/Error"}),
        &body,
    )
    .unwrap_or_else(|e| panic!("an error body off the document: {e}: {body}"));
    let err = &body["error"];
    let code = err["code"].as_str().expect("error.code").to_owned();
    assert!(err["message"].is_string(), "{body}");
    let id = err["request_id"].as_str().expect("error.request_id");
    assert!(!id.is_empty());
    assert_eq!(
        Some(id.to_owned()),
        header_id,
        "request id differs from the header"
    );
    Ok((status, code))
}

/// The gateway's OpenAPI document, once per test process.
fn document() -> &'static Value {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOC.get_or_init(coffer_gateway::openapi::document_json)
}

/// Checks `body` against `schema` (a schema of the document, `$ref`s into its components).
pub fn matches_schema(schema: &Value, body: &Value) -> Result<(), String> {
    let mut root = schema.clone();
    root["components"] = document()["components"].clone();
    let validator = jsonschema::draft202012::new(&root).map_err(|e| format!("schema: {e}"))?;
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Checks a JSON body the gateway answered `method path` with, with `status`, against the
/// OpenAPI document: the operation must be documented, with a JSON schema for that status that
/// the body satisfies (every field of API.md, and nothing else).
pub fn conforms(
    method: &reqwest::Method,
    path: &str,
    status: u16,
    body: &Value,
) -> Result<(), String> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document()["paths"].as_object().expect("paths");
    let (template, ops) = paths
        .iter()
        .find(|(template, _)| {
            let t: Vec<&str> = template.split('/').collect();
            t.len() == segments.len()
                && t.iter().zip(&segments).all(|(t, s)| {
                    (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s
                })
        })
        .ok_or_else(|| format!("{path} is not in the document"))?;
    let op = &ops[method.as_str().to_ascii_lowercase()];
    if op.is_null() {
        return Err(format!("{method} {template} is not in the document"));
    }
    let response = &op["responses"][status.to_string()];
    if response.is_null() {
        return Err(format!(
            "{method} {template} does not document status {status}"
        ));
    }
    match response["content"]["application/json"]["schema"].as_object() {
        Some(schema) => matches_schema(&Value::Object(schema.clone()), body)
            .map_err(|e| format!("{method} {template} {status}: {e}")),
        None if body.is_null() => Ok(()),
        None => Err(format!(
            "{method} {template} {status} documents no JSON body"
        )),
    }
}
