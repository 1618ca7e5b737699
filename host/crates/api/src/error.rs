//! The one error shape of the API: `{message, code, field?, details?}` with
//! a fitting status, and the mapping from store and runner errors to it.

use assay_runner::RunError;
use assay_store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// `Retry-After` of a trigger refused because the tenant's queue is full:
/// a few seconds, the order of a short run's length.
const QUEUED_RUNS_RETRY_AFTER: u32 = 5;

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// An error answered to the client as JSON.
///
/// `message` is for people (Mastra's playground shows it as is), `code` for
/// programs; `field` names the offending request field when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code, e.g. `not_found`, `invalid_body`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// The request field at fault (`items[3].input`, `targetId`, ...).
    pub field: Option<String>,
    /// Extra structured data (e.g. the failing items of a schema change, or
    /// `{limit, value}` of a limit that was reached).
    pub details: Option<Value>,
    /// Seconds a client should wait before retrying (`Retry-After`).
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Value>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            details: None,
            retry_after: None,
        }
    }

    /// 422 (429 with `Retry-After` for `queued-runs`, which frees up as runs
    /// start) `limit_exceeded`, with `details: {limit, value}`.
    pub fn over_limit(limit: &str, value: u64, message: String) -> Self {
        let mut e = if limit == "queued-runs" {
            let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "limit_exceeded", message);
            e.retry_after = Some(QUEUED_RUNS_RETRY_AFTER);
            e
        } else {
            Self::new(StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded", message)
        };
        e.details = Some(serde_json::json!({ "limit": limit, "value": value }));
        e
    }

    /// The same error naming `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 400 `invalid_body` naming `field`.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_body", message).with_field(field)
    }

    /// 400 `invalid_query` naming the query parameter `field`.
    pub fn invalid_query_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", message).with_field(field)
    }

    /// 404 `not_found`, worded like Mastra (`Run not found: <id>`).
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found: {id}"),
        )
    }

    /// 500 `internal`; the detail is logged, not sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error (see the server log)",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            message: &self.message,
            code: self.code,
            field: self.field.as_deref(),
            details: self.details.as_ref(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            StoreError::Validation { ref field, .. } => {
                let field = field.clone();
                Self::new(StatusCode::BAD_REQUEST, "validation_failed", e.to_string())
                    .with_field(field)
            }
            StoreError::Conflict(ref m) => Self::new(StatusCode::CONFLICT, "conflict", m.clone()),
            StoreError::LimitExceeded { key, limit, .. } => {
                Self::over_limit(key, limit.max(0) as u64, e.to_string())
            }
            StoreError::LeaseLost => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            other => Self::internal(other),
        }
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::InvalidOptions { ref field, .. } => {
                let field = field.clone();
                Self::new(StatusCode::BAD_REQUEST, "invalid_option", e.to_string())
                    .with_field(field)
            }
            RunError::UnknownPlugin { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "unknown_plugin", e.to_string())
            }
            RunError::WrongPluginKind { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "wrong_plugin_kind", e.to_string())
            }
            RunError::PluginLoad { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plugin_load_failed",
                e.to_string(),
            ),
            RunError::EmptyDataset { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "empty_dataset", e.to_string())
            }
            RunError::OverLimit {
                ref field,
                limit,
                value,
                ..
            } => {
                let field = field.clone();
                Self::over_limit(limit, value, e.to_string()).with_field(field)
            }
            // Raised by the scheduler, never by a request; a conflict with
            // the run's state if it ever reaches one.
            RunError::TooManyTakeovers { .. } => {
                Self::new(StatusCode::CONFLICT, "too_many_takeovers", e.to_string())
            }
            RunError::Store(s) => s.into(),
        }
    }
}

/// The `code` used for a status when an axum rejection is mapped.
pub(crate) fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_statuses_users_expect() {
        let e: ApiError = StoreError::not_found("Dataset", "d1").into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.message, "Dataset not found: d1");
        let e: ApiError = StoreError::validation("items[2].input", "is not a string").into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.field.as_deref(), Some("items[2].input"));
        let e: ApiError = StoreError::Conflict("run is running".into()).into();
        assert_eq!(e.status, StatusCode::CONFLICT);
    }

    #[test]
    fn run_errors_name_the_plugin() {
        let e: ApiError = RunError::UnknownPlugin {
            kind: "scorer",
            id: "nope".into(),
            hint: String::new(),
        }
        .into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("nope"), "{}", e.message);
    }
}
