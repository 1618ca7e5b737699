//! `send` in the sandbox: one `wasi:http/outgoing-handler` call, blocking
//! on its pollables (a plugin call is synchronous; the host keeps other
//! calls running meanwhile).

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme, http_error_code,
};
use wasip2::io::streams::StreamError;

use super::url::Url;
use super::{HttpError, MAX_RESPONSE_BYTES, Method, Request, Response, from_error_code};

/// The most bytes one `blocking-write-and-flush` accepts.
const WRITE_CHUNK: usize = 4096;
/// Bytes asked for per read.
const READ_CHUNK: u64 = 64 * 1024;

pub(super) fn send(request: &Request, url: &Url) -> Result<Response, HttpError> {
    let host = url.host();
    let code = |c: ErrorCode| from_error_code(&c, host);
    let other = |message: &str| HttpError::Other {
        host: host.to_owned(),
        message: message.to_owned(),
    };

    let headers = Fields::new();
    for (name, value) in request.headers() {
        headers.append(name, value.as_bytes()).map_err(|e| {
            HttpError::InvalidRequest(format!("header `{name}` cannot be sent: {e:?}"))
        })?;
    }
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method() {
        Method::Get => WasiMethod::Get,
        Method::Head => WasiMethod::Head,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
        Method::Patch => WasiMethod::Patch,
        Method::Delete => WasiMethod::Delete,
        Method::Options => WasiMethod::Options,
    };
    let scheme = if url.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let refused = |what: &str| HttpError::InvalidRequest(format!("the {what} was refused"));
    outgoing
        .set_method(&method)
        .map_err(|()| refused("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    outgoing
        .set_authority(Some(&url.authority))
        .map_err(|()| refused("host"))?;
    outgoing
        .set_path_with_query(Some(&url.path_with_query))
        .map_err(|()| refused("path"))?;
    let body = outgoing.body().map_err(|()| other("no request body"))?;

    let options = request.timeout.map(|t| {
        let options = RequestOptions::new();
        let nanos = Some(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        // A host may not support every timeout; the host's own call
        // deadline still applies, so an unsupported one is not an error.
        let _ = options.set_connect_timeout(nanos);
        let _ = options.set_first_byte_timeout(nanos);
        let _ = options.set_between_bytes_timeout(nanos);
        options
    });
    let future = outgoing_handler::handle(outgoing, options).map_err(code)?;

    // A host that refuses the request (not granted, body too large) may
    // close the body stream; the reason then arrives with the response
    // future, so a failed write is only reported when the future brings
    // neither a response nor an error.
    let mut write_error = None;
    {
        let stream = body.write().map_err(|()| other("no request body stream"))?;
        for chunk in request.body_bytes().chunks(WRITE_CHUNK) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                write_error = Some(stream_error(e, host));
                break;
            }
        }
    }
    if let Err(c) = OutgoingBody::finish(body, None) {
        write_error.get_or_insert(code(c));
    }

    future.subscribe().block();
    let incoming = match future.get() {
        // The server answered (perhaps early, e.g. 413 before the whole
        // body was sent): its answer says more than the write error.
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(c))) => return Err(code(c)),
        Some(Err(())) => return Err(other("the response was already taken")),
        None => return Err(write_error.unwrap_or_else(|| other("no response after waiting"))),
    };
    let status = incoming.status();
    let headers = incoming
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let body = incoming.consume().map_err(|()| other("no response body"))?;
    let mut bytes = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| other("no response body stream"))?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => {
                    if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(other(&format!(
                            "the response body is over {MAX_RESPONSE_BYTES} bytes"
                        )));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_error(e, host)),
            }
        }
    }
    drop(IncomingBody::finish(body));
    Ok(Response::new(status, headers, bytes, host))
}

fn stream_error(e: StreamError, host: &str) -> HttpError {
    match e {
        StreamError::Closed => HttpError::Connection {
            host: host.to_owned(),
            message: "the connection was closed".into(),
        },
        StreamError::LastOperationFailed(err) => match http_error_code(&err) {
            Some(c) => from_error_code(&c, host),
            None => HttpError::Connection {
                host: host.to_owned(),
                message: err.to_debug_string(),
            },
        },
    }
}
