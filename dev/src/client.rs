//! A signed-in client of a running mesh's gateway, as the load benchmarks drive it: cookie and
//! CSRF header on every call, create + PUT + complete, purge.

use anyhow::Context as _;
use serde_json::{Value, json};

/// A signed-in client of the gateway.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) store: reqwest::Client,
    pub(crate) base: String,
    pub(crate) cookie: String,
    pub(crate) csrf: String,
    /// Distinguishes this run's file names from earlier runs' against the same mesh.
    pub(crate) run: String,
}

/// A client of a gateway whose certificate `ca` signs, trusting nothing else, and a plain one
/// for the store's presigned URLs; each call gives up after 30 s.
pub(crate) fn http_clients(
    ca: &std::path::Path,
) -> anyhow::Result<(reqwest::Client, reqwest::Client)> {
    let timeout = std::time::Duration::from_secs(30);
    let http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?)
        .timeout(timeout)
        .build()?;
    let store = reqwest::Client::builder().timeout(timeout).build()?;
    Ok((http, store))
}

impl Client {
    /// Signs in at the gateway `base` (its certificate signed by `ca`).
    pub(crate) async fn login(
        base: &str,
        ca: &std::path::Path,
        email: &str,
        password: &str,
    ) -> anyhow::Result<Client> {
        let (http, store) = http_clients(ca)?;
        let res = http
            .post(format!("{base}/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "login {email}: {}", res.status());
        let cookie = res.headers()["set-cookie"]
            .to_str()?
            .split(';')
            .next()
            .unwrap_or_default()
            .to_owned();
        let csrf = res.json::<Value>().await?["csrf_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(Client {
            http,
            store,
            base: base.to_owned(),
            cookie,
            csrf,
            run: String::new(),
        })
    }

    pub(crate) fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
    }

    pub(crate) async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self.req(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await?;
        let status = res.status();
        let text = res.text().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {text}");
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// Create + PUT + complete; returns the file id.
    pub(crate) async fn upload(&self, n: u64, bytes: &'static [u8]) -> anyhow::Result<String> {
        let id = self.create_and_put(n, bytes).await?;
        self.complete(&id).await?;
        Ok(id)
    }

    pub(crate) async fn complete(&self, id: &str) -> anyhow::Result<()> {
        self.json(
            reqwest::Method::POST,
            &format!("/v1/files/{id}/complete"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Creates a file of `size` bytes and PUTs them as a stream of one repeated random MiB, so
    /// the bench never holds the file in memory.
    pub(crate) async fn create_and_put_stream(&self, size: u64) -> anyhow::Result<String> {
        let (id, upload) = self.create(u64::MAX, size).await?;
        let mut block = vec![0u8; 1 << 20];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut block);
        let block = bytes::Bytes::from(block);
        let chunks = (0..size.div_ceil(1 << 20)).map(move |i| {
            let n = (size - (i << 20)).min(1 << 20) as usize;
            Ok::<_, std::io::Error>(block.slice(..n))
        });
        let mut put = self.store.put(upload["url"].as_str().context("no url")?);
        for (k, v) in upload["headers"].as_object().context("no headers")? {
            put = put.header(k, v.as_str().unwrap_or_default());
        }
        let res = put
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "PUT: {}", res.status());
        Ok(id)
    }

    pub(crate) async fn create(&self, n: u64, size: u64) -> anyhow::Result<(String, Value)> {
        let created = self
            .json(
                reqwest::Method::POST,
                "/v1/files",
                Some(json!({
                    "name": format!("bench-{}-{n}.bin", self.run),
                    "size": size,
                    "content_type": "application/octet-stream",
                })),
            )
            .await?;
        let id = created["file"]["id"]
            .as_str()
            .context("no file id")?
            .to_owned();
        Ok((id, created["upload"].clone()))
    }

    /// Create + PUT; returns the file id.
    pub(crate) async fn create_and_put(
        &self,
        n: u64,
        bytes: &'static [u8],
    ) -> anyhow::Result<String> {
        let (id, upload) = self.create(n, bytes.len() as u64).await?;
        let mut put = self.store.put(upload["url"].as_str().context("no url")?);
        for (k, v) in upload["headers"].as_object().context("no headers")? {
            if k != "content-length" {
                put = put.header(k, v.as_str().unwrap_or_default());
            }
        }
        let res = put.body(bytes).send().await?;
        anyhow::ensure!(res.status().is_success(), "PUT: {}", res.status());
        Ok(id)
    }

    pub(crate) async fn purge(&self, id: &str) -> anyhow::Result<()> {
        self.json(
            reqwest::Method::DELETE,
            &format!("/v1/files/{id}/purge"),
            None,
        )
        .await
        .map(|_| ())
    }
}
