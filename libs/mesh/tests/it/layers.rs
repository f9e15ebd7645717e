//! The layer stack: tokens, allow-lists, request ids, trace context, deadlines, health, metrics,
//! policy coverage and graceful shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_mesh::echo::EchoService;
use coffer_mesh::{CallContext, CertStore, MeshServer, Policy, TlsFiles, Token};
use coffer_proto::testing::v1::EchoRequest;
use coffer_token::{Audience, Service};
use tonic::Code;
use tracing::Instrument as _;

use crate::fixture::{Fixture, with_token};

#[tokio::test]
async fn tokens_are_required_and_verified() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let mut gw = fx.client_as("gateway")?;
    let now = coffer_token::unix_now();

    let ok = gw.echo(with_token(&fx.valid_token(), "hello")).await?;
    let caller = ok.get_ref().caller.clone().unwrap();
    assert_eq!(ok.get_ref().message, "hello");
    assert_eq!(caller.org_id, Fixture::subject().org_id.to_string());
    assert_eq!(caller.user_id, Fixture::subject().user_id.to_string());
    assert_eq!(caller.request_id, "req-fixture");
    assert_eq!(ok.get_ref().peer, "gateway");

    let calls = fx.handler_calls();
    let bad = [
        None,
        Some("garbage".to_owned()),
        Some(fx.token(&[Audience::Metadata], now - 120, 30)), // expired
        Some(fx.token(&[Audience::Metadata], now + 120, 30)), // from the future
        Some(fx.token(&[Audience::Audit, Audience::Scan], now, 30)), // not for this audience
        Some({
            let other = coffer_token::MasterKeyRing::generate("k1");
            coffer_token::Minter::new(&other).mint(
                &Fixture::subject(),
                &[Audience::Metadata],
                now,
                30,
            )?
        }), // forged with another master key
    ];
    for token in bad {
        let req = match &token {
            Some(t) => with_token(t, "x"),
            None => tonic::Request::new(EchoRequest {
                message: "x".into(),
            }),
        };
        let err = gw.echo(req).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{token:?}");
        assert!(
            !err.message().contains("ct1."),
            "the token leaked into the error"
        );
    }
    assert_eq!(
        fx.handler_calls(),
        calls,
        "a refused call reached the handler"
    );
    let metrics = coffer_telemetry::metrics().encode();
    assert!(
        metrics.contains("coffer_token_rejections_total{reason=\"expired\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("coffer_token_rejections_total{reason=\"missing\"}"));
    // Every RPC of the policy has its server-error series from the start, at zero until the
    // first failure: the error ratio reads 0, not nothing.
    for code in coffer_telemetry::SERVER_ERROR_CODES {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("coffer_grpc_server_requests_total{")
                    && l.contains(&format!("code=\"{code}\""))
                    && l.contains("Echo/")),
            "no {code} series for the echo service:\n{metrics}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn callers_off_the_list_are_denied_before_the_handler() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let calls = fx.handler_calls();
    // metadata may Ping but not Echo, even with a valid token.
    let mut md = fx.client_as("metadata")?;
    let err = md
        .echo(with_token(&fx.valid_token(), "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // scan is on no list at all.
    let mut scan = fx.client_as("scan")?;
    let err = scan
        .ping(EchoRequest {
            message: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(fx.handler_calls(), calls);
    // Allowed calls still work, and health is open to any member.
    md.ping(EchoRequest {
        message: "x".into(),
    })
    .await?;
    let metrics = coffer_telemetry::metrics().encode();
    assert!(
        metrics.contains(
            "coffer_caller_denials_total{rpc=\"/coffer.testing.v1.Echo/Echo\",peer=\"metadata\"}"
        ),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn health_answers_over_mtls() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let dir = fx
        .ca
        .write_service_dir(&fx.dir.path().join("scan"), "scan")?;
    let client = coffer_mesh::MeshClient::new(CertStore::load(TlsFiles::in_dir(&dir))?)?;
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(client.channel("echo", &fx.addr())?);
    for service in ["", "coffer.testing.v1.Echo"] {
        let res = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await?;
        assert_eq!(
            res.get_ref().status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
    Ok(())
}

#[tokio::test]
async fn request_id_token_and_trace_context_travel_with_outgoing_calls() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let mut gw = fx.client_as("gateway")?;
    let token: Arc<str> = fx.valid_token().into();
    let span = tracing::info_span!("client");
    let client_trace = span.in_scope(coffer_telemetry::current_trace_id).unwrap();
    let ctx = CallContext {
        token: Some(token),
        request_id: "edge-req-1".into(),
        deadline: None,
    };
    let res = ctx
        .scope(
            gw.echo(EchoRequest {
                message: "ctx".into(),
            })
            .instrument(span),
        )
        .await?;
    assert_eq!(
        res.metadata().get("x-request-id").unwrap().to_str()?,
        "edge-req-1"
    );
    assert_eq!(
        res.get_ref().caller.as_ref().unwrap().org_id,
        Fixture::subject().org_id.to_string()
    );
    assert_eq!(
        res.get_ref().trace_id,
        client_trace,
        "server did not join the caller's trace"
    );

    // Without a usable request id the server makes one.
    let res = gw
        .ping(EchoRequest {
            message: "x".into(),
        })
        .await?;
    let id = res
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()?
        .to_owned();
    assert_eq!(id.len(), 32);
    Ok(())
}

#[tokio::test]
async fn deadlines_are_enforced_and_inherited() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let mut gw = fx.client_as("gateway")?;
    let mut req = with_token(&fx.valid_token(), "sleep:2000");
    req.set_timeout(Duration::from_millis(200));
    let start = Instant::now();
    let err = gw.echo(req).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_millis(1500));

    // A call context with an exhausted deadline refuses to call out at all.
    let ctx = CallContext {
        token: Some(fx.valid_token().into()),
        request_id: "r".into(),
        deadline: Some(Instant::now()),
    };
    let calls = fx.handler_calls();
    let err = ctx
        .scope(gw.echo(EchoRequest {
            message: "x".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(fx.handler_calls(), calls);
    Ok(())
}

#[tokio::test]
async fn a_service_with_an_rpc_lacking_a_rule_does_not_start() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let store = CertStore::load(TlsFiles::in_dir(&fx.server_dir))?;
    let partial = Policy::new().rpc(
        "coffer.testing.v1.Echo",
        "Echo",
        &[Service::Gateway],
        Token::Required,
    )?;
    let err = MeshServer::new(store, partial)
        .add_service(EchoService::default().server())
        .bind("127.0.0.1:0".parse()?)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("/coffer.testing.v1.Echo/Ping"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_drains_in_flight_calls_and_refuses_new_ones() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let addr = fx.addr();
    let mut gw = fx.client_as("gateway")?;
    let token = fx.valid_token();
    // Warm the connection so the slow call is in flight before shutdown starts.
    gw.ping(EchoRequest {
        message: "warm".into(),
    })
    .await?;
    let slow = tokio::spawn({
        let mut gw = gw.clone();
        let token = token.clone();
        async move { gw.echo(with_token(&token, "sleep:1000")).await }
    });
    // Wait until the handler runs, so the call is truly in flight when shutdown starts.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fx.handler_calls() < 2 {
        assert!(
            Instant::now() < deadline,
            "the slow call never reached the handler"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let Fixture { server, .. } = fx;
    server.shutdown().await?;
    let res = slow.await??;
    assert_eq!(res.get_ref().message, "sleep:1000");
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "still accepting"
    );
    Ok(())
}

#[tokio::test]
async fn rpc_metrics_are_recorded_by_code_without_tenant_labels() -> anyhow::Result<()> {
    let fx = Fixture::start().await?;
    let mut gw = fx.client_as("gateway")?;
    gw.echo(with_token(&fx.valid_token(), "m")).await?;
    let _ = gw
        .echo(EchoRequest {
            message: "m".into(),
        })
        .await;
    let metrics = coffer_telemetry::metrics().encode();
    assert!(
        metrics.contains(
            "coffer_grpc_server_requests_total{rpc=\"/coffer.testing.v1.Echo/Echo\",code=\"Ok\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "coffer_grpc_server_requests_total{rpc=\"/coffer.testing.v1.Echo/Echo\",code=\"Unauthenticated\"}"
    ));
    assert!(metrics.contains("coffer_grpc_server_duration_seconds_bucket{le="));
    let org = Fixture::subject().org_id.to_string();
    let user = Fixture::subject().user_id.to_string();
    assert!(
        !metrics.contains(&org) && !metrics.contains(&user),
        "tenant data in metrics"
    );
    Ok(())
}
