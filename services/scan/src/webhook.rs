//! Webhooks (Standard Webhooks): each org may set one endpoint; its `whsec_` secret is shown once
//! and stored sealed (AES-256-GCM under the service's `webhook-key`, the org id as associated
//! data). Events are written to an outbox in the transaction that finishes a job and sent by a
//! delivery loop, signed `v1,<base64 HMAC-SHA256(id.timestamp.body)>`, retried with backoff for
//! `retry_for_secs` (26 hours by default).
//!
//! Targets are checked against server-side request forgery twice: when set (an IP literal in any
//! spelling the URL parser accepts, `127.1` or `2130706433` included) and at every delivery, where
//! every address the name resolves to must be public and the connection goes to the checked
//! address. Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

/// Signatures older or newer than this are refused by [`verify`].
pub const TOLERANCE_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Deliveries of one event are retried for this long, in seconds (at least a day).
    pub retry_for_secs: u64,
    /// First retry delay; doubled per try, capped at `backoff_max_secs`.
    pub backoff_base_secs: u64,
    pub backoff_max_secs: u64,
    pub timeout_secs: u64,
    /// How often the delivery loop looks for due deliveries, in milliseconds.
    pub poll_interval_ms: u64,
    /// TEST ONLY: accept `http://` and loopback targets (for a sink on the test machine). Every
    /// other private, link-local, multicast and metadata address stays refused.
    pub allow_loopback_for_tests: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            retry_for_secs: 26 * 3600,
            backoff_base_secs: 5,
            backoff_max_secs: 3600,
            timeout_secs: 10,
            poll_interval_ms: 1000,
            allow_loopback_for_tests: false,
        }
    }
}

impl WebhookConfig {
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        Duration::from_secs(
            self.backoff_base_secs
                .saturating_mul(1u64 << exp)
                .min(self.backoff_max_secs),
        )
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("the webhook URL is not a valid absolute URL")]
    Malformed,
    #[error("the webhook URL must use https")]
    Scheme,
    #[error("the webhook URL must not carry credentials")]
    Credentials,
    #[error(
        "the webhook URL points to a loopback, private, link-local, multicast or metadata address"
    )]
    Forbidden,
    #[error("the webhook host does not resolve")]
    Unresolved,
}

/// True for addresses a webhook must never reach: loopback (unless allowed for tests), private,
/// shared (CGNAT), link-local (cloud metadata at 169.254.169.254 included), multicast, broadcast,
/// unspecified, documentation, benchmarking and reserved ranges; IPv6 unique-local, link-local,
/// site-local, and any IPv4 mapped or translated into IPv6 that is itself forbidden.
pub fn forbidden(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(a) => forbidden_v4(a, allow_loopback),
        IpAddr::V6(a) => forbidden_v6(a, allow_loopback),
    }
}

fn forbidden_v4(a: Ipv4Addr, allow_loopback: bool) -> bool {
    if a.is_loopback() {
        return !allow_loopback;
    }
    let o = a.octets();
    a.is_private()
        || a.is_link_local()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_unspecified()
        || a.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (18..20).contains(&o[1]))
        || o[0] >= 240
}

fn forbidden_v6(a: Ipv6Addr, allow_loopback: bool) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return forbidden_v4(v4, allow_loopback);
    }
    if a.is_loopback() {
        return !allow_loopback;
    }
    let s = a.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its low 32 bits.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return forbidden_v4(v4, allow_loopback);
    }
    a.is_unspecified()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local, fd00:ec2::254 (AWS metadata) included
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
}

/// Checks a URL when it is set: scheme, no credentials, and an IP-literal host (in any spelling)
/// must be allowed. Names are checked at each delivery, when they are resolved.
pub fn check_url(raw: &str, allow_loopback: bool) -> Result<reqwest::Url, TargetError> {
    if raw.len() > 2048 {
        return Err(TargetError::Malformed);
    }
    let url = reqwest::Url::parse(raw).map_err(|_| TargetError::Malformed)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback => {}
        _ => return Err(TargetError::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    match url.host() {
        None => return Err(TargetError::Malformed),
        Some(url::Host::Ipv4(a)) if forbidden(IpAddr::V4(a), allow_loopback) => {
            return Err(TargetError::Forbidden);
        }
        Some(url::Host::Ipv6(a)) if forbidden(IpAddr::V6(a), allow_loopback) => {
            return Err(TargetError::Forbidden);
        }
        _ => {}
    }
    Ok(url)
}

/// Resolves the URL's host and returns the address to connect to: every resolved address must be
/// allowed (a name with one private address among public ones is refused).
pub async fn resolve(url: &reqwest::Url, allow_loopback: bool) -> Result<SocketAddr, TargetError> {
    let port = url.port_or_known_default().ok_or(TargetError::Malformed)?;
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(a)) => vec![SocketAddr::new(IpAddr::V4(a), port)],
        Some(url::Host::Ipv6(a)) => vec![SocketAddr::new(IpAddr::V6(a), port)],
        Some(url::Host::Domain(d)) => tokio::net::lookup_host((d, port))
            .await
            .map_err(|_| TargetError::Unresolved)?
            .collect(),
        None => return Err(TargetError::Malformed),
    };
    pick(&addrs, allow_loopback)
}

/// The first address, if every one is allowed.
pub fn pick(addrs: &[SocketAddr], allow_loopback: bool) -> Result<SocketAddr, TargetError> {
    if addrs.is_empty() {
        return Err(TargetError::Unresolved);
    }
    if addrs.iter().any(|a| forbidden(a.ip(), allow_loopback)) {
        return Err(TargetError::Forbidden);
    }
    Ok(addrs[0])
}

// === secrets ===

/// A new `whsec_` secret: 32 random bytes, base64.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("whsec_{}", B64.encode(key))
}

fn secret_key(secret: &str) -> Option<Vec<u8>> {
    B64.decode(secret.strip_prefix("whsec_")?).ok()
}

/// Seals webhook secrets at rest (the org id as associated data).
pub use coffer_kit::seal::Sealer as SecretBox;

/// Opens a sealed webhook secret; `None` when it does not open (wrong org, key or bytes).
pub fn open_secret(secrets: &SecretBox, org: Uuid, sealed: &[u8]) -> Option<String> {
    String::from_utf8(secrets.open(org, sealed).ok()?).ok()
}

// === signing ===

/// `v1,<base64>` over `id.timestamp.body` with the secret's key.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = secret_key(secret)?;
    let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("missing or malformed webhook headers")]
    Headers,
    #[error("the timestamp is more than 5 minutes away")]
    Timestamp,
    #[error("no signature matches")]
    Signature,
}

/// Verifies a delivery as a receiver should: the timestamp within 5 minutes of `now`, and one of
/// the space-separated `v1,` signatures equal (in constant time) to the expected one. An empty
/// signature never matches.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    if id.is_empty() {
        return Err(VerifyError::Headers);
    }
    let ts: i64 = timestamp.parse().map_err(|_| VerifyError::Headers)?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(VerifyError::Timestamp);
    }
    let expected = sign(secret, id, ts, body).ok_or(VerifyError::Headers)?;
    let expected = expected.strip_prefix("v1,").unwrap_or_default().as_bytes();
    for candidate in signatures.split(' ') {
        let Some(sig) = candidate.strip_prefix("v1,") else {
            continue;
        };
        if !sig.is_empty() && bool::from(sig.as_bytes().ct_eq(expected)) {
            return Ok(());
        }
    }
    Err(VerifyError::Signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for bad in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(forbidden(bad.parse().unwrap(), false), "{bad}");
        }
        for ok in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::808:808",
        ] {
            assert!(!forbidden(ok.parse().unwrap(), false), "{ok}");
        }
        assert!(!forbidden("127.0.0.1".parse().unwrap(), true));
        assert!(!forbidden("::ffff:127.0.0.1".parse().unwrap(), true));
        assert!(
            forbidden("10.0.0.1".parse().unwrap(), true),
            "only loopback is allowed for tests"
        );
    }

    #[test]
    fn urls_in_every_spelling_of_an_internal_address_are_refused() {
        for bad in [
            "https://127.1/hook",
            "https://0x7f000001/hook",
            "https://2130706433/hook",
            "https://0177.0.0.1/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://[::1]:8443/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://10.1.2.3/",
        ] {
            assert_eq!(
                check_url(bad, false).unwrap_err(),
                TargetError::Forbidden,
                "{bad}"
            );
        }
        assert_eq!(
            check_url("http://example.com/", false).unwrap_err(),
            TargetError::Scheme
        );
        assert_eq!(
            check_url("ftp://example.com/", true).unwrap_err(),
            TargetError::Scheme
        );
        assert_eq!(
            check_url("https://u:p@example.com/", false).unwrap_err(),
            TargetError::Credentials
        );
        assert_eq!(
            check_url("not a url", false).unwrap_err(),
            TargetError::Malformed
        );
        assert!(check_url("https://hooks.example.com/coffer", false).is_ok());
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
    }

    #[test]
    fn a_name_with_any_internal_address_is_refused() {
        let public: SocketAddr = "93.184.216.34:443".parse().unwrap();
        let private: SocketAddr = "10.0.0.5:443".parse().unwrap();
        assert_eq!(pick(&[public], false), Ok(public));
        assert_eq!(pick(&[public, private], false), Err(TargetError::Forbidden));
        assert_eq!(pick(&[private], false), Err(TargetError::Forbidden));
        assert_eq!(pick(&[], false), Err(TargetError::Unresolved));
    }

    #[tokio::test]
    async fn localhost_resolves_to_loopback_and_is_refused() {
        let url = check_url("https://localhost:8443/hook", false).unwrap();
        assert_eq!(resolve(&url, false).await, Err(TargetError::Forbidden));
    }

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let secret = new_secret();
        assert!(secret.starts_with("whsec_"));
        let body = br#"{"type":"file.scanned"}"#;
        let sig = sign(&secret, "msg_1", 1_700_000_000, body).unwrap();
        assert!(sig.starts_with("v1,"));
        let now = 1_700_000_100;
        assert_eq!(
            verify(&secret, "msg_1", "1700000000", &sig, body, now),
            Ok(())
        );
        let two = format!("v1,AAAA {sig}");
        assert_eq!(
            verify(&secret, "msg_1", "1700000000", &two, body, now),
            Ok(())
        );
        assert_eq!(
            verify(&secret, "msg_1", "1700000000", &sig, b"{}", now),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify(&secret, "msg_2", "1700000000", &sig, body, now),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify(
                &secret,
                "msg_1",
                "1700000000",
                &sig,
                body,
                1_700_000_000 + 301
            ),
            Err(VerifyError::Timestamp)
        );
        for empty in ["v1,", "v1, v1,", "", "v2,abc"] {
            assert_eq!(
                verify(&secret, "msg_1", "1700000000", empty, body, now),
                Err(VerifyError::Signature),
                "{empty:?}"
            );
        }
        assert_eq!(
            verify(&new_secret(), "msg_1", "1700000000", &sig, body, now),
            Err(VerifyError::Signature)
        );
    }

    #[test]
    fn sealed_secrets_open_only_for_their_org() {
        let b = SecretBox::new(&[7u8; 32]).unwrap();
        let org = Uuid::new_v4();
        let sealed = b.seal(org, b"whsec_abc").unwrap();
        assert_eq!(open_secret(&b, org, &sealed).as_deref(), Some("whsec_abc"));
        assert_eq!(open_secret(&b, Uuid::new_v4(), &sealed), None);
        assert!(!sealed.windows(9).any(|w| w == b"whsec_abc"));
    }
}

// === delivery ===

/// The status recorded for a try cut short by the service stopping.
const SHUTDOWN: &str = "shutdown";

/// Sends due deliveries for as long as the process runs.
#[derive(Clone)]
pub struct Sender {
    pub pool: sqlx::PgPool,
    pub secrets: SecretBox,
    pub config: WebhookConfig,
}

impl Sender {
    pub fn schedule(self, jobs: &mut coffer_mesh::Jobs) {
        jobs.spawn("webhook sender", move |mut stop| async move {
            let idle = Duration::from_millis(self.config.poll_interval_ms);
            while !stop.is_stopped() {
                match self.send_one(&stop).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(?error, "webhook delivery loop failed; will retry");
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(idle) => {}
                    () = stop.stopped() => {}
                }
            }
        });
    }

    /// Sends one due delivery, if any. Returns whether there was one. A POST in flight when the
    /// service stops (a slow receiver, a name that does not resolve) is given up and recorded as
    /// such, due again at once: shutdown waits for no receiver, and no outcome goes unrecorded.
    pub async fn send_one(&self, stop: &coffer_mesh::Stop) -> Result<bool, coffer_db::DbError> {
        let hold = self.config.timeout_secs.saturating_mul(3).max(30);
        let mut tx =
            coffer_db::begin_with_setting(&self.pool, "coffer.lookup_delivery", "1").await?;
        let Some(d) = crate::store::claim_delivery(&mut tx, hold).await? else {
            tx.commit().await?;
            return Ok(false);
        };
        tx.commit().await?;
        // No transaction stays open across the POST (up to `timeout_secs`): read, send, record.
        let tenant = || coffer_db::tenant_tx(&self.pool, d.org_id);
        let mut tx = tenant().await?;
        let hook = crate::store::webhook(&mut tx).await?;
        tx.commit().await?;
        let mut stopping = stop.clone();
        let mut shut_down = false;
        let (status, delivered) = match hook {
            None => ("no endpoint".to_owned(), false),
            Some((url, sealed)) => match open_secret(&self.secrets, d.org_id, &sealed) {
                None => ("secret does not open".to_owned(), false),
                Some(secret) => tokio::select! {
                    sent = self.post(&url, &secret, &d) => sent,
                    () = stopping.stopped() => {
                        shut_down = true;
                        (SHUTDOWN.to_owned(), false)
                    }
                },
            },
        };
        let retry_in = if shut_down {
            Duration::ZERO
        } else {
            self.config.backoff(d.attempts)
        };
        let mut tx = tenant().await?;
        crate::store::delivery_tried(&mut tx, d.id, &status, delivered, retry_in).await?;
        tx.commit().await?;
        if !shut_down {
            crate::metrics::metrics().delivery(delivered);
        }
        if delivered {
            tracing::info!(delivery = %d.id, org = %d.org_id, attempt = d.attempts, "webhook delivered");
        } else {
            tracing::warn!(delivery = %d.id, org = %d.org_id, attempt = d.attempts, status = %status,
                retry_in_secs = retry_in.as_secs(), "webhook delivery failed");
        }
        Ok(true)
    }

    /// One signed POST to the checked address. Returns a short status and whether it was taken.
    async fn post(
        &self,
        raw_url: &str,
        secret: &str,
        d: &crate::store::Delivery,
    ) -> (String, bool) {
        let allow = self.config.allow_loopback_for_tests;
        let url = match check_url(raw_url, allow) {
            Ok(u) => u,
            Err(e) => return (e.to_string(), false),
        };
        let addr = match resolve(&url, allow).await {
            Ok(a) => a,
            Err(e) => return (e.to_string(), false),
        };
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(self.config.timeout_secs))
            .no_proxy();
        if let Some(url::Host::Domain(host)) = url.host() {
            // Connect to the address that was checked, not to a second lookup's answer.
            client = client.resolve(host, addr);
        }
        let client = match client.build() {
            Ok(c) => c,
            Err(_) => return ("client error".into(), false),
        };
        let body = serde_json::to_vec(&d.payload.0).unwrap_or_default();
        let id = format!("msg_{}", d.id.simple());
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let Some(signature) = sign(secret, &id, ts, &body) else {
            return ("secret unusable".into(), false);
        };
        let sent = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => (r.status().as_u16().to_string(), true),
            // A redirect is not followed: the target answered, but not as a receiver.
            Ok(r) => (r.status().as_u16().to_string(), false),
            Err(e) if e.is_timeout() => ("timeout".into(), false),
            Err(_) => ("connection failed".into(), false),
        }
    }
}
