//! Waiting for a mesh service to answer gRPC health over mTLS, as the launcher's own identity.

use std::time::{Duration, Instant};

use coffer_mesh::MeshClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Polls `service` at `addr` until it reports SERVING, or fails after `timeout`.
pub async fn wait_serving(
    client: &MeshClient,
    service: &str,
    addr: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last_error = String::from("no answer");
    while Instant::now() < deadline {
        let mut health = HealthClient::new(client.channel(service, addr)?);
        match health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
        {
            Ok(res) if res.get_ref().status == ServingStatus::Serving as i32 => return Ok(()),
            Ok(res) => last_error = format!("status {}", res.get_ref().status),
            Err(status) => last_error = status.message().to_owned(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{service} at {addr} is not serving after {timeout:?}: {last_error}")
}

/// Polls an admin port's `/readyz` until it answers 200, or fails after `timeout`.
pub async fn wait_ready(admin_addr: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let url = format!("http://{admin_addr}/readyz");
    while Instant::now() < deadline {
        if let Ok(res) = http.get(&url).send().await
            && res.status() == reqwest::StatusCode::OK
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{url} is not ready after {timeout:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_mesh::echo::EchoService;
    use coffer_mesh::{CertStore, MeshServer, TlsFiles};

    #[tokio::test]
    async fn waits_for_a_real_mesh_server_and_gives_up_on_a_silent_port() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let ca = coffer_testkit::DevCa::new("health test CA")?;
        let server_dir = ca.write_service_dir(&dir.path().join("echo"), "echo")?;
        let dev_dir = ca.write_service_dir(&dir.path().join("dev"), "coffer-dev")?;
        let client = MeshClient::new(CertStore::load(TlsFiles::in_dir(&dev_dir))?)?;

        // Nothing listens yet: the wait fails within its timeout.
        let port = coffer_testkit::free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let start = Instant::now();
        assert!(
            wait_serving(&client, "echo", &addr, Duration::from_millis(500))
                .await
                .is_err()
        );
        assert!(start.elapsed() < Duration::from_secs(3));

        // The server comes up late on that port: the wait sees it.
        let server = MeshServer::new(
            CertStore::load(TlsFiles::in_dir(&server_dir))?,
            EchoService::policy()?,
        )
        .add_service(EchoService::default().server());
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            server.bind(addr.parse().unwrap()).await.unwrap().spawn()
        });
        wait_serving(
            &client,
            "echo",
            &format!("127.0.0.1:{port}"),
            Duration::from_secs(10),
        )
        .await?;
        // A server presenting another identity is not taken for the one expected.
        assert!(
            wait_serving(
                &client,
                "audit",
                &format!("127.0.0.1:{port}"),
                Duration::from_millis(300)
            )
            .await
            .is_err()
        );
        late.await?.shutdown().await?;
        Ok(())
    }
}
