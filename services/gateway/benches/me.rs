//! Authenticated `GET /v1/me` through gateway → auth (over mTLS) → Postgres, with a session cookie
//! and with an API key, at 1 and 64 concurrent clients; and the login rate, which Argon2id sets.
//!
//! cargo bench -p coffer-gateway --bench me
//!
//! Everything runs on this 2-core machine at once: Postgres, auth, the gateway and the load
//! client, so the numbers are the whole path's cost here, not a server's capacity on its own host.

use std::time::{Duration, Instant};

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
        // Auth, metadata, storage-signer and S3 as in the tests; only auth is on this path.
        let stack = coffer_metadata::testing::Stack::start(Default::default()).await?;
        let ca = &stack.ca;
        let gw_config = coffer_gateway::GatewayConfig {
            rate_per_second: 1_000_000,
            rate_burst: 1_000_000,
            ..Default::default()
        };
        let gw = coffer_gateway::testing::start(
            ca,
            stack.dir.path(),
            &stack.auth.server.addr().to_string(),
            &stack.metadata.server.addr().to_string(),
            &stack.audit().server.addr().to_string(),
            // /v1/me never reaches scan: its channel connects lazily and is never used here.
            "127.0.0.1:9",
            gw_config,
        )
        .await?;
        let base = gw.base;
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
        drop(stack);
        anyhow::Ok(())
    })
}
