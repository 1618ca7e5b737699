//! Request extractors whose every failure is an [`ApiError`] (JSON), never
//! axum's plain-text rejections: JSON bodies, query strings, path
//! parameters, the caller's tenant, raw uploads.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, code_for_status};
use crate::state::AppState;

use crate::auth::Caller;
pub use crate::auth::TENANT_HEADER;

/// A JSON request body. Wrong content type: 415; over the body limit: 413;
/// not JSON: 400 `malformed_json`; JSON of the wrong shape: 400
/// `invalid_body` naming the field (`items[3].input`).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| body_rejection(r, state))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses `bytes` as one JSON value of type `T` (see [`ApiJson`]).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            let field = if path == "." { None } else { Some(path) };
            let message = match &field {
                Some(f) => format!("invalid request body at `{f}`: {inner}"),
                None => format!("invalid request body: {inner}"),
            };
            let e = ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message);
            match field {
                Some(f) => e.with_field(f),
                None => e,
            }
        } else {
            malformed(&inner)
        }
    })?;
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "malformed_json",
        format!("malformed JSON: {e}"),
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The media type of a request (`None` when absent), lowercased, without
/// parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Maps a failure to read the body (too large, broken connection).
pub(crate) fn body_rejection(r: BytesRejection, state: &AppState) -> ApiError {
    let status = r.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "payload_too_large",
            format!(
                "request body is larger than the limit of {} bytes",
                state.options().body_limit_bytes
            ),
        )
    } else if stalled(&r) {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body stalled for more than {} s",
                state.options().limits.body_timeout.as_secs_f64()
            ),
        )
    } else {
        ApiError::new(status, code_for_status(status), r.body_text())
    }
}

/// Whether reading the body failed because the client paused longer than
/// the body timeout (see [`crate::conn`]).
fn stalled(r: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(r);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// A query string; a bad one is a 400 `invalid_query`.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text()))
    }
}

/// Path parameters; a bad one (e.g. a version that is not a number) is a
/// 400 `invalid_path`.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|r| {
                let status = r.status();
                let code = if status.is_server_error() {
                    "internal"
                } else {
                    "invalid_path"
                };
                ApiError::new(status, code, r.body_text())
            })
    }
}

/// The request's tenant, as [`crate::auth::authorize`] established it (an
/// API key's tenant, a trusted proxy's header, or `default` without auth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantId(pub String);

impl std::ops::Deref for TenantId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        Ok(TenantId(caller.tenant))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            // Only a route the table marks `Open` lacks a caller, and such a
            // route must not ask for one.
            ApiError::internal("a tenant-scoped handler on a route without authentication")
        })
    }
}

/// `page` (0-based) and `perPage` (default 10, at most 100). Any other
/// parameter is a 400 naming it (an ignored filter would answer a list that
/// is silently not what was asked for).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PageQuery {
    /// 0-based page.
    pub page: Option<u32>,
    /// Rows per page.
    pub per_page: Option<u32>,
}

impl PageQuery {
    /// The store's page request.
    pub fn page(self) -> assay_store::Page {
        assay_store::Page::new(self.page.unwrap_or(0), self.per_page.unwrap_or(0))
    }
}

/// The run results list's query: paging plus the filters (nothing else).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResultsQuery {
    /// 0-based page.
    pub page: Option<u32>,
    /// Rows per page.
    pub per_page: Option<u32>,
    /// Only results whose target or one of whose scorers failed.
    pub failed: Option<bool>,
    /// The scorer `below` applies to.
    pub scorer: Option<String>,
    /// Only results that `scorer` scored below this value.
    pub below: Option<f64>,
}

impl ResultsQuery {
    /// The store's page request.
    pub fn page(&self) -> assay_store::Page {
        assay_store::Page::new(self.page.unwrap_or(0), self.per_page.unwrap_or(0))
    }
}

/// The item list's query: paging plus `version` and `search` (nothing else).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemsQuery {
    /// 0-based page.
    pub page: Option<u32>,
    /// Rows per page.
    pub per_page: Option<u32>,
    /// A past dataset version (default: the live items).
    pub version: Option<i64>,
    /// Case-insensitive substring of `input` or `expectedOutput`.
    pub search: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        items: Vec<Item>,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        input: serde_json::Value,
        n: Option<u32>,
    }

    #[test]
    fn wrong_shape_names_the_field() {
        let e = parse_json::<Body>(br#"{"items":[{"input":1},{"input":2,"n":"x"}]}"#).unwrap_err();
        assert_eq!(e.code, "invalid_body");
        assert_eq!(e.field.as_deref(), Some("items[1].n"));
        let e = parse_json::<Body>(br#"{"items":[{"input":1},{}]}"#).unwrap_err();
        assert!(e.message.contains("input"), "{}", e.message);
    }

    #[test]
    fn broken_json_is_malformed() {
        for bad in [
            &b"{\"items\": ["[..],
            b"",
            b"{\"items\": []} trailing",
            b"nope",
        ] {
            let e = parse_json::<Body>(bad).unwrap_err();
            assert_eq!(e.code, "malformed_json", "{:?}", std::str::from_utf8(bad));
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }
}
