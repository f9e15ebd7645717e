//! Unary gRPC echo through the full mesh stack over mTLS (request id, trace and metrics, caller
//! allow-list, token verification) against plain tonic with no TLS and no layers, at 1 and 64
//! concurrent callers. Prints p50/p99 per call and the overhead of the stack.
//!
//! cargo bench -p coffer-mesh --bench echo
//!
//! A load tool rather than a criterion group: criterion reports a mean per iteration, and the
//! target is a percentile under concurrency. The servers run on their own single-threaded runtime
//! and the callers on another, like two processes on the two cores of this machine; mesh and plain
//! runs are interleaved over several rounds so that drift in the machine hits both alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_mesh::echo::EchoService;
use coffer_mesh::{CertStore, MeshClient, MeshServer, TlsFiles, TokenVerifier};
use coffer_proto::testing::v1::EchoRequest;
use coffer_proto::testing::v1::echo_client::EchoClient;
use coffer_testkit::DevCa;
use coffer_token::{
    Audience, MasterKeyRing, Minter, Role, Scopes, Subject, Verifier, VerifyOptions,
};

const ROUNDS: usize = 6;
const CALLS_PER_ROUND: usize = 4_032; // a multiple of 64
const WARMUP: usize = 1_024;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// Makes `total` calls from `concurrency` tasks; returns the latencies and the wall time.
async fn drive<F, Fut>(concurrency: usize, total: usize, call: F) -> (Vec<Duration>, Duration)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let per_task = total / concurrency;
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    call().await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all, start.elapsed())
}

#[allow(clippy::print_stdout)]
fn report(name: &str, concurrency: usize, lat: &mut [Duration], wall: Duration) -> Duration {
    lat.sort();
    let p50 = percentile(lat, 0.50);
    let p99 = percentile(lat, 0.99);
    println!(
        "{name:<10} callers={concurrency:<3} calls={:<6} p50={:>8.1}µs p99={:>8.1}µs throughput={:>7.0}/s",
        lat.len(),
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        lat.len() as f64 / wall.as_secs_f64()
    );
    p50
}

struct Servers {
    mesh: String,
    plain: String,
}

/// Starts both servers on a runtime of their own, one worker thread.
fn start_servers(
    rt: &tokio::runtime::Runtime,
    server_dir: &std::path::Path,
    ring: &MasterKeyRing,
) -> anyhow::Result<Servers> {
    let verifier = Verifier::new(
        &ring.derive_audience_ring(Audience::Metadata),
        VerifyOptions::default(),
    );
    rt.block_on(async {
        let mesh = MeshServer::new(
            CertStore::load(TlsFiles::in_dir(server_dir))?,
            EchoService::policy()?,
        )
        .token_verifier(TokenVerifier::fixed(verifier))
        .add_service(EchoService::default().server())
        .bind("127.0.0.1:0".parse()?)
        .await?;
        let mesh_addr = mesh.local_addr().to_string();
        tokio::spawn(mesh.serve(std::future::pending()));
        let plain = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse()?)?
            .with_nodelay(Some(true));
        let plain_addr = plain.local_addr()?.to_string();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(EchoService::default().server())
                .serve_with_incoming(plain),
        );
        Ok(Servers {
            mesh: mesh_addr,
            plain: plain_addr,
        })
    })
}

#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = DevCa::new("bench CA")?;
    let server_dir = ca.write_service_dir(&dir.path().join("echo"), "echo")?;
    let client_dir = ca.write_service_dir(&dir.path().join("gateway"), "gateway")?;
    let ring = MasterKeyRing::generate("k1");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let servers = start_servers(&server_rt, &server_dir, &ring)?;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    client_rt.block_on(async {
        let mesh_client = MeshClient::new(CertStore::load(TlsFiles::in_dir(&client_dir))?)?;
        let mut summary = Vec::new();
        for concurrency in [1usize, 64] {
            // Full stack over mTLS: Echo needs and verifies a token (minted per level: tokens
            // live 60 s).
            let token: Arc<str> = Minter::new(&ring)
                .mint(
                    &Subject {
                        user_id: uuid::Uuid::new_v4(),
                        org_id: uuid::Uuid::new_v4(),
                        role: Role::Member,
                        scopes: Scopes::all(),
                        credential: coffer_token::Credential::Session,
                        request_id: "bench".into(),
                    },
                    &[Audience::Metadata],
                    coffer_token::unix_now(),
                    60,
                )?
                .into();
            let client = EchoClient::new(mesh_client.channel("echo", &servers.mesh)?);
            let call_mesh = move || {
                let mut client = client.clone();
                let t = token.clone();
                async move {
                    let mut req = tonic::Request::new(EchoRequest {
                        message: "x".into(),
                    });
                    req.metadata_mut()
                        .insert(coffer_token::METADATA_KEY, t.parse().unwrap());
                    client.echo(req).await.unwrap();
                }
            };
            // Plain tonic, no TLS, no layers: Ping (Echo would need a verified caller).
            let plain = EchoClient::new(
                tonic::transport::Channel::from_shared(format!("http://{}", servers.plain))?
                    .tcp_nodelay(true)
                    .connect()
                    .await?,
            );
            let call_plain = move || {
                let mut client = plain.clone();
                async move {
                    client
                        .ping(EchoRequest {
                            message: "x".into(),
                        })
                        .await
                        .unwrap();
                }
            };
            drive(concurrency, WARMUP, call_mesh.clone()).await;
            drive(concurrency, WARMUP, call_plain.clone()).await;
            let (mut m, mut mw, mut p, mut pw) =
                (Vec::new(), Duration::ZERO, Vec::new(), Duration::ZERO);
            for _ in 0..ROUNDS {
                let (l, w) = drive(concurrency, CALLS_PER_ROUND, call_mesh.clone()).await;
                m.extend(l);
                mw += w;
                let (l, w) = drive(concurrency, CALLS_PER_ROUND, call_plain.clone()).await;
                p.extend(l);
                pw += w;
            }
            let mp50 = report("mesh+mtls", concurrency, &mut m, mw);
            let pp50 = report("plain", concurrency, &mut p, pw);
            summary.push((concurrency, mp50.as_secs_f64() - pp50.as_secs_f64()));
        }
        for (c, d50) in summary {
            println!("overhead   callers={c:<3} p50={:+.1}µs per call", d50 * 1e6);
        }
        anyhow::Ok(())
    })?;
    drop(server_rt);
    Ok(())
}
