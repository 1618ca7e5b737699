//! The accept loop of `assay serve`: every connection is served by hyper's
//! HTTP/1.1 server with a header read timeout, and at most
//! [`ServerLimits::max_connections`] are open at once.
//!
//! Why not `axum::serve`: it has no header read timeout (a client that
//! connects and sends nothing, or one header byte a minute, keeps its
//! connection and file descriptor forever) and no connection cap, so a few
//! thousand such clients exhaust the process's open files and `/health`
//! stops answering. Here:
//!
//! * a request head must arrive within `header_timeout` of the connection's
//!   start or of the previous answer (hyper's `header_read_timeout`), which
//!   also bounds how long an idle keep-alive connection is kept;
//! * a request body may pause at most `body_timeout` between two parts
//!   (tower-http's `RequestBodyTimeoutLayer`);
//! * at the connection cap the connection idle for the longest (no request
//!   in flight, whether between keep-alive requests or still sending its
//!   head) is closed to make room, as nginx reuses idle keep-alive
//!   connections; when every connection has a request in flight, the new
//!   connection gets a 503 with `Retry-After` and is closed;
//! * the cap is lowered to what the open-file limit allows, keeping
//!   [`FD_RESERVE`] descriptors for the database, plugin cache and logs.
//!
//! Only HTTP/1.1 is served: hyper's HTTP/2 auto-detection reads the first
//! bytes without any timeout, and browsers never speak HTTP/2 without TLS.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tracing::{debug, warn};

use crate::config::{OVERLOAD_RETRY_AFTER, ServerLimits};
use crate::metrics as m;

/// File descriptors kept out of the connection cap: database connections,
/// the compiled-plugin cache, log files, plugin uploads being written.
pub const FD_RESERVE: u64 = 128;

/// Connections answered "503, come back later" at once while every other
/// connection is busy; beyond it new connections are closed unanswered.
const SHED_SLOTS: usize = 64;

/// How long writing a shed 503 may take (the client may not read it).
const SHED_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// The connection cap in force: `configured`, lowered to the open-file
/// limit of the process minus [`FD_RESERVE`].
pub fn effective_max_connections(configured: usize) -> usize {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(u64::MAX);
    let allowed = usize::try_from(soft.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    configured.min(allowed).max(1)
}

/// The open connections, oldest first, with their requests in flight.
#[derive(Clone, Default)]
struct Registry {
    inner: Arc<Mutex<BTreeMap<u64, Entry>>>,
}

struct Entry {
    /// Requests of this connection whose answer is not fully sent.
    in_flight: Arc<AtomicUsize>,
    /// Cancelled to close the connection.
    evict: CancellationToken,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        // A panic while holding the lock leaves the map consistent (every
        // change is a single insert or remove).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn insert(&self, id: u64) -> Tracked {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let evict = CancellationToken::new();
        self.lock().insert(
            id,
            Entry {
                in_flight: in_flight.clone(),
                evict: evict.clone(),
            },
        );
        Tracked {
            registry: self.clone(),
            id,
            in_flight,
            evict,
        }
    }

    /// Closes the oldest connection with no request in flight; false when
    /// every connection is busy.
    fn evict_idle(&self) -> bool {
        let mut map = self.lock();
        let idle = map
            .iter()
            .find(|(_, e)| e.in_flight.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        match idle.and_then(|id| map.remove(&id)) {
            Some(entry) => {
                entry.evict.cancel();
                true
            }
            None => false,
        }
    }
}

/// One connection's place in the [`Registry`]; removed on drop.
struct Tracked {
    registry: Registry,
    id: u64,
    in_flight: Arc<AtomicUsize>,
    evict: CancellationToken,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
        m::connection_closed();
    }
}

/// Accepts connections on `listener` and serves `app` on them until `stop`
/// is cancelled; then stops accepting and waits for the open connections
/// to finish their requests (the caller bounds that wait).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let max = effective_max_connections(limits.max_connections);
    debug!(max_connections = max, "accepting");
    let registry = Registry::default();
    let shed_slots = Arc::new(Semaphore::new(SHED_SLOTS));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let service = tower::ServiceBuilder::new()
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .service(app);
    let mut conns = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors (or another transient
                    // failure): free one idle connection and retry soon.
                    warn!(error = %e, "cannot accept a connection");
                    registry.evict_idle();
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                        _ = stop.cancelled() => break,
                    }
                    continue;
                }
            },
        };
        if registry.len() >= max {
            if registry.evict_idle() {
                m::connection_evicted();
            } else {
                m::connection_shed();
                if let Ok(permit) = shed_slots.clone().try_acquire_owned() {
                    conns.spawn(shed(stream, permit));
                }
                continue;
            }
        }
        let _ = stream.set_nodelay(true);
        let tracked = registry.insert(next_id);
        next_id += 1;
        m::connection_opened();
        conns.spawn(serve_connection(
            http.clone(),
            WriteDeadline::new(stream, limits.write_timeout),
            service.clone(),
            tracked,
            stop.clone(),
        ));
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// Serves one connection until the client closes it, it is evicted, or the
/// server stops (then the request in flight finishes first).
async fn serve_connection<S>(
    http: hyper::server::conn::http1::Builder,
    stream: WriteDeadline<TcpStream>,
    service: S,
    tracked: Tracked,
    stop: CancellationToken,
) where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let in_flight = tracked.in_flight.clone();
    let hyper_service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let busy = Busy::new(in_flight.clone());
        let call = service.clone().oneshot(req);
        async move {
            let response = call.await?;
            Ok::<_, Infallible>(response.map(|body| Body::new(BusyBody { body, _busy: busy })))
        }
    });
    let connection = http.serve_connection(TokioIo::new(stream), hyper_service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                debug!(error = %e, "connection ended with an error");
            }
        }
        _ = tracked.evict.cancelled() => debug!("idle connection closed to make room"),
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
    drop(tracked);
}

/// Answers 503 with `Retry-After` on a connection over the cap, without
/// reading its request, and closes it.
async fn shed(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    let body = format!(
        "{{\"message\":\"the server has as many connections as it allows, all busy; retry in {OVERLOAD_RETRY_AFTER} s\",\"code\":\"overloaded\"}}"
    );
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: {OVERLOAD_RETRY_AFTER}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(SHED_WRITE_TIMEOUT, write).await;
}

/// A connection whose writes must make progress: a write (or flush) that
/// stays blocked for `timeout` fails with `TimedOut`, and hyper closes the
/// connection. Without it, a client that stops reading an event stream (or
/// any large answer) holds its connection and buffers forever: the kernel
/// keeps probing a zero receive window without end.
pub struct WriteDeadline<T> {
    io: T,
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteDeadline<T> {
    /// Wraps `io`.
    pub fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            stalled: None,
        }
    }

    /// After the inner write returned `poll`: progress resets the clock;
    /// a block starts it, and one longer than the timeout is an error.
    fn check<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        match poll {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        m::write_timed_out();
                        Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the client read nothing for the write timeout",
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Counts a request in flight on its connection until dropped.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection busy until it is sent or
/// dropped (an event stream is a request in flight for its whole life).
struct BusyBody {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for BusyBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_write_the_peer_never_reads_fails_after_the_timeout() {
        let (ours, _theirs) = tokio::io::duplex(1024);
        let mut io = WriteDeadline::new(ours, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let big = vec![b'x'; 1 << 20];
        let result = tokio::time::timeout(Duration::from_secs(5), io.write_all(&big))
            .await
            .expect("the write gives up by itself");
        let err = result.expect_err("nobody reads: the write cannot finish");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut io = WriteDeadline::new(ours, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let mut total = 0;
            while total < 16 * 1024 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                total += tokio::io::AsyncReadExt::read(&mut theirs, &mut buf)
                    .await
                    .unwrap();
            }
        });
        // 16 KiB at about 25 KiB/s: longer than the timeout, never blocked
        // for as long.
        io.write_all(&vec![b'x'; 16 * 1024])
            .await
            .expect("progressing writes pass");
        reader.await.unwrap();
    }
}
