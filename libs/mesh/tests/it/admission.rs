//! Admission control on a real server: calls beyond the slots and the queue are refused at once
//! with UNAVAILABLE and a time to retry; health is answered however full the server is; the
//! connection bound holds new connections back until one closes.

use std::time::{Duration, Instant};

use coffer_config::LoadLimits;
use coffer_mesh::{CertStore, TlsFiles};
use tonic::Code;

use crate::fixture::{Fixture, with_token};

#[tokio::test]
async fn calls_beyond_the_slots_and_the_queue_are_refused_with_a_time_to_retry()
-> anyhow::Result<()> {
    let fx = Fixture::start_with(LoadLimits {
        max_in_flight: 2,
        max_queued: 1,
        queue_deadline_ms: 200,
        ..LoadLimits::default()
    })
    .await?;
    let gw = fx.client_as("gateway")?;
    let token = fx.valid_token();
    // Two slow calls take both slots.
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let mut gw = gw.clone();
            let req = with_token(&token, "sleep:1500");
            tokio::spawn(async move { gw.echo(req).await })
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(5);
    while fx.handler_calls() < 2 {
        assert!(Instant::now() < until, "the slow calls never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Four more: one waits in the queue (and is refused at its deadline), three are refused at
    // once.
    let started = Instant::now();
    let more: Vec<_> = (0..4)
        .map(|_| {
            let mut gw = gw.clone();
            let req = with_token(&token, "fast");
            tokio::spawn(async move {
                let got = gw.echo(req).await;
                (got, started.elapsed())
            })
        })
        .collect();
    let mut at_once = 0;
    for call in more {
        let (got, took) = call.await?;
        let status = got.expect_err("no slot was free");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(coffer_errors::retry_after(&status), Some(1), "{status:?}");
        assert!(
            took < Duration::from_millis(1000),
            "refused before a slot freed: {took:?}"
        );
        if took < Duration::from_millis(150) {
            at_once += 1;
        }
    }
    assert_eq!(
        at_once, 3,
        "all but the queued one were refused without waiting"
    );
    assert_eq!(fx.handler_calls(), 2, "no refused call reached the handler");

    // Health is answered while the server is full.
    let dir = fx
        .ca
        .write_service_dir(&fx.dir.path().join("probe"), "scan")?;
    let client = coffer_mesh::MeshClient::new(CertStore::load(TlsFiles::in_dir(&dir))?)?;
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(client.channel("echo", &fx.addr())?);
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await?;

    for call in slow {
        call.await??;
    }
    // Room again: served.
    let mut gw = gw.clone();
    gw.echo(with_token(&token, "after")).await?;
    let metrics = coffer_telemetry::metrics().encode();
    assert!(
        metrics.contains("coffer_load_shed_total{kind=\"requests\",reason=\"queue_full\"}"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn beyond_the_connection_bound_a_new_connection_waits_until_one_closes() -> anyhow::Result<()>
{
    let fx = Fixture::start_with(LoadLimits {
        max_connections: 1,
        ..LoadLimits::default()
    })
    .await?;
    let token = fx.valid_token();
    let mut first = fx.client_as("gateway")?;
    first.echo(with_token(&token, "one")).await?;
    // A second client opens its own connection: not served while the first stays open.
    let mut second = fx.client_as("gateway")?;
    let mut req = with_token(&token, "two");
    req.set_timeout(Duration::from_millis(500));
    let waited = tokio::time::timeout(Duration::from_secs(2), second.echo(req)).await;
    assert!(
        !matches!(waited, Ok(Ok(_))),
        "served beyond the connection bound"
    );
    assert_eq!(fx.handler_calls(), 1);
    // Once the first connection closes, a new one is served.
    drop(second);
    drop(first);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let mut second = fx.client_as("gateway")?;
        let mut req = with_token(&token, "two");
        req.set_timeout(Duration::from_millis(500));
        if second.echo(req).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < until,
            "never served after the first closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
