//! The one place a plugin's outbound request leaves the sandbox.
//!
//! wasi:http hands every request to [`NetHooks::send_request`]. Before any
//! connection it is checked against the call's [`NetworkGrant`] (scheme,
//! host, port), counted against `maxRequests`, and its `{{secret.NAME}}`
//! header placeholders are filled in. The host name is then resolved here,
//! every address is checked (an internal address only when the grant names
//! it), and the connection goes to a checked address: the guest never
//! resolves or connects by itself. Request and response bodies are counted
//! against the grant's limits, and the whole exchange runs under its total
//! timeout.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{HeaderValue, RETRY_AFTER};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::grant::{Denial, HostPattern, NetworkLimits, Scheme, is_internal_address};
use crate::net_access::NetworkAccess;
use crate::net_pool::{Connection, ConnectionPool, PoolKey};
use crate::net_rate::{RateLimiters, USAGE_SCAN_BYTES, reported_tokens};
use crate::net_report::{HttpExchange, NetLog, parse_retry_after};

/// The future wasi:http expects back from `send_request`.
type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

/// The network side of one call's store.
pub(crate) struct NetHooks {
    access: NetworkAccess,
    log: NetLog,
}

impl NetHooks {
    pub(crate) fn new(access: NetworkAccess, log: NetLog) -> Self {
        Self { access, log }
    }
}

impl WasiHttpHooks for NetHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _io: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        match self.admit(request) {
            Ok(admitted) => Box::new(send(
                admitted,
                options,
                self.access.clone(),
                self.log.clone(),
            )),
            Err(error) => Box::new(async move { Err(error) }),
        }
    }
}

/// A request that passed the grant check, with secrets filled in.
struct Admitted {
    request: http::Request<WasiBody>,
    scheme: Scheme,
    host: String,
    port: u16,
    /// `host[:port]` as requested, for reports.
    authority: String,
    pattern: HostPattern,
}

impl NetHooks {
    /// The checks made before the request may go anywhere: grant, request
    /// count, declared body size, secret placeholders.
    fn admit(&mut self, mut request: http::Request<WasiBody>) -> Result<Admitted, Error> {
        let uri = request.uri();
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            _ => return Err(Error::HttpProtocolError),
        };
        let Some(authority) = uri.authority() else {
            return Err(Error::HttpRequestUriInvalid);
        };
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = authority.port_u16().unwrap_or(scheme.default_port());
        let authority = authority.as_str().to_ascii_lowercase();
        let grant = &self.access.grant;
        let pattern = match grant.check(scheme, &host, port) {
            Ok(pattern) => pattern.clone(),
            Err(denial) => return Err(self.refuse(denial.to_string(), Error::HttpRequestDenied)),
        };
        let limits = grant.limits;
        if self.log.count_request() > limits.max_requests {
            let denial = Denial::TooManyRequests {
                limit: limits.max_requests,
            };
            return Err(self.refuse(denial.to_string(), Error::HttpRequestDenied));
        }
        if let Some(declared) = content_length(request.headers())
            && declared > limits.max_request_bytes
        {
            return Err(self.refuse(
                request_too_large(&authority, &limits),
                Error::HttpRequestBodySize(Some(declared)),
            ));
        }
        let secrets = self.access.secrets.clone();
        for value in request.headers_mut().values_mut() {
            let Ok(text) = value.to_str() else { continue };
            match secrets.substitute(text) {
                Ok(None) => {}
                Ok(Some(filled)) => {
                    let Ok(mut filled) = HeaderValue::from_str(&filled) else {
                        return Err(self.refuse(
                            "a secret's value is not valid in an HTTP header".into(),
                            Error::HttpRequestDenied,
                        ));
                    };
                    filled.set_sensitive(true);
                    *value = filled;
                }
                Err(unknown) => {
                    let message = unknown.to_string();
                    return Err(self.refuse(message.clone(), Error::InternalError(Some(message))));
                }
            }
        }
        Ok(Admitted {
            request,
            scheme,
            host,
            port,
            authority,
            pattern,
        })
    }

    fn refuse(&self, message: String, error: Error) -> Error {
        self.log.refuse(message);
        error
    }
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn request_too_large(authority: &str, limits: &NetworkLimits) -> String {
    format!(
        "the request body to {authority} is larger than the grant's maxRequestBytes ({} bytes)",
        limits.max_request_bytes
    )
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Resolves, checks, connects and sends an admitted request under the
/// grant's total timeout, and records the exchange.
async fn send(
    admitted: Admitted,
    options: Option<RequestOptions>,
    access: NetworkAccess,
    log: NetLog,
) -> Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
> {
    let limits = access.grant.limits;
    // Rate limits delay a request before its own clock starts.
    let (scheme, host, port) = (admitted.scheme, admitted.host.clone(), admitted.port);
    let count_tokens = access.rate_limits.wait_turn(scheme, &host, port).await;
    let started = Instant::now();
    let deadline = started + ms(limits.timeout_ms);
    let authority = admitted.authority.clone();
    let outcome = tokio::time::timeout_at(
        deadline.into(),
        connect_and_send(admitted, options, &access, &log),
    )
    .await
    .unwrap_or_else(|_| {
        log.refuse(format!(
            "the request to {authority} took longer than the grant's timeoutMs ({} ms)",
            limits.timeout_ms
        ));
        Err(Error::HttpResponseTimeout)
    });
    let latency = started.elapsed();
    match outcome {
        Ok((response, checkin)) => {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            log.exchange(HttpExchange {
                host: authority.clone(),
                status: Some(response.status().as_u16()),
                latency,
                retry_after,
                error: None,
            });
            let response = response.map(|incoming| {
                LimitedResponse {
                    incoming,
                    seen: 0,
                    limit: limits.max_response_bytes,
                    deadline: Box::pin(tokio::time::sleep_until(deadline.into())),
                    authority,
                    limits,
                    log,
                    failed: false,
                    checkin: Some(checkin),
                    usage: count_tokens.then(|| UsageScan {
                        body: Vec::new(),
                        limiters: access.rate_limits.clone(),
                        scheme,
                        host,
                        port,
                    }),
                }
                .boxed_unsync()
            });
            // The connection runs on its own task (see `open`): nothing
            // is left for wasi:http to drive.
            let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async { Ok(()) });
            Ok((response, io))
        }
        Err(error) => {
            log.exchange(HttpExchange {
                host: authority,
                status: None,
                latency,
                retry_after: None,
                error: Some(format!("{error:?}")),
            });
            Err(error)
        }
    }
}

trait IoStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> IoStream for T {}

type ConnectionIo = TokioIo<Box<dyn IoStream>>;

async fn connect_and_send(
    admitted: Admitted,
    options: Option<RequestOptions>,
    access: &NetworkAccess,
    log: &NetLog,
) -> Result<(http::Response<hyper::body::Incoming>, Checkin), Error> {
    let limits = access.grant.limits;
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .map_or(ms(limits.connect_timeout_ms), |t| {
            t.min(ms(limits.connect_timeout_ms))
        });
    let Admitted {
        mut request,
        scheme,
        host,
        port,
        authority,
        pattern,
    } = admitted;

    let addresses = resolve(access, &host, port, connect_timeout).await?;
    for address in &addresses {
        let ip = address.ip();
        if is_internal_address(ip) && !pattern.names_address(ip) {
            let denial = Denial::InternalAddress {
                host: authority.clone(),
                address: ip,
            };
            log.refuse(denial.to_string());
            return Err(Error::DestinationIpProhibited);
        }
    }
    let (mut connection, mut key, reused) = match reuse(access, scheme, &host, &addresses).await {
        Some((connection, key)) => (connection, key, true),
        None => {
            let (connection, key) = open(scheme, &host, &addresses, connect_timeout).await?;
            (connection, key, false)
        }
    };

    *request.uri_mut() = http::Uri::builder()
        .path_and_query(request.uri().path_and_query().map_or("/", |p| p.as_str()))
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let request = request.map(|body| LimitedRequest {
        body,
        sent: 0,
        limit: limits.max_request_bytes,
        message: request_too_large(&authority, &limits),
        log: log.clone(),
    });

    let first_byte = options.and_then(|o| o.first_byte_timeout);
    let response =
        match with_first_byte(first_byte, connection.sender.try_send_request(request)).await? {
            Ok(response) => response,
            // A pooled connection the server closed while it was idle: the
            // request never left, so it goes once more on a new connection.
            Err(mut unsent) if reused && unsent.message().is_some() => {
                let request = unsent.take_message().expect("checked above");
                (connection, key) = open(scheme, &host, &addresses, connect_timeout).await?;
                with_first_byte(first_byte, connection.sender.send_request(request)).await??
            }
            Err(failed) => return Err(failed.into_error().into()),
        };
    let checkin = Checkin {
        pool: access.connections.clone(),
        key,
        connection,
    };
    Ok((response, checkin))
}

/// `response` under the plugin's first-byte timeout, if it set one.
async fn with_first_byte<T>(
    timeout: Option<Duration>,
    response: impl Future<Output = T>,
) -> Result<T, Error> {
    match timeout {
        Some(t) => tokio::time::timeout(t, response)
            .await
            .map_err(|_| Error::ConnectionReadTimeout),
        None => Ok(response.await),
    }
}

/// A connection to take back to its pool once its response was read to
/// the end.
struct Checkin {
    pool: Arc<ConnectionPool>,
    key: PoolKey,
    connection: Connection,
}

impl Checkin {
    fn done(self) {
        self.pool.checkin(self.key, self.connection);
    }
}

/// An idle pooled connection to one of `addresses` (all checked), if any.
async fn reuse(
    access: &NetworkAccess,
    scheme: Scheme,
    host: &str,
    addresses: &[SocketAddr],
) -> Option<(Connection, PoolKey)> {
    for &address in addresses {
        let key = PoolKey {
            scheme,
            host: host.to_string(),
            address,
        };
        if let Some(connection) = access.connections.checkout(&key).await {
            return Some((connection, key));
        }
    }
    None
}

/// A new connection to the first of `addresses` that answers, TLS-wrapped
/// for https. Its I/O runs on a task of its own, which ends when the
/// connection closes and is aborted when the returned [`Connection`] is
/// dropped (a response dropped or cut off before its end, a call
/// cancelled, an idle connection evicted).
async fn open(
    scheme: Scheme,
    host: &str,
    addresses: &[SocketAddr],
    connect_timeout: Duration,
) -> Result<(Connection, PoolKey), Error> {
    let tcp = connect(addresses, connect_timeout).await?;
    let address = tcp.peer_addr().map_err(Error::Connect)?;
    let stream: Box<dyn IoStream> = match scheme {
        Scheme::Http => Box::new(tcp),
        Scheme::Https => {
            let name = server_name(host)?;
            let tls = tokio::time::timeout(connect_timeout, tls_connector().connect(name, tcp))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
            Box::new(tls)
        }
    };
    let (sender, conn) =
        hyper::client::conn::http1::handshake::<ConnectionIo, _>(TokioIo::new(stream)).await?;
    let task = tokio::spawn(async move {
        // Its errors reach the request that was in flight.
        let _ = conn.await;
    });
    let key = PoolKey {
        scheme,
        host: host.to_string(),
        address,
    };
    Ok((Connection::new(sender, task.abort_handle()), key))
}

/// The request's addresses: an IP literal as is, a name from the call's
/// resolver (once: the connection uses these very addresses).
async fn resolve(
    access: &NetworkAccess,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = tokio::time::timeout(timeout, access.resolver.resolve(host, port))
        .await
        .map_err(|_| Error::DnsTimeout)?
        .map_err(|e| Error::DnsError {
            rcode: Some(e.to_string()),
            info_code: None,
        })?;
    if found.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    Ok(found)
}

/// Connects to the first address that answers within `timeout` (shared by
/// all attempts).
async fn connect(addresses: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Error> {
    let attempt = async {
        let mut last = None;
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => return Ok(stream),
                Err(err) => last = Some(err),
            }
        }
        Err(Error::Connect(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
        })))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| Error::ConnectionTimeout)?
}

fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::from(ip));
    }
    ServerName::try_from(host.to_string()).map_err(|_| Error::HttpRequestUriInvalid)
}

/// One TLS client configuration (webpki roots) for the process.
fn tls_connector() -> TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    });
    TlsConnector::from(config.clone())
}

/// The plugin's request body, cut off at the grant's `maxRequestBytes`.
pub(crate) struct LimitedRequest {
    body: WasiBody,
    sent: u64,
    limit: u64,
    message: String,
    log: NetLog,
}

impl Body for LimitedRequest {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            self.sent += data.len() as u64;
            if self.sent > self.limit {
                self.log.refuse(self.message.clone());
                return Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(self.sent)))));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body, cut off at the grant's `maxResponseBytes` and at the
/// request's total deadline.
struct LimitedResponse {
    incoming: hyper::body::Incoming,
    seen: u64,
    limit: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    authority: String,
    limits: NetworkLimits,
    log: NetLog,
    failed: bool,
    /// The connection, back to its pool when the body ends (and only
    /// then: a connection whose response was cut off is not reusable).
    checkin: Option<Checkin>,
    /// Set when a token budget matches the host: the body is kept (up to
    /// [`USAGE_SCAN_BYTES`]) to count the tokens its `usage` reports.
    usage: Option<UsageScan>,
}

/// The body of an answer whose tokens are counted, as it streams by.
struct UsageScan {
    body: Vec<u8>,
    limiters: Arc<RateLimiters>,
    scheme: Scheme,
    host: String,
    port: u16,
}

impl UsageScan {
    fn feed(&mut self, data: &[u8]) {
        if self.body.len() + data.len() <= USAGE_SCAN_BYTES {
            self.body.extend_from_slice(data);
        } else {
            // Too large to be a completion: not counted.
            self.body = Vec::new();
            self.body.shrink_to_fit();
            self.host.clear();
        }
    }

    fn finish(self) {
        if self.host.is_empty() {
            return;
        }
        if let Some(tokens) = reported_tokens(&self.body) {
            self.limiters
                .record_tokens(self.scheme, &self.host, self.port, tokens);
        }
    }
}

impl LimitedResponse {
    fn fail(&mut self, message: String, error: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.failed = true;
        self.log.refuse(message);
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for LimitedResponse {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.seen += data.len() as u64;
                    if self.seen > self.limit {
                        let message = format!(
                            "the response from {} is larger than the grant's maxResponseBytes ({} bytes)",
                            self.authority, self.limit
                        );
                        let seen = self.seen;
                        return self.fail(message, Error::HttpResponseBodySize(Some(seen)));
                    }
                    if let Some(scan) = &mut self.usage {
                        scan.feed(data);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Error::from(err)))),
            Poll::Ready(None) => {
                if let Some(scan) = self.usage.take() {
                    scan.finish();
                }
                if let Some(checkin) = self.checkin.take() {
                    checkin.done();
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                ready!(self.deadline.as_mut().poll(cx));
                let message = format!(
                    "the request to {} took longer than the grant's timeoutMs ({} ms)",
                    self.authority, self.limits.timeout_ms
                );
                self.fail(message, Error::HttpResponseTimeout)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}
