//! `GET /v1/events`: the caller org's live events as server-sent events (`file.scanned`,
//! `scan.completed`), relayed from the scan service's `Subscribe` stream (which filters by the
//! token's org and needs `files:read`). A user holds at most `events_per_user` streams at once
//! (429 beyond); a slot is given back when the client goes away. The stream lives no longer than
//! its credential: the credential is exchanged again before each event is sent, so no event
//! reaches a stream whose credential went (logout, revoked key, removed member, disabled org),
//! and every `events_recheck_secs` while no event comes; the stream ends at the first refusal —
//! or when auth cannot confirm it, which fails closed; the client reconnects. It also ends when
//! the gateway shuts down.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use coffer_errors::ErrorCode;
use coffer_proto::v1::{self as pb};
use futures_util::StreamExt as _;

use crate::authn::{Authed, exchange};
use crate::error::ApiError;
use crate::state::Shared;

#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    responses((status = 200, description = "server-sent events", body = String, content_type = "text/event-stream"))
)]
pub async fn stream(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let slot = gw.streams.take(&authed.user_id).ok_or_else(|| ApiError {
        retry_after_secs: Some(5),
        ..ApiError::new(
            ErrorCode::RateLimited,
            "too many open event streams for this user",
        )
    })?;
    let upstream = authed
        .call(gw.scan.clone().subscribe(pb::SubscribeRequest {}))
        .await?
        .into_inner();
    // Whether the credential still authenticates, asked of auth as for any request (no cache).
    let still_valid = {
        let gw = gw.clone();
        let credential = authed.credential.clone();
        // The body is polled outside the request's task-local scope: carry its id along.
        let request_id = crate::error::request_id();
        move || {
            let (gw, credential, request_id) = (gw.clone(), credential.clone(), request_id.clone());
            async move {
                let checked = crate::error::REQUEST_ID
                    .scope(request_id, exchange(&gw, credential, true))
                    .await;
                if let Err(error) = &checked {
                    tracing::info!(
                        code = error.code.as_str(),
                        "event stream closed: its credential no longer authenticates"
                    );
                }
                checked.is_ok()
            }
        }
    };
    // Ends the stream once the credential no longer authenticates, while no event comes.
    let revoked = {
        let still_valid = still_valid.clone();
        let every = gw.streams.recheck;
        async move {
            loop {
                tokio::time::sleep(every).await;
                if !still_valid().await {
                    return;
                }
            }
        }
    };
    let closed = gw.streams.closed();
    let ended = async move {
        tokio::select! {
            () = revoked => {}
            () = closed => {}
        }
    };
    let events = upstream
        .take_until(Box::pin(ended))
        .take_while(|r| std::future::ready(r.is_ok()))
        .filter_map(|r| std::future::ready(r.ok()))
        // Each event only after its credential was confirmed; the first refusal ends the stream.
        .then(move |e| {
            let checked = still_valid();
            async move { checked.await.then_some(e) }
        })
        .take_while(|e| std::future::ready(e.is_some()))
        .filter_map(std::future::ready)
        .map(move |e| {
            // The slot lives as long as the stream.
            let _held = &slot;
            Ok::<_, Infallible>(Event::default().event(e.r#type).data(e.json))
        });
    let mut res = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(gw.streams.keep_alive))
        .into_response();
    // Verdicts and hashes are kept by no cache (axum's `no-cache` would allow storing them).
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}
