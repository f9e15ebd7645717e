//! `GET /v1/events`: the caller org's live events as server-sent events (`file.scanned`,
//! `scan.completed`), relayed from the scan service's `Subscribe` stream (which filters by the
//! token's org and needs `files:read`). A user holds at most `events_per_user` streams at once
//! (429 beyond); a slot is given back when the client goes away. The stream lives no longer than
//! its credential: every `events_recheck_secs` the credential is exchanged again, and the stream
//! ends at the first refusal (logout, revoked key, removed member, disabled org) — or when auth
//! cannot confirm it, which fails closed; the client reconnects. It also ends when the gateway
//! shuts down.

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
    // Ends the stream once the credential no longer authenticates.
    let revoked = {
        let gw = gw.clone();
        let credential = authed.credential.clone();
        // The body is polled outside the request's task-local scope: carry its id along.
        let request_id = crate::error::request_id();
        async move {
            loop {
                tokio::time::sleep(gw.streams.recheck).await;
                let checked = crate::error::REQUEST_ID
                    .scope(request_id.clone(), exchange(&gw, credential.clone(), true))
                    .await;
                if let Err(error) = checked {
                    tracing::info!(
                        code = error.code.as_str(),
                        "event stream closed: its credential no longer authenticates"
                    );
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
