//! Who may connect: only TLS 1.3 clients with a certificate from the mesh CA that carries a mesh
//! identity and is in date.

use coffer_proto::testing::v1::EchoRequest;
use coffer_testkit::{CertSpec, DevCa};

use crate::fixture::{Fixture, ping_with, raw_client_config};

const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

#[tokio::test]
async fn a_valid_mesh_client_is_served() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let good = fx.ca.issue("gateway")?;
    ping_with(
        raw_client_config(&fx.ca.ca_pem(), Some(&good), TLS13)?,
        &fx.addr(),
    )
    .await?;
    let res = fx
        .client_as("metadata")?
        .ping(EchoRequest {
            message: "x".into(),
        })
        .await?;
    assert_eq!(res.get_ref().peer, "metadata");
    Ok(())
}

#[tokio::test]
async fn bad_clients_are_refused_at_the_handshake() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let ca = fx.ca.ca_pem();
    let before = fx.handler_calls();

    // No client certificate.
    assert!(
        ping_with(raw_client_config(&ca, None, TLS13)?, &fx.addr())
            .await
            .is_err()
    );

    // A certificate from a foreign CA, shaped exactly like a mesh one.
    let foreign = DevCa::new("foreign CA")?.issue("gateway")?;
    assert!(
        ping_with(raw_client_config(&ca, Some(&foreign), TLS13)?, &fx.addr())
            .await
            .is_err()
    );

    // An expired certificate from the right CA.
    let expired = fx.ca.issue_spec(&CertSpec::service("gateway").expired())?;
    assert!(
        ping_with(raw_client_config(&ca, Some(&expired), TLS13)?, &fx.addr())
            .await
            .is_err()
    );

    // Right CA, wrong SAN: another trust domain, no URI at all, or two identities.
    let mut wrong = CertSpec::service("gateway");
    wrong.uris = vec!["spiffe://evil.example/svc/gateway".into()];
    let mut none = CertSpec::service("gateway");
    none.uris.clear();
    let mut two = CertSpec::service("gateway");
    two.uris
        .push("spiffe://coffer.internal/svc/metadata".into());
    for spec in [wrong, none, two] {
        let cert = fx.ca.issue_spec(&spec)?;
        assert!(
            ping_with(raw_client_config(&ca, Some(&cert), TLS13)?, &fx.addr())
                .await
                .is_err(),
            "{:?} accepted",
            spec.uris
        );
    }

    // A TLS 1.2-only client with a valid certificate.
    let good = fx.ca.issue("gateway")?;
    let tls12 = raw_client_config(&ca, Some(&good), &[&rustls::version::TLS12])?;
    assert!(ping_with(tls12, &fx.addr()).await.is_err());

    assert_eq!(
        fx.handler_calls(),
        before,
        "a refused client reached a handler"
    );
    // The refusals were counted.
    let metrics = coffer_telemetry::metrics().encode();
    assert!(
        metrics.contains("coffer_tls_handshake_failures_total"),
        "{metrics}"
    );
    // The certificate in use says when it expires (the dev CA issues for a year at most; some
    // test's certificate, all from now).
    let not_after = coffer_telemetry::metrics()
        .sample("coffer_tls_certificate_not_after_seconds")
        .expect("the certificate's not_after") as i64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    assert!(
        not_after > now && not_after < now + 400 * 86_400,
        "{not_after}"
    );
    Ok(())
}

#[tokio::test]
async fn a_client_refuses_a_server_that_is_not_the_service_it_dialled() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let dir = fx
        .ca
        .write_service_dir(&fx.dir.path().join("gw"), "gateway")?;
    let store = coffer_mesh::CertStore::load(coffer_mesh::TlsFiles::in_dir(&dir))?;
    let client = coffer_mesh::MeshClient::new(store)?;
    // The server is "echo"; dialling it as "audit" must fail the server check.
    let mut wrong = coffer_proto::testing::v1::echo_client::EchoClient::new(
        client.channel("audit", &fx.addr())?,
    );
    assert!(
        wrong
            .ping(EchoRequest {
                message: "x".into()
            })
            .await
            .is_err()
    );
    let mut right = coffer_proto::testing::v1::echo_client::EchoClient::new(
        client.channel("echo", &fx.addr())?,
    );
    right
        .ping(EchoRequest {
            message: "x".into(),
        })
        .await?;
    Ok(())
}
