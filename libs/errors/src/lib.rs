//! The error codes every Coffer service and the gateway share.
//!
//! A service's domain error maps to an [`ErrorCode`] once, at its handler boundary, and becomes a
//! `tonic::Status` through [`status`]: the gRPC code comes from [`ErrorCode::grpc_code`] and the
//! exact code (and the field at fault) travels as a `coffer.v1.ErrorDetail` in the status details.
//! The gateway reads it back with [`from_status`] and answers with [`ErrorCode::http_status`] and
//! the API.md error shape. Messages given here are for humans and must never hold a file name,
//! a secret, SQL or another tenant's data; internal errors get a generic message.

use coffer_proto::v1::ErrorDetail;
use prost::Message as _;

/// What went wrong, in API.md's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the request is malformed; the field is named.
    InvalidArgument,
    /// 401: missing or bad credentials.
    Unauthenticated,
    /// 401: the password was right and a TOTP code is needed.
    TotpRequired,
    /// 403: authenticated but not allowed.
    PermissionDenied,
    /// 403: the CSRF header is missing or wrong.
    CsrfFailed,
    /// 403: account and org management needs a browser session; an API key never does it.
    SessionRequired,
    /// 403: the file is quarantined.
    Quarantined,
    /// 404: absent, or another org's (never told apart).
    NotFound,
    /// 409: already exists.
    AlreadyExists,
    /// 409: the resource is in the wrong state.
    Conflict,
    /// 409: the file is still being uploaded or scanned.
    NotReady,
    /// 409: the org's quota would be exceeded.
    QuotaExceeded,
    /// 413: the body or the declared size is too large.
    TooLarge,
    /// 422: well-formed but unprocessable.
    Unprocessable,
    /// 429: rate-limited or throttled.
    RateLimited,
    /// 503: a dependency is down.
    Unavailable,
    /// 504: the deadline passed.
    DeadlineExceeded,
    /// 500: a bug or an unexpected failure; details are only in the logs.
    Internal,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::InvalidArgument,
        ErrorCode::Unauthenticated,
        ErrorCode::TotpRequired,
        ErrorCode::PermissionDenied,
        ErrorCode::CsrfFailed,
        ErrorCode::SessionRequired,
        ErrorCode::Quarantined,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::Conflict,
        ErrorCode::NotReady,
        ErrorCode::QuotaExceeded,
        ErrorCode::TooLarge,
        ErrorCode::Unprocessable,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Internal,
    ];

    /// Returns the snake_case name used in JSON error bodies and in `ErrorDetail.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::TotpRequired => "totp_required",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::CsrfFailed => "csrf_failed",
            ErrorCode::SessionRequired => "session_required",
            ErrorCode::Quarantined => "quarantined",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unprocessable => "unprocessable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::DeadlineExceeded => "deadline_exceeded",
            ErrorCode::Internal => "internal",
        }
    }

    /// Parses a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Returns the gRPC status code.
    pub fn grpc_code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            ErrorCode::InvalidArgument => Code::InvalidArgument,
            ErrorCode::Unauthenticated | ErrorCode::TotpRequired => Code::Unauthenticated,
            ErrorCode::PermissionDenied
            | ErrorCode::CsrfFailed
            | ErrorCode::SessionRequired
            | ErrorCode::Quarantined => Code::PermissionDenied,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::AlreadyExists => Code::AlreadyExists,
            ErrorCode::Conflict | ErrorCode::NotReady => Code::FailedPrecondition,
            ErrorCode::QuotaExceeded | ErrorCode::RateLimited => Code::ResourceExhausted,
            ErrorCode::TooLarge => Code::OutOfRange,
            ErrorCode::Unprocessable => Code::InvalidArgument,
            ErrorCode::Unavailable => Code::Unavailable,
            ErrorCode::DeadlineExceeded => Code::DeadlineExceeded,
            ErrorCode::Internal => Code::Internal,
        }
    }

    /// Returns the HTTP status the gateway answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument => 400,
            ErrorCode::Unauthenticated | ErrorCode::TotpRequired => 401,
            ErrorCode::PermissionDenied
            | ErrorCode::CsrfFailed
            | ErrorCode::SessionRequired
            | ErrorCode::Quarantined => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists
            | ErrorCode::Conflict
            | ErrorCode::NotReady
            | ErrorCode::QuotaExceeded => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::Unprocessable => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::DeadlineExceeded => 504,
            ErrorCode::Internal => 500,
        }
    }

    /// The code a bare gRPC status (without an `ErrorDetail`) stands for, such as the refusals of
    /// the mesh layers or a transport failure.
    pub fn from_grpc(code: tonic::Code) -> Self {
        use tonic::Code;
        match code {
            Code::InvalidArgument => ErrorCode::InvalidArgument,
            Code::Unauthenticated => ErrorCode::Unauthenticated,
            Code::PermissionDenied => ErrorCode::PermissionDenied,
            Code::NotFound => ErrorCode::NotFound,
            Code::AlreadyExists => ErrorCode::AlreadyExists,
            Code::FailedPrecondition | Code::Aborted => ErrorCode::Conflict,
            Code::ResourceExhausted => ErrorCode::RateLimited,
            Code::OutOfRange => ErrorCode::TooLarge,
            // A bare `Unknown` is the calling side's transport failing (a peer killed with the
            // call in flight, a connection that broke: tonic says "Service was not ready" or
            // passes on the h2 or I/O error); no service of the mesh answers it.
            Code::Unavailable | Code::Unknown => ErrorCode::Unavailable,
            Code::DeadlineExceeded | Code::Cancelled => ErrorCode::DeadlineExceeded,
            _ => ErrorCode::Internal,
        }
    }
}

/// Builds the status for `code`, with the detail the gateway reads back. `field` names the
/// request field at fault (for invalid input), empty otherwise.
pub fn status(code: ErrorCode, message: impl Into<String>, field: &str) -> tonic::Status {
    with_detail(
        code,
        message,
        ErrorDetail {
            code: code.as_str().to_owned(),
            field: field.to_owned(),
            retry_after_seconds: 0,
        },
    )
}

/// Builds a `rate_limited` status that tells the client when to retry.
pub fn rate_limited(message: impl Into<String>, retry_after_seconds: u32) -> tonic::Status {
    with_detail(
        ErrorCode::RateLimited,
        message,
        ErrorDetail {
            code: ErrorCode::RateLimited.as_str().to_owned(),
            field: String::new(),
            retry_after_seconds: retry_after_seconds.max(1),
        },
    )
}

/// Builds an `unavailable` status that tells the caller when to retry: a server that is full
/// refuses work this way.
pub fn unavailable_retry(message: impl Into<String>, retry_after_seconds: u32) -> tonic::Status {
    with_detail(
        ErrorCode::Unavailable,
        message,
        ErrorDetail {
            code: ErrorCode::Unavailable.as_str().to_owned(),
            field: String::new(),
            retry_after_seconds: retry_after_seconds.max(1),
        },
    )
}

fn with_detail(code: ErrorCode, message: impl Into<String>, detail: ErrorDetail) -> tonic::Status {
    tonic::Status::with_details(code.grpc_code(), message, detail.encode_to_vec().into())
}

/// A service's domain error, as its gRPC boundary needs it. Every service implements this once
/// for its error enum and turns it into a `tonic::Status` with [`into_status`] (through
/// [`impl_into_status!`](crate::impl_into_status) so that `?` works in handlers).
pub trait ServiceError: std::error::Error {
    /// The shared code this error stands for.
    fn code(&self) -> ErrorCode;

    /// The request field at fault, for invalid input; empty otherwise.
    fn field(&self) -> &'static str {
        ""
    }

    /// For `rate_limited` errors, and `unavailable` ones that know: when the caller may try
    /// again, in seconds. Such an error's text is shown to the caller.
    fn retry_after_secs(&self) -> Option<u64> {
        None
    }

    /// Whether this error's own text may be shown to the caller although its code is
    /// `internal` or `unavailable` (such texts name the failed dependency, never a cause).
    /// Other codes always show their text, which must name no file, secret or SQL.
    fn public_when_failing(&self) -> bool {
        false
    }
}

/// The text callers get for an `internal` error: the cause is only in the logs, found by the
/// request id every response carries.
pub const INTERNAL_MESSAGE: &str = "internal error";
/// The text callers get for an `unavailable` error that does not say which dependency failed.
pub const UNAVAILABLE_MESSAGE: &str = "a dependency is unavailable; try again";

/// The one way a service error becomes a status: internal and unavailable errors are logged
/// here, once (internal as an error, unavailable as a warning), and get a generic text.
pub fn into_status<E: ServiceError + std::fmt::Debug>(e: E) -> tonic::Status {
    let code = e.code();
    if let Some(secs) = e.retry_after_secs() {
        let secs = u32::try_from(secs).unwrap_or(u32::MAX);
        if code == ErrorCode::Unavailable {
            return unavailable_retry(e.to_string(), secs);
        }
        return rate_limited(e.to_string(), secs);
    }
    let message = match code {
        ErrorCode::Internal | ErrorCode::Unavailable => {
            if code == ErrorCode::Internal {
                tracing::error!(error = ?e, code = code.as_str(), "request failed");
            } else {
                tracing::warn!(error = ?e, code = code.as_str(), "request failed on a dependency");
            }
            match (e.public_when_failing(), code) {
                (true, _) => e.to_string(),
                (false, ErrorCode::Internal) => INTERNAL_MESSAGE.to_owned(),
                (false, _) => UNAVAILABLE_MESSAGE.to_owned(),
            }
        }
        _ => e.to_string(),
    };
    status(code, message, e.field())
}

/// The code to answer with when a peer refused a call this service made: a peer that is down
/// or late makes us unavailable; any other refusal of our own request is our bug.
pub fn downstream_code(status: &tonic::Status) -> ErrorCode {
    match from_status(status).0 {
        ErrorCode::Unavailable | ErrorCode::DeadlineExceeded => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    }
}

/// `impl From<$error> for tonic::Status` through [`into_status`], so that handlers use `?`.
#[macro_export]
macro_rules! impl_into_status {
    ($error:ty) => {
        impl ::core::convert::From<$error> for ::tonic::Status {
            fn from(e: $error) -> Self {
                $crate::into_status(e)
            }
        }
    };
}

/// Returns the retry delay a `rate_limited` or `unavailable` status carries, in seconds.
pub fn retry_after(status: &tonic::Status) -> Option<u32> {
    ErrorDetail::decode(status.details())
        .ok()
        .map(|d| d.retry_after_seconds)
        .filter(|s| *s > 0)
}

/// Reads a status back: the exact code and field from its detail when present, else the code
/// its gRPC code stands for.
pub fn from_status(status: &tonic::Status) -> (ErrorCode, String) {
    ErrorDetail::decode(status.details())
        .ok()
        .and_then(|d| ErrorCode::from_name(&d.code).map(|c| (c, d.field)))
        .unwrap_or_else(|| (ErrorCode::from_grpc(status.code()), String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transport_failure_is_unavailable_and_a_bare_internal_stays_internal() {
        // What tonic's client makes of a connection that broke under a call.
        let broken = tonic::Status::unknown("Service was not ready: transport error");
        assert_eq!(from_status(&broken).0, ErrorCode::Unavailable);
        assert_eq!(downstream_code(&broken), ErrorCode::Unavailable);
        let bug = tonic::Status::internal("failed to decode Protobuf message");
        assert_eq!(downstream_code(&bug), ErrorCode::Internal);
    }

    #[test]
    fn every_code_round_trips_through_a_status() {
        for code in ErrorCode::ALL {
            let s = status(
                code,
                "message",
                if code == ErrorCode::InvalidArgument {
                    "name"
                } else {
                    ""
                },
            );
            assert_eq!(s.code(), code.grpc_code());
            let (back, field) = from_status(&s);
            assert_eq!(back, code, "{code:?}");
            assert_eq!(field.is_empty(), code != ErrorCode::InvalidArgument);
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
        }
    }

    #[test]
    fn rate_limits_carry_their_delay() {
        let s = rate_limited("slow down", 7);
        assert_eq!(from_status(&s).0, ErrorCode::RateLimited);
        assert_eq!(retry_after(&s), Some(7));
        assert_eq!(retry_after(&status(ErrorCode::NotFound, "x", "")), None);
    }

    #[test]
    fn api_md_statuses() {
        assert_eq!(ErrorCode::NotFound.http_status(), 404);
        assert_eq!(ErrorCode::NotReady.http_status(), 409);
        assert_eq!(ErrorCode::NotReady.as_str(), "not_ready");
        assert_eq!(ErrorCode::Quarantined.http_status(), 403);
        assert_eq!(ErrorCode::Quarantined.as_str(), "quarantined");
        assert_eq!(ErrorCode::TotpRequired.as_str(), "totp_required");
        assert_eq!(ErrorCode::TotpRequired.http_status(), 401);
        assert_eq!(ErrorCode::QuotaExceeded.http_status(), 409);
        assert_eq!(ErrorCode::RateLimited.http_status(), 429);
        assert_eq!(ErrorCode::TooLarge.http_status(), 413);
        assert_eq!(ErrorCode::Unavailable.http_status(), 503);
    }

    #[derive(Debug, thiserror::Error)]
    enum Sample {
        #[error("{1}")]
        Invalid(&'static str, String),
        #[error("slow down")]
        Later,
        #[error("the audit log is unavailable")]
        Audit,
        #[error("database error at row 7")]
        Db,
        #[error("the service is busy; try again")]
        Busy,
    }

    impl ServiceError for Sample {
        fn code(&self) -> ErrorCode {
            match self {
                Sample::Invalid(..) => ErrorCode::InvalidArgument,
                Sample::Later => ErrorCode::RateLimited,
                Sample::Audit | Sample::Busy => ErrorCode::Unavailable,
                Sample::Db => ErrorCode::Internal,
            }
        }
        fn field(&self) -> &'static str {
            match self {
                Sample::Invalid(field, _) => field,
                _ => "",
            }
        }
        fn retry_after_secs(&self) -> Option<u64> {
            match self {
                Sample::Later => Some(9),
                Sample::Busy => Some(1),
                _ => None,
            }
        }
        fn public_when_failing(&self) -> bool {
            matches!(self, Sample::Audit)
        }
    }

    #[test]
    fn service_errors_show_what_they_may_and_hide_causes() {
        let s = into_status(Sample::Invalid("name", "too long".into()));
        assert_eq!(from_status(&s), (ErrorCode::InvalidArgument, "name".into()));
        assert_eq!(s.message(), "too long");
        let s = into_status(Sample::Later);
        assert_eq!(retry_after(&s), Some(9));
        let s = into_status(Sample::Audit);
        assert_eq!(
            (from_status(&s).0, s.message()),
            (ErrorCode::Unavailable, "the audit log is unavailable")
        );
        let s = into_status(Sample::Db);
        assert_eq!(
            (from_status(&s).0, s.message()),
            (ErrorCode::Internal, INTERNAL_MESSAGE)
        );
        // An overloaded service stays unavailable (503), and says when to come back.
        let s = into_status(Sample::Busy);
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(from_status(&s).0, ErrorCode::Unavailable);
        assert_eq!(retry_after(&s), Some(1));
        assert_eq!(s.message(), "the service is busy; try again");
        assert_eq!(
            downstream_code(&tonic::Status::unavailable("down")),
            ErrorCode::Unavailable
        );
        assert_eq!(
            downstream_code(&status(ErrorCode::NotFound, "x", "")),
            ErrorCode::Internal
        );
    }

    #[test]
    fn bare_statuses_map_by_grpc_code() {
        let (code, _) = from_status(&tonic::Status::unauthenticated("invalid user token"));
        assert_eq!(code, ErrorCode::Unauthenticated);
        let (code, _) = from_status(&tonic::Status::unavailable("connection refused"));
        assert_eq!(code, ErrorCode::Unavailable);
        // A bare Unknown is the transport's (no service answers it): retryable.
        let (code, _) = from_status(&tonic::Status::unknown("?"));
        assert_eq!(code, ErrorCode::Unavailable);
        let (code, _) = from_status(&tonic::Status::internal("?"));
        assert_eq!(code, ErrorCode::Internal);
        // A detail that is not ours is ignored, not trusted.
        let odd = tonic::Status::with_details(tonic::Code::NotFound, "x", vec![1, 2, 3].into());
        assert_eq!(from_status(&odd).0, ErrorCode::NotFound);
    }
}
