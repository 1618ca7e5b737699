//! Keep-alive connections for a plugin's outbound requests.
//!
//! Every plugin call is a fresh instance, so without a pool every request
//! of every item opened its own TCP connection (and, for https, its own TLS
//! handshake), and closed it at the end of the call: against a model API
//! that is a round trip or three and a few hundred microseconds of CPU per
//! item, on both sides. The pool keeps the connection once its response has
//! been read to the end and hands it to the next request for the same
//! scheme, host and address.
//!
//! A pool belongs to one [`crate::NetworkAccess`] (the runner builds one
//! per run and plugin and clones it per call), so connections are reused
//! between the calls of one run's plugin and never across runs or tenants.
//! A connection is reused only for a request that passed every check a new
//! one passes (grant, address checks on a fresh resolution): the key holds
//! the address it was opened to. A response that was not read to its end,
//! failed a limit, or was dropped (a cancelled call) takes its connection
//! with it: hyper closes it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;

use crate::grant::Scheme;
use crate::net_send::LimitedRequest;

/// How long an idle connection is kept. Common servers close idle
/// keep-alive connections after 2 to 5 s (gunicorn, Node, uvicorn), and a
/// request sent as the server closes fails; staying under that makes the
/// race rare (and a request the connection never took is sent again on a
/// new one, see `net_send`).
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Idle connections kept per key: about the most requests one run has in
/// flight to one host.
const MAX_IDLE_PER_KEY: usize = 512;

/// Idle connections kept by one pool in all (a wildcard grant may reach
/// many hosts).
const MAX_IDLE: usize = 1024;

/// How long a pooled connection may take to become ready for its next
/// request (it is idle once its last response was read, so at once; a
/// connection that is not is dropped).
const READY_WAIT: Duration = Duration::from_millis(100);

/// Where a connection goes: requests share it only if all three match.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub(crate) scheme: Scheme,
    /// The host name as requested (the TLS server name and `Host`).
    pub(crate) host: String,
    /// The checked address the connection was opened to.
    pub(crate) address: SocketAddr,
}

/// A connection: the handle requests are sent through, and its I/O task,
/// aborted when the connection is dropped (evicted from the pool, or its
/// response dropped or cut off midway). Without the abort the task would
/// outlive a cancelled call whenever the peer stops reading.
pub(crate) struct Connection {
    pub(crate) sender: SendRequest<LimitedRequest>,
    task: tokio::task::AbortHandle,
}

impl Connection {
    pub(crate) fn new(sender: SendRequest<LimitedRequest>, task: tokio::task::AbortHandle) -> Self {
        Self { sender, task }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Idle {
    connection: Connection,
    since: Instant,
}

impl Idle {
    fn usable(&self) -> bool {
        self.since.elapsed() <= IDLE_TIMEOUT && !self.connection.sender.is_closed()
    }
}

/// Idle keep-alive connections by destination.
#[derive(Default)]
pub struct ConnectionPool {
    idle: Mutex<HashMap<PoolKey, Vec<Idle>>>,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("idle", &self.idle_count())
            .finish()
    }
}

impl ConnectionPool {
    /// A connection to `key` ready for a request, if one is idle. Closed
    /// and expired ones are dropped on the way; the most recently used is
    /// tried first (the likeliest to be alive).
    pub(crate) async fn checkout(&self, key: &PoolKey) -> Option<Connection> {
        loop {
            let idle = {
                let mut pool = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                let list = pool.get_mut(key)?;
                let idle = list.pop();
                if list.is_empty() {
                    pool.remove(key);
                }
                idle?
            };
            if !idle.usable() {
                continue;
            }
            let mut connection = idle.connection;
            if let Ok(Ok(())) = tokio::time::timeout(READY_WAIT, connection.sender.ready()).await {
                return Some(connection);
            }
        }
    }

    /// Keeps `sender` for the next request to `key` (its response was
    /// read to the end).
    /// Expired and closed connections are dropped on the way (of every
    /// key: one nobody asks for again must not keep its sockets).
    pub(crate) fn checkin(&self, key: PoolKey, connection: Connection) {
        if connection.sender.is_closed() {
            return;
        }
        let mut pool = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        pool.retain(|_, list| {
            list.retain(Idle::usable);
            !list.is_empty()
        });
        let total: usize = pool.values().map(Vec::len).sum();
        let list = pool.entry(key).or_default();
        if list.len() < MAX_IDLE_PER_KEY && total < MAX_IDLE {
            list.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    }

    /// Idle connections held now.
    pub fn idle_count(&self) -> usize {
        let pool = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        pool.values().map(Vec::len).sum()
    }
}
