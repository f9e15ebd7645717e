use std::net::SocketAddr;

use coffer_config::ServiceConfig;
use coffer_testkit::{CertSpec, DevCa, Postgres};
use coffer_token::MasterKeyRing;
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery staple 42";

pub struct Harness {
    pub base: String,
    pub admin: SocketAddr,
    pub http: reqwest::Client,
    pub ca_pem: String,
    _dir: tempfile::TempDir,
    pub auth: Option<coffer_mesh::RunningServer>,
}

impl Harness {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(coffer_gateway::GatewayConfig {
            public_listen: "127.0.0.1:0".parse()?,
            rate_per_second: 1000,
            rate_burst: 1000,
            ..Default::default()
        })
        .await
    }

    pub async fn start_with(config: coffer_gateway::GatewayConfig) -> anyhow::Result<Self> {
        coffer_telemetry::init_for_tests();
        let pg = Postgres::shared().await?;
        let dir = tempfile::tempdir()?;
        let ca = DevCa::new("gateway test CA")?;
        let auth = coffer_auth::testing::start(pg, &ca, dir.path(), Default::default())
            .await?
            .server;

        let gw_secrets = ca.write_service_dir(&dir.path().join("gateway"), "gateway")?;
        let mut public = CertSpec::service("gateway");
        public.dns.push("localhost".into());
        public.ips.push("127.0.0.1".parse()?);
        let public = ca.issue_spec(&public)?;
        std::fs::write(gw_secrets.join("public-tls.crt"), &public.cert_pem)?;
        std::fs::write(gw_secrets.join("public-tls.key"), &public.key_pem)?;
        std::fs::write(
            gw_secrets.join("cookie-keys.toml"),
            MasterKeyRing::generate("c1").to_toml(),
        )?;
        let gw_service = ServiceConfig {
            listen: "127.0.0.1:0".parse()?,
            admin_listen: "127.0.0.1:0".parse()?,
            secrets_dir: gw_secrets,
            peers: [("auth".to_owned(), auth.addr().to_string())].into(),
            ..ServiceConfig::default()
        };
        let app = coffer_gateway::App::build(&gw_service, &config).await?;
        let base = format!("https://localhost:{}", app.public_addr().port());
        let admin = app.admin_addr();
        tokio::spawn(app.run(std::future::pending()));
        let ca_pem = ca.ca_pem();
        let http = client(&ca_pem, None)?;
        Ok(Harness {
            base,
            admin,
            http,
            ca_pem,
            _dir: dir,
            auth: Some(auth),
        })
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
            org["org_id"].as_str().unwrap().to_owned(),
            cookie,
            body["csrf_token"].as_str().unwrap().to_owned(),
        ))
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
