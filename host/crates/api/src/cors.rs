//! Cross-origin access: which web pages on other origins may call the API
//! from a browser (`assay serve --cors-origin`).
//!
//! None by default: a browser then refuses to hand a page on another origin
//! the answers (the playground served at `/` is same-origin and needs no
//! CORS). Each allowed origin is an exact `scheme://host[:port]`, or `*` for
//! any origin. Preflights (`OPTIONS` with `Access-Control-Request-Method`)
//! are answered by tower-http's CORS layer for the methods and headers the
//! API uses. No credentials (cookies) are involved: a page authenticates
//! with an `Authorization` header, which is allowed.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::extract::TENANT_HEADER;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The origins allowed to call the API from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsPolicy {
    /// No cross-origin access (the default).
    #[default]
    Disabled,
    /// Any origin (`--cors-origin '*'`).
    AnyOrigin,
    /// Exactly these origins.
    Origins(Vec<HeaderValue>),
}

/// Why a `--cors-origin` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CORS origin `{value}`: {reason}")]
pub struct InvalidOrigin {
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl CorsPolicy {
    /// The policy for a list of `--cors-origin` values (empty: disabled).
    /// `*` anywhere allows any origin.
    pub fn from_origins<S: AsRef<str>>(values: &[S]) -> Result<Self, InvalidOrigin> {
        let mut origins = Vec::new();
        let mut any = false;
        for value in values {
            match parse_origin(value.as_ref())? {
                None => any = true,
                Some(origin) => {
                    if !origins.contains(&origin) {
                        origins.push(origin);
                    }
                }
            }
        }
        Ok(if any {
            CorsPolicy::AnyOrigin
        } else if origins.is_empty() {
            CorsPolicy::Disabled
        } else {
            CorsPolicy::Origins(origins)
        })
    }

    /// The layer enforcing the policy (`None` when disabled: no CORS
    /// headers at all, so browsers keep their same-origin rule).
    pub fn layer(&self) -> Option<CorsLayer> {
        let allow = match self {
            CorsPolicy::Disabled => return None,
            CorsPolicy::AnyOrigin => AllowOrigin::any(),
            CorsPolicy::Origins(list) => AllowOrigin::list(list.iter().cloned()),
        };
        Some(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                ])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    HeaderName::from_static(TENANT_HEADER),
                    HeaderName::from_static("last-event-id"),
                ])
                .expose_headers([header::LOCATION])
                .max_age(PREFLIGHT_MAX_AGE),
        )
    }
}

/// `Some(origin)` for `scheme://host[:port]` (lowercased), `None` for `*`.
fn parse_origin(value: &str) -> Result<Option<HeaderValue>, InvalidOrigin> {
    let fail = |reason| InvalidOrigin {
        value: value.to_string(),
        reason,
    };
    let value = value.trim();
    if value == "*" {
        return Ok(None);
    }
    let lower = value.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .ok_or_else(|| fail("expected `http://host[:port]`, `https://host[:port]` or `*`"))?;
    if rest.is_empty() {
        return Err(fail("the host is missing"));
    }
    if rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(fail(
            "an origin is only scheme, host and port (no path, no trailing slash)",
        ));
    }
    HeaderValue::from_str(&lower)
        .map(Some)
        .map_err(|_| fail("not a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            CorsPolicy::from_origins::<&str>(&[]).unwrap(),
            CorsPolicy::Disabled
        );
        assert_eq!(
            CorsPolicy::from_origins(&["http://localhost:3000", "HTTPS://Example.com"]).unwrap(),
            CorsPolicy::Origins(vec![
                HeaderValue::from_static("http://localhost:3000"),
                HeaderValue::from_static("https://example.com"),
            ])
        );
        assert_eq!(
            CorsPolicy::from_origins(&["http://a.test", "*"]).unwrap(),
            CorsPolicy::AnyOrigin
        );
        for bad in [
            "localhost:3000",
            "http://",
            "http://a.test/",
            "http://a.test/path",
            "ftp://a.test",
            "http://user@a.test",
        ] {
            let e = CorsPolicy::from_origins(&[bad]).unwrap_err();
            assert_eq!(e.value, bad);
        }
    }
}
