//! Authenticated `GET /v1/me` through gateway → auth (over mTLS) → Postgres, with a session cookie
//! and with an API key, at 1 and 64 concurrent clients; and the login rate, which Argon2id sets.
//!
//! cargo bench -p coffer-gateway --bench me
//!
//! Everything runs on this 2-core machine at once: Postgres, auth, the gateway and the load
//! client, so the numbers are the whole path's cost here, not a server's capacity on its own host.

use std::time::{Duration, Instant};

use coffer_config::ServiceConfig;
use coffer_testkit::{CertSpec, DevCa, Postgres};
use coffer_token::MasterKeyRing;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple 42";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn drive(
    concurrency: usize,
    total: usize,
    http: reqwest::Client,
    url: String,
    header: (&'static str, String),
) -> (Vec<Duration>, Duration) {
    let per = total / concurrency;
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url, header) = (http.clone(), url.clone(), header.clone());
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per);
                for _ in 0..per {
                    let t = Instant::now();
                    let res = http
                        .get(&url)
                        .header(header.0, &header.1)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                    res.bytes().await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    (all, start.elapsed())
}

#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let pg = Postgres::start().await?;
        let dir = tempfile::tempdir()?;
        let ca = DevCa::new("bench CA")?;
        let auth = coffer_auth::testing::start(&pg, &ca, dir.path(), Default::default()).await?.server;
        let gw_secrets = ca.write_service_dir(&dir.path().join("gateway"), "gateway")?;
        let mut public = CertSpec::service("gateway");
        public.dns.push("localhost".into());
        let public = ca.issue_spec(&public)?;
        std::fs::write(gw_secrets.join("public-tls.crt"), &public.cert_pem)?;
        std::fs::write(gw_secrets.join("public-tls.key"), &public.key_pem)?;
        std::fs::write(gw_secrets.join("cookie-keys.toml"), MasterKeyRing::generate("c1").to_toml())?;
        let gw_service = ServiceConfig {
            listen: "127.0.0.1:0".parse()?,
            admin_listen: "127.0.0.1:0".parse()?,
            secrets_dir: gw_secrets,
            peers: [("auth".to_owned(), auth.addr().to_string())].into(),
            ..ServiceConfig::default()
        };
        let gw_config = coffer_gateway::GatewayConfig {
            public_listen: "127.0.0.1:0".parse()?,
            rate_per_second: 1_000_000,
            rate_burst: 1_000_000,
            ..Default::default()
        };
        let app = coffer_gateway::App::build(&gw_service, &gw_config).await?;
        let base = format!("https://localhost:{}", app.public_addr().port());
        tokio::spawn(app.run(std::future::pending()));
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.ca_pem().as_bytes())?)
            .pool_max_idle_per_host(128)
            .build()?;

        http.post(format!("{base}/v1/auth/signup"))
            .json(&json!({"org_name": "bench", "email": "bench@example.com", "password": PASSWORD}))
            .send()
            .await?;
        let login = http
            .post(format!("{base}/v1/auth/login"))
            .json(&json!({"email": "bench@example.com", "password": PASSWORD}))
            .send()
            .await?;
        let cookie = login.headers()["set-cookie"].to_str()?.split(';').next().unwrap().to_owned();
        let csrf = login.json::<Value>().await?["csrf_token"].as_str().unwrap().to_owned();
        let key: Value = http
            .post(format!("{base}/v1/api-keys"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": "bench", "scopes": ["files:read"]}))
            .send()
            .await?
            .json()
            .await?;
        let bearer = format!("Bearer {}", key["key"].as_str().unwrap());

        let me = format!("{base}/v1/me");
        for (label, header) in [("cookie", ("cookie", cookie.clone())), ("api key", ("authorization", bearer.clone()))] {
            for concurrency in [1usize, 64] {
                drive(concurrency, 256, http.clone(), me.clone(), header.clone()).await;
                let (lat, wall) = drive(concurrency, 3_072, http.clone(), me.clone(), header.clone()).await;
                println!(
                    "GET /v1/me  {label:<8} clients={concurrency:<3} requests={} p50={:>7.2}ms p99={:>7.2}ms throughput={:>6.0}/s",
                    lat.len(),
                    percentile(&lat, 0.5).as_secs_f64() * 1e3,
                    percentile(&lat, 0.99).as_secs_f64() * 1e3,
                    lat.len() as f64 / wall.as_secs_f64()
                );
            }
        }

        // Login rate: distinct accounts so throttling never applies; each login is one Argon2id
        // verification plus a session insert.
        for i in 0..16 {
            http.post(format!("{base}/v1/auth/signup"))
                .json(&json!({"org_name": "b", "email": format!("l{i}@example.com"), "password": PASSWORD}))
                .send()
                .await?;
        }
        for concurrency in [1usize, 8] {
            let start = Instant::now();
            let rounds = 64 / concurrency;
            let tasks: Vec<_> = (0..concurrency)
                .map(|c| {
                    let (http, base) = (http.clone(), base.clone());
                    tokio::spawn(async move {
                        for r in 0..rounds {
                            let email = format!("l{}@example.com", (c * rounds + r) % 16);
                            let res = http
                                .post(format!("{base}/v1/auth/login"))
                                .json(&json!({"email": email, "password": PASSWORD}))
                                .send()
                                .await
                                .unwrap();
                            assert_eq!(res.status(), 200);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await?;
            }
            let secs = start.elapsed().as_secs_f64();
            println!("login       clients={concurrency:<3} logins=64 rate={:>6.1}/s ({})", 64.0 / secs, coffer_auth::Hasher::parameters());
        }
        drop(auth);
        anyhow::Ok(())
    })
}
