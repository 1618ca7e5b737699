//! Why a request failed, and what the host should do about it: the mapping
//! from HTTP failures to [`PluginError`] kinds.

use wasip2::http::types::ErrorCode;

use crate::PluginError;

/// The most characters of a server's message kept in an error.
pub(crate) const MAX_MESSAGE_CHARS: usize = 500;

/// Why a request did not produce a usable response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The request cannot be sent as built (bad URL, bad header, a body
    /// that would not serialize).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The host refused the request: `host` is not granted to this plugin
    /// (or resolves to an address no plugin may reach).
    #[error(
        "the request to {host} was denied by the assay host{}: ask the operator to grant {host} to this plugin",
        message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
    )]
    Denied {
        /// The host of the URL.
        host: String,
        /// The host's reason, when it gave one.
        message: Option<String>,
    },
    /// Connecting, or waiting for the response, took too long.
    #[error("the request to {host} timed out ({what})")]
    Timeout {
        /// The host of the URL.
        host: String,
        /// Which step timed out.
        what: String,
    },
    /// The connection could not be made or broke (refused, reset, DNS).
    #[error("cannot reach {host}: {message}")]
    Connection {
        /// The host of the URL.
        host: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered with a 4xx or 5xx status
    /// ([`Response::error_for_status`](super::Response::error_for_status)).
    #[error("{host} answered {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        /// The status code.
        status: u16,
        /// The host of the URL.
        host: String,
        /// The server's message: the JSON body's error message, else the
        /// start of the body text; `None` for an empty body.
        message: Option<String>,
    },
    /// Anything else: TLS, protocol errors, a response too large.
    #[error("the request to {host} failed: {message}")]
    Other {
        /// The host of the URL.
        host: String,
        /// What went wrong.
        message: String,
    },
    /// No HTTP client in this build (a native build without the SDK's
    /// `native-http` feature).
    #[error(
        "HTTP requests need the sandbox's wasi:http, or the assay-plugin-sdk feature `native-http` in native tests"
    )]
    Unsupported,
}

impl HttpError {
    /// Whether retrying may help: 429, 5xx, timeouts and connection errors.
    pub fn is_transient(&self) -> bool {
        match self {
            HttpError::Timeout { .. } | HttpError::Connection { .. } => true,
            HttpError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// The [`PluginError`] for this failure: `transient` when retrying may
    /// help (see [`is_transient`](Self::is_transient)), else `failed`.
    pub fn into_plugin_error(self) -> PluginError {
        let message = self.to_string();
        if self.is_transient() {
            PluginError::Transient(message)
        } else {
            PluginError::Failed(message)
        }
    }
}

/// The server's message in an error body: `error.message` (OpenAI and
/// most JSON APIs), a string `error`, `message` or `detail`; else the body
/// text. Cut to 500 characters; `None` for an empty body.
pub fn error_message(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let from_json = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
            s(&v["error"]["message"])
                .or_else(|| s(&v["error"]))
                .or_else(|| s(&v["message"]))
                .or_else(|| s(&v["detail"]))
        });
    Some(truncate(
        from_json.as_deref().unwrap_or(text),
        MAX_MESSAGE_CHARS,
    ))
}

/// `text` cut to `max` characters, marked when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The [`HttpError`] for a `wasi:http` error code about a request to
/// `host`. Public for tests of plugins that handle codes themselves.
pub fn from_error_code(code: &ErrorCode, host: &str) -> HttpError {
    let host = host.to_owned();
    let timeout = |what: &str| HttpError::Timeout {
        host: host.clone(),
        what: what.to_owned(),
    };
    let connection = |message: String| HttpError::Connection {
        host: host.clone(),
        message,
    };
    let other = |message: String| HttpError::Other {
        host: host.clone(),
        message,
    };
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied {
            host: host.clone(),
            message: None,
        },
        ErrorCode::DestinationIpProhibited => HttpError::Denied {
            host: host.clone(),
            message: Some("its address may not be reached from a plugin".into()),
        },
        ErrorCode::DnsTimeout => timeout("name lookup"),
        ErrorCode::ConnectionTimeout => timeout("connecting"),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            timeout("waiting for the response")
        }
        ErrorCode::ConnectionWriteTimeout => timeout("sending the request"),
        ErrorCode::DnsError(payload) => connection(format!(
            "name lookup failed{}",
            payload
                .rcode
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )),
        ErrorCode::DestinationNotFound => connection("the host name was not found".into()),
        ErrorCode::DestinationUnavailable => connection("the host is unavailable".into()),
        ErrorCode::DestinationIpUnroutable => connection("the address is unroutable".into()),
        ErrorCode::ConnectionRefused => connection("connection refused".into()),
        ErrorCode::ConnectionTerminated => connection("the connection was closed".into()),
        ErrorCode::ConnectionLimitReached => connection("too many connections".into()),
        ErrorCode::HttpResponseIncomplete => {
            connection("the response ended before it was complete".into())
        }
        ErrorCode::TlsProtocolError => other("TLS protocol error".into()),
        ErrorCode::TlsCertificateError => other("the server's TLS certificate is not valid".into()),
        ErrorCode::TlsAlertReceived(alert) => other(format!(
            "TLS alert{}",
            alert
                .alert_message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )),
        ErrorCode::HttpRequestBodySize(_) => other("the request body is too large".into()),
        ErrorCode::HttpRequestMethodInvalid => other("the method is not allowed".into()),
        ErrorCode::HttpRequestUriInvalid => other("the URL is not valid".into()),
        ErrorCode::HttpRequestUriTooLong => other("the URL is too long".into()),
        ErrorCode::HttpRequestHeaderSectionSize(_) | ErrorCode::HttpRequestHeaderSize(_) => {
            other("the request headers are too large".into())
        }
        ErrorCode::HttpResponseBodySize(_) => other("the response body is too large".into()),
        ErrorCode::InternalError(Some(message)) => other(truncate(message, MAX_MESSAGE_CHARS)),
        code => other(format!("{code:?}")),
    }
}
