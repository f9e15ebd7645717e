//! `JsonBody<T>`: the only way handlers read a request body. Requires `application/json`, caps the
//! size, refuses invalid UTF-8, unknown fields and wrong types with a 400 that names the field, and
//! never echoes the submitted value (it may be a password).

use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
pub(crate) use limited::read_limited;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The size cap, set per router as an extension.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::invalid("the body must be application/json"));
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(64 * 1024, |l| l.0);
        let bytes = read_limited(req.into_body(), limit).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// A body's bytes as `T`, or the 400 that names the field (never the value).
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if inner.is_data() && path != "." {
            format!("{path}: invalid value")
        } else if let Some(field) = inner.to_string().strip_prefix("unknown field `") {
            format!(
                "unknown field `{}",
                field.split(',').next().unwrap_or(field)
            )
        } else if let Some(field) = inner.to_string().strip_prefix("missing field `") {
            format!(
                "missing field `{}",
                field.split(" at ").next().unwrap_or(field)
            )
        } else {
            "the body is not valid JSON".to_owned()
        };
        ApiError::invalid(message)
    })
}

/// A JSON body that may be absent: no body (or an empty one) is `None`; one that is there must
/// be valid as [`JsonBody`] requires.
pub struct OptionalJson<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0")
            || (req.headers().get(CONTENT_TYPE).is_none()
                && req
                    .headers()
                    .get(axum::http::header::CONTENT_LENGTH)
                    .is_none()
                && req
                    .headers()
                    .get(axum::http::header::TRANSFER_ENCODING)
                    .is_none());
        if empty {
            return Ok(OptionalJson(None));
        }
        JsonBody::from_request(req, state)
            .await
            .map(|JsonBody(t)| OptionalJson(Some(t)))
    }
}

mod limited {
    use axum::body::Body;
    use coffer_errors::ErrorCode;

    use crate::error::ApiError;

    /// How long a client may take to send a body: a slow sender cannot hold a handler forever.
    const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

    /// Reads at most `limit` bytes within the deadline; a larger body is 413 without reading the
    /// rest.
    pub async fn read_limited(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
        let read = tokio::time::timeout(BODY_DEADLINE, axum::body::to_bytes(body, limit))
            .await
            .map_err(|_| ApiError::invalid("the body was not received in time"))?;
        read.map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit"))
                || e.to_string().contains("length limit");
            if too_large {
                ApiError::new(
                    ErrorCode::TooLarge,
                    format!("the body is larger than {limit} bytes"),
                )
            } else {
                ApiError::invalid("the body could not be read")
            }
        })
    }
}
