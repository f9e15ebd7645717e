//! The API.md error shape: `{"error": {"code", "message", "request_id"}}` with the code's HTTP
//! status, for every failure, including the ones axum would answer in plain text. Internal errors
//! get a generic message; the cause goes to the log with the request id.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_errors::ErrorCode;

tokio::task_local! {
    /// The request id of the HTTP request being served, set by the request-id middleware.
    pub static REQUEST_ID: String;
}

/// Returns the current request's id.
pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(ErrorCode::Unauthenticated, "authentication required")
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "not found")
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..Self::new(ErrorCode::RateLimited, "too many requests")
        }
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let (code, field) = coffer_errors::from_status(&status);
        // A service that did not answer in time (or whose answer was cut) is one to try again:
        // a 503 with `Retry-After`, as API.md gives for a dependency that is down; no 504.
        let code = match code {
            ErrorCode::DeadlineExceeded => ErrorCode::Unavailable,
            other => other,
        };
        if code == ErrorCode::RateLimited {
            return ApiError::rate_limited(coffer_errors::retry_after(&status).unwrap_or(1).into());
        }
        let message = match code {
            ErrorCode::Internal => {
                tracing::error!(grpc_code = ?status.code(), "downstream call failed");
                "internal error".to_owned()
            }
            ErrorCode::Unavailable => {
                tracing::warn!(grpc_code = ?status.code(), "downstream unavailable");
                "a service is unavailable; try again".to_owned()
            }
            // Services phrase their messages for clients; the field is named in them.
            _ if !field.is_empty() && !status.message().contains(&field) => {
                format!("{field}: {}", status.message())
            }
            _ => status.message().to_owned(),
        };
        ApiError {
            // A service that is full says when to come back.
            retry_after_secs: (code == ErrorCode::Unavailable)
                .then(|| coffer_errors::retry_after(&status).map(u64::from))
                .flatten(),
            ..ApiError::new(code, message)
        }
    }
}

/// What a 503 tells the client to wait before trying again, when nothing more precise is known:
/// every 503 is an answer to retry, and says so.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({
            "error": {
                "code": self.code.as_str(),
                "message": self.message,
                "request_id": request_id(),
            }
        });
        let mut res = (status, Json(body)).into_response();
        let retry_after =
            self.retry_after_secs
                .or((status == StatusCode::SERVICE_UNAVAILABLE)
                    .then_some(UNAVAILABLE_RETRY_AFTER_SECS));
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert("retry-after", v);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_is_late_down_or_cut_off_is_a_503_with_retry_after() {
        for status in [
            tonic::Status::deadline_exceeded("late"),
            tonic::Status::cancelled("stream reset"),
            tonic::Status::unavailable("connection refused"),
            // tonic's own word for a connection that broke under the call
            tonic::Status::unknown("Service was not ready: transport error"),
        ] {
            let res = ApiError::from(status.clone()).into_response();
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{status:?}");
            assert!(res.headers().contains_key("retry-after"), "{status:?}");
        }
        let bug = ApiError::from(tonic::Status::internal("boom")).into_response();
        assert_eq!(bug.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
