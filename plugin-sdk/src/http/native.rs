//! `send` in native builds (a plugin's `cargo test`). With the
//! `native-http` feature: a real client for plain `http` (tests against a
//! loopback stub; no TLS, so a test cannot reach a real API by accident).
//! Without it: [`HttpError::Unsupported`].

use super::url::Url;
use super::{HttpError, Request, Response};

#[cfg(not(feature = "native-http"))]
pub(super) fn send(_request: &Request, _url: &Url) -> Result<Response, HttpError> {
    Err(HttpError::Unsupported)
}

#[cfg(feature = "native-http")]
pub(super) fn send(request: &Request, url: &Url) -> Result<Response, HttpError> {
    use std::io::Read;

    use super::MAX_RESPONSE_BYTES;

    let host = url.host().to_owned();
    if url.https {
        return Err(HttpError::InvalidRequest(format!(
            "native builds send plain http only (tests use a loopback stub); {} is https",
            request.url()
        )));
    }
    let uri = format!("http://{}{}", url.authority, url.path_with_query);
    let mut builder = ureq::http::Request::builder()
        .method(request.method().as_str())
        .uri(&uri);
    for (name, value) in request.headers() {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let http_request = builder
        .body(request.body_bytes().to_vec())
        .map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0);
    if let Some(t) = request.timeout {
        config = config.timeout_global(Some(t));
    }
    let agent = ureq::Agent::new_with_config(config.build());
    let response = agent.run(http_request).map_err(|e| match e {
        ureq::Error::Timeout(what) => HttpError::Timeout {
            host: host.clone(),
            what: what.to_string(),
        },
        ureq::Error::Io(io) => HttpError::Connection {
            host: host.clone(),
            message: io.to_string(),
        },
        ureq::Error::HostNotFound => HttpError::Connection {
            host: host.clone(),
            message: "the host name was not found".into(),
        },
        ureq::Error::ConnectionFailed => HttpError::Connection {
            host: host.clone(),
            message: "connection failed".into(),
        },
        other => HttpError::Other {
            host: host.clone(),
            message: other.to_string(),
        },
    })?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(MAX_RESPONSE_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| HttpError::Connection {
            host: host.clone(),
            message: e.to_string(),
        })?;
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(HttpError::Other {
            host,
            message: format!("the response body is over {MAX_RESPONSE_BYTES} bytes"),
        });
    }
    Ok(Response::new(status, headers, body, host))
}
