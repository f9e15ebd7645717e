//! The gateway's client: one reqwest client trusting the profile's CA, the credential on every
//! call, error answers turned into [`ApiError`] with a hint of what to do, and 429/503 retried
//! after their `Retry-After` (GETs on 503 only: a refused write may have half-happened).

use std::time::Duration;

use anyhow::Context as _;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::ErrorBody;
use crate::profile::{Credential, Profile};

/// An error answer of the gateway.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not logged in, or the session has ended: run coffer login")]
    NotLoggedIn,
    #[error("{message} ({code}, HTTP {status}, request {request_id}){}", hint(*status, code))]
    Refused {
        status: u16,
        code: String,
        message: String,
        request_id: String,
    },
    #[error("cannot reach the gateway at {url}: {source}{}", tls_hint(source))]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::NotLoggedIn => Some(401),
            ApiError::Refused { status, .. } => Some(*status),
            ApiError::Unreachable { .. } => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

fn hint(status: u16, code: &str) -> &'static str {
    match (status, code) {
        (403, "quarantined") => {
            ": the scan quarantined it; an owner or admin may release it (web app) after review"
        }
        (403, "session_required") => ": an API key cannot do this; log in with a password",
        (403, _) => ": your role or your API key's scopes do not allow this",
        (404, _) => ": no such file or folder in your organisation (check the path with coffer ls)",
        (409, "not_ready") => {
            ": the file is not scanned yet; wait (coffer put --wait) and try again"
        }
        (413, _) => ": too large for the file size limit or your organisation's quota",
        (429, _) => ": too many requests; wait a moment and try again",
        (503, _) => ": a service behind the gateway is down; try again shortly",
        _ => "",
    }
}

fn tls_hint(e: &reqwest::Error) -> &'static str {
    let text = format!("{e:?}");
    if text.contains("certificate") || text.contains("UnknownIssuer") {
        " (the gateway's certificate is not trusted: give its CA with coffer login --ca-cert FILE)"
    } else {
        " (is the gateway running, and is the profile's URL right? coffer whoami shows it)"
    }
}

/// A client of one gateway, signed in or not.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    /// For the store's presigned URLs: no credential of the gateway ever goes there.
    pub store: reqwest::Client,
    base: String,
    credential: Option<Credential>,
}

/// Builds an HTTP client trusting the built-in (Mozilla) roots and, when given, the profile's CA.
fn http_client(ca: Option<&str>, timeout: Option<Duration>) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("coffer-cli/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none());
    b = match timeout {
        Some(t) => b.timeout(t),
        None => b.read_timeout(Duration::from_secs(60)),
    };
    if let Some(pem) = ca {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .context("the profile's CA certificate is not PEM: log in again with --ca-cert FILE")?;
        anyhow::ensure!(
            !certs.is_empty(),
            "the profile's CA file holds no certificate"
        );
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    Ok(b.build()?)
}

/// Credentials go to the gateway over TLS only; plain HTTP is for a gateway on this machine
/// (a loopback host, no user part in the URL).
pub fn check_gateway_url(base: &str) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(base).with_context(|| format!("{base:?} is not a URL"))?;
    anyhow::ensure!(
        url.username().is_empty() && url.password().is_none(),
        "the gateway URL must not hold a user or password"
    );
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => anyhow::bail!(
            "the gateway URL must be https:// (plain http only to this machine): got {base}"
        ),
    }
}

impl Api {
    pub fn new(profile: &Profile) -> anyhow::Result<Api> {
        let base = profile.gateway.trim_end_matches('/').to_owned();
        check_gateway_url(&base)?;
        Ok(Api {
            http: http_client(profile.ca_pem.as_deref(), Some(Duration::from_secs(300)))?,
            // Transfers take as long as their bytes need; one that stalls is cut after a minute
            // without a byte.
            store: http_client(profile.ca_pem.as_deref(), None)?,
            base,
            credential: profile.credential.clone(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GETs `path` until `done` says the answer is final (every 200 ms at first, then up to every
    /// 2 s), at most `timeout`; `waiting` says what was awaited when it runs out.
    pub async fn poll<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
        done: impl Fn(&T) -> bool,
        waiting: &str,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(200);
        loop {
            let answer: T = self.get(path).await?;
            if done(&answer) {
                return Ok(answer);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "no {waiting} after {} s",
                timeout.as_secs()
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        match &self.credential {
            Some(Credential::ApiKey { key }) => req = req.bearer_auth(key),
            Some(Credential::Session { session, csrf, .. }) => {
                req = req
                    .header("cookie", format!("coffer_session={session}"))
                    .header("x-csrf-token", csrf);
            }
            None => {}
        }
        req
    }

    /// Sends a request (a JSON body when given), retrying 429 and (for GETs) 503 up to three
    /// times after `Retry-After`; an error answer becomes an [`ApiError`].
    pub async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, ApiError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let mut req = self.request(method.clone(), path);
            if let Some(b) = body {
                req = req.json(b);
            }
            let res = req.send().await.map_err(|source| ApiError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
            let status = res.status();
            if status.is_success() {
                return Ok(res);
            }
            let retry = status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::SERVICE_UNAVAILABLE && method == Method::GET);
            if retry && tries < 4 {
                let wait = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1)
                    .min(30);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let err = error_of(res).await;
            // A refused login is a wrong password, not a missing session.
            if err.status() == Some(401)
                && err.code() != Some("totp_required")
                && !path.starts_with("/v1/auth/login")
            {
                return Err(ApiError::NotLoggedIn);
            }
            return Err(err);
        }
    }

    /// A JSON call; an empty answer (204) reads as `null`.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<T> {
        let res = self.send(method, path, body).await?;
        let bytes = res.bytes().await.context("reading the gateway's answer")?;
        let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(bytes).with_context(|| {
            format!("the gateway's answer to {path} is not what this client expects")
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// A call whose answer is not read (204s).
    pub async fn act(&self, method: Method, path: &str) -> anyhow::Result<()> {
        self.send::<()>(method, path, None).await?;
        Ok(())
    }
}

/// Reads an error answer: the API's error body, or the status alone.
pub async fn error_of(res: reqwest::Response) -> ApiError {
    let status = res.status().as_u16();
    let body = res.json::<ErrorBody>().await.ok();
    match body {
        Some(b) => ApiError::Refused {
            status,
            code: b.error.code,
            message: b.error.message,
            request_id: b.error.request_id,
        },
        None => ApiError::Refused {
            status,
            code: "http".into(),
            message: format!("HTTP {status}"),
            request_id: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::check_gateway_url;

    #[test]
    fn credentials_go_over_plain_http_only_to_this_machine() {
        for ok in [
            "https://vault.example.com",
            "http://localhost:8080",
            "http://127.0.0.1:1",
            "http://[::1]:2",
        ] {
            assert!(check_gateway_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://vault.example.com",
            "http://localhost.evil.com",
            "http://127.0.0.1.evil.com",
            "http://localhost@evil.com/",
            "https://user:pw@vault.example.com",
            "ftp://localhost",
            "vault.example.com",
        ] {
            assert!(check_gateway_url(bad).is_err(), "{bad}");
        }
    }
}
