//! Certificate rotation: new files are picked up without a restart and no call fails meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_proto::testing::v1::EchoRequest;

use crate::fixture::{Fixture, raw_client_config};

/// Returns the leaf certificate the server presents on a new connection.
async fn presented_cert(fx: &Fixture) -> anyhow::Result<Vec<u8>> {
    let cert = fx.ca.issue("gateway")?;
    let config = raw_client_config(&fx.ca.ca_pem(), Some(&cert), &[&rustls::version::TLS13])?;
    let tcp = tokio::net::TcpStream::connect(fx.addr()).await?;
    let name = rustls_pki_types::ServerName::try_from("echo.coffer.internal")?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0].to_vec())
}

#[tokio::test]
async fn replaced_certificates_are_served_without_failed_calls() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let before = presented_cert(&fx).await?;

    // A caller in a loop, on fresh connections and on one long-lived connection.
    let dir = fx
        .ca
        .write_service_dir(&fx.dir.path().join("caller"), "gateway")?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looper = {
        let fx_dir = dir.clone();
        let addr = fx.addr();
        let stop = stop.clone();
        tokio::spawn(async move {
            let store = coffer_mesh::CertStore::load(coffer_mesh::TlsFiles::in_dir(&fx_dir))?;
            let client = coffer_mesh::MeshClient::new(store)?;
            let mut long = coffer_proto::testing::v1::echo_client::EchoClient::new(
                client.channel("echo", &addr)?,
            );
            let mut calls = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                long.ping(EchoRequest {
                    message: "l".into(),
                })
                .await?;
                let mut fresh = coffer_proto::testing::v1::echo_client::EchoClient::new(
                    client.channel("echo", &addr)?,
                );
                fresh
                    .ping(EchoRequest {
                        message: "f".into(),
                    })
                    .await?;
                calls += 2;
            }
            anyhow::Ok(calls)
        })
    };

    tokio::time::sleep(Duration::from_millis(300)).await;
    // Rotate: write a new certificate and key for the same identity, as a secret update would.
    let new = fx.ca.issue("echo")?;
    fx.ca.write_dir(&fx.server_dir, &new)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let seen = presented_cert(&fx).await?;
        if seen != before {
            break seen;
        }
        assert!(Instant::now() < deadline, "new certificate not picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    use rustls_pki_types::pem::PemObject as _;
    let expected = rustls_pki_types::CertificateDer::from_pem_slice(new.cert_pem.as_bytes())?;
    assert_eq!(after, expected.to_vec());
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let calls = looper.await??;
    assert!(calls > 10, "the loop made only {calls} calls");
    Ok(())
}

#[tokio::test]
async fn a_broken_replacement_keeps_the_old_certificate() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let before = presented_cert(&fx).await?;
    std::fs::write(fx.server_dir.join("tls.crt"), b"not a certificate")?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(presented_cert(&fx).await?, before);
    // A key that does not match the certificate is refused too.
    let other = fx.ca.issue("echo")?;
    let good = fx.ca.issue("echo")?;
    std::fs::write(fx.server_dir.join("tls.crt"), &good.cert_pem)?;
    std::fs::write(fx.server_dir.join("tls.key"), &other.key_pem)?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(presented_cert(&fx).await?, before);
    Ok(())
}
