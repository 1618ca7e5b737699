//! A small blocking HTTP client for plugins, over `wasi:http`.
//!
//! ```no_run
//! use assay_plugin_sdk::http::Request;
//! use assay_plugin_sdk::prelude::*;
//!
//! fn ask(question: &str) -> Result<Value, PluginError> {
//!     let response = Request::post("https://api.openai.com/v1/chat/completions")
//!         // Sent as written; the host puts the secret's value in its place.
//!         .header("authorization", "Bearer {{secret.OPENAI_API_KEY}}")
//!         .json(&json!({"model": "gpt-4o-mini",
//!                       "messages": [{"role": "user", "content": question}]}))
//!         .send()?            // denied, timeout, connection errors
//!         .error_for_status()?; // 429 / 5xx: transient; other 4xx: failed
//!     Ok(response.json()?)
//! }
//! ```
//!
//! In the sandbox a plugin reaches only the hosts the operator granted it
//! (declare them with [`PluginInfo::needs_host`](crate::PluginInfo::needs_host));
//! the host refuses any other request before connecting, and the refusal
//! arrives here as [`HttpError::Denied`]. Header values may contain
//! `{{secret.NAME}}`: they are sent as written and the host substitutes
//! the secret, so its value never enters the plugin.
//!
//! Every [`HttpError`] and every non-success status converts into the
//! [`PluginError`] the host's retry logic expects (`?` does it):
//!
//! | what happened | `PluginError` |
//! | --- | --- |
//! | status 429, 5xx | `transient` (retried with backoff) |
//! | other 4xx | `failed`, with the server's message |
//! | timeout, connection refused / reset, DNS failure | `transient` |
//! | the host denied the request | `failed`, naming the host |
//! | malformed URL or header, TLS failure, protocol error | `failed` |
//!
//! Natively (`cargo test` of a plugin) [`Request::send`] needs the SDK's
//! `native-http` feature, a plain-`http` client for tests against a
//! loopback stub (add it in your `[dev-dependencies]`). Without the feature
//! it returns [`HttpError::Unsupported`], so a test that reaches the network
//! by accident fails with a clear message instead of compiling a client
//! into every plugin's test build.

mod errors;
#[cfg(not(target_arch = "wasm32"))]
mod native;
mod url;
#[cfg(target_arch = "wasm32")]
mod wasi;

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[doc(hidden)]
pub use errors::from_error_code;
pub use errors::{HttpError, error_message};
use url::Url;

use crate::PluginError;

/// The most bytes of a response body read; a larger body is an error
/// rather than a plugin that runs out of memory.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// The HTTP method of a [`Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

impl Method {
    /// The method's name, e.g. `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outgoing request, built step by step and sent with [`Request::send`].
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    /// A body that could not be serialized, reported by `send`.
    body_error: Option<String>,
}

impl Request {
    /// A request with `method` to `url` (`http://` or `https://`).
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            body_error: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Adds a header (repeat a name to send it several times). A value may
    /// contain `{{secret.NAME}}`, which the host replaces.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body bytes.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON and `content-type` to
    /// `application/json` (unless a content type was set). A value that
    /// cannot be serialized makes [`send`](Self::send) fail.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => self.body = body,
            Err(e) => self.body_error = Some(e.to_string()),
        }
        if self.header_value("content-type").is_none() {
            self.headers
                .push(("content-type".into(), "application/json".into()));
        }
        self
    }

    /// Gives up when connecting, the first response byte, or the gap
    /// between two body chunks takes longer than `timeout` (the host's own
    /// per-call deadline applies regardless).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body bytes.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Sends the request and reads the whole response. Any status is a
    /// response; use [`Response::error_for_status`] to turn 4xx and 5xx
    /// into errors.
    pub fn send(self) -> Result<Response, HttpError> {
        if let Some(error) = &self.body_error {
            return Err(HttpError::InvalidRequest(format!(
                "the JSON body cannot be serialized: {error}"
            )));
        }
        let url = Url::parse(&self.url)?;
        for (name, value) in &self.headers {
            check_header(name, value)?;
        }
        #[cfg(target_arch = "wasm32")]
        {
            wasi::send(&self, &url)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native::send(&self, &url)
        }
    }
}

/// Header names are tokens; values may not hold line breaks (they would
/// smuggle a second header).
fn check_header(name: &str, value: &str) -> Result<(), HttpError> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(HttpError::InvalidRequest(format!(
            "`{name}` is not a valid header name"
        )));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(HttpError::InvalidRequest(format!(
            "the value of header `{name}` contains a line break or NUL"
        )));
    }
    Ok(())
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A response: status, headers and the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. `200`.
    pub status: u16,
    /// The headers, in order; names as the server sent them (HTTP/2 sends
    /// them lowercase). Values that are not UTF-8 are replaced lossily.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The host of the URL, for error messages.
    host: String,
}

impl Response {
    /// A response as received from `host` (also handy in tests of code that
    /// handles responses).
    pub fn new(
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        host: impl Into<String>,
    ) -> Self {
        Self {
            status,
            headers,
            body,
            host: host.into(),
        }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON into `T`. A body that does not parse is a
    /// `failed` error quoting the start of it: the server did not answer
    /// as the plugin expects, which retrying will not change.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            PluginError::failed(format!(
                "{} answered with a body that is not the expected JSON ({e}): {}",
                self.host,
                errors::truncate(&self.text(), errors::MAX_MESSAGE_CHARS)
            ))
        })
    }

    /// `Ok(self)` for 1xx-3xx; for 4xx and 5xx an [`HttpError::Status`]
    /// carrying the server's message.
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.status < 400 {
            return Ok(self);
        }
        Err(HttpError::Status {
            status: self.status,
            host: self.host.clone(),
            message: error_message(&self.body),
        })
    }
}

impl From<HttpError> for PluginError {
    fn from(error: HttpError) -> Self {
        error.into_plugin_error()
    }
}

#[cfg(test)]
mod tests;
