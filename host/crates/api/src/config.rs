//! Settings of `assay serve` ([`ServeConfig`]) and of the router
//! ([`ApiOptions`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use assay_runner::{AssemblySettings, SecretKey};

use crate::auth::AuthMode;
use crate::cors::CorsPolicy;
use crate::host_check::HostPolicy;

/// The address `assay serve` listens on by default (Mastra's dev port).
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 4111);
/// Default cap on a request body (bulk item uploads, plugin uploads).
pub const DEFAULT_BODY_LIMIT: usize = 64 << 20;
/// Default number of runs this process executes at once.
pub const DEFAULT_MAX_ACTIVE_RUNS: usize = 4;
/// Default grace period for in-flight items at shutdown.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How `assay serve` protects itself from many, idle or slow clients (see
/// `docs/operations.md`). Each limit answers before the process runs out of
/// file descriptors, memory or database connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Open connections at once. At the cap, the longest-idle connection
    /// (no request in flight: a keep-alive connection between requests, or
    /// a client still sending its request head) is closed to make room;
    /// when every connection has a request in flight, the new one gets a
    /// 503 with `Retry-After` and is closed. Lowered to what the process's
    /// open-file limit allows.
    pub max_connections: usize,
    /// Requests handled at once (outside `/health` and `/metrics`); over
    /// it: 503 `overloaded` with `Retry-After`, at once.
    pub max_requests: usize,
    /// A client must send a whole request head within this time, counted
    /// from the connection's start or the end of its previous response
    /// (also what an idle keep-alive connection is kept).
    pub header_timeout: Duration,
    /// Longest pause between two parts of a request body (408 after it).
    pub body_timeout: Duration,
    /// Longest time from a request's head to its answer's head (an event
    /// stream's body is not counted); 503 `timeout` after it.
    pub request_timeout: Duration,
    /// Longest a write to a client may make no progress (a client that
    /// stopped reading an event stream or a large answer); the connection
    /// is closed after it.
    pub write_timeout: Duration,
    /// Event streams open at once in the process (over it: 503
    /// `too_many_streams` with `Retry-After`).
    pub max_event_streams: usize,
    /// Event streams open at once per tenant (over it: 429
    /// `too_many_streams` with `Retry-After`).
    pub max_event_streams_per_tenant: usize,
}

/// Seconds a client told `Retry-After` waits before trying again after a
/// 503 for overload.
pub const OVERLOAD_RETRY_AFTER: u32 = 1;

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_requests: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(30),
            max_event_streams: 1024,
            max_event_streams_per_tenant: 64,
        }
    }
}

/// Everything [`crate::serve`] needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen (`127.0.0.1:4111` by default; port 0 picks a free one).
    pub addr: SocketAddr,
    /// Store, plugin host and executor settings, shared with the command
    /// line (see [`assay_runner::assembly`]).
    pub assembly: AssemblySettings,
    /// Directories whose `*.wasm` plugins are registered for the default
    /// tenant at start (a bad file is logged and skipped).
    pub plugin_dirs: Vec<PathBuf>,
    /// Whether this process executes runs (a scheduler claims them from
    /// the database). Off (`--no-execute`): an API-only node; the runs it
    /// creates wait as `pending` for a worker on the same database.
    pub execute: bool,
    /// Runs this process executes at once (more wait as `pending`).
    pub max_active_runs: usize,
    /// Takeovers after which a run is failed instead of resumed (see
    /// [`assay_runner::SchedulerConfig::max_takeovers`]).
    pub max_takeovers: i64,
    /// At shutdown, how long in-flight items may take to finish before they
    /// are cancelled (their runs stay resumable either way).
    pub grace: Duration,
    /// Largest request body accepted (larger: 413).
    pub body_limit_bytes: usize,
    /// How often a run's event stream looks for new results.
    pub sse_poll_interval: Duration,
    /// How callers authenticate ([`AuthMode::Disabled`] is refused unless
    /// `addr` is loopback).
    pub auth: AuthMode,
    /// Origins whose web pages may call the API (`--cors-origin`; none by
    /// default).
    pub cors: CorsPolicy,
    /// `--allowed-host` values (`Host` names answered; empty: the loopback
    /// names and the bound address on loopback, any host elsewhere).
    pub allowed_hosts: Vec<String>,
    /// The key secrets are sealed with (`assay serve` loads it from
    /// `--secret-key-file` / `ASSAY_SECRET_KEY`, or the generated file).
    pub secret_key: Option<SecretKey>,
    /// Connection and request limits and timeouts.
    pub limits: ServerLimits,
    /// Where `GET /metrics` is served (`--metrics-addr`; none by default).
    /// A listener of its own: the metrics carry every tenant's labels, so
    /// only the operator's network should reach them.
    pub metrics_addr: Option<SocketAddr>,
}

impl ServeConfig {
    /// The router settings this configuration asks for.
    pub fn api_options(&self) -> ApiOptions {
        ApiOptions {
            body_limit_bytes: self.body_limit_bytes,
            sse_poll_interval: self.sse_poll_interval,
            auth: self.auth,
            cors: self.cors.clone(),
            hosts: HostPolicy::for_addr(self.addr, &self.allowed_hosts),
            secret_key: self.secret_key.clone(),
            limits: self.limits.clone(),
            ..ApiOptions::default()
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR,
            assembly: AssemblySettings::default(),
            plugin_dirs: Vec::new(),
            execute: true,
            max_active_runs: DEFAULT_MAX_ACTIVE_RUNS,
            max_takeovers: assay_runner::DEFAULT_MAX_TAKEOVERS,
            grace: DEFAULT_GRACE,
            body_limit_bytes: DEFAULT_BODY_LIMIT,
            sse_poll_interval: ApiOptions::default().sse_poll_interval,
            auth: AuthMode::default(),
            cors: CorsPolicy::Disabled,
            allowed_hosts: Vec::new(),
            secret_key: None,
            limits: ServerLimits::default(),
            metrics_addr: None,
        }
    }
}

/// Settings of the router itself.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Largest request body accepted (larger: 413).
    pub body_limit_bytes: usize,
    /// How often a run's event stream looks for new results.
    pub sse_poll_interval: Duration,
    /// How often an idle event stream sends a keep-alive comment.
    pub sse_keep_alive: Duration,
    /// How callers authenticate.
    pub auth: AuthMode,
    /// Cross-origin access.
    pub cors: CorsPolicy,
    /// `Host` names answered (DNS-rebinding defence).
    pub hosts: HostPolicy,
    /// The key secrets are sealed with (`None`: setting a secret is a 503).
    pub secret_key: Option<SecretKey>,
    /// Connection and request limits and timeouts.
    pub limits: ServerLimits,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            body_limit_bytes: DEFAULT_BODY_LIMIT,
            sse_poll_interval: Duration::from_millis(200),
            sse_keep_alive: Duration::from_secs(15),
            auth: AuthMode::default(),
            cors: CorsPolicy::Disabled,
            hosts: HostPolicy::for_addr::<&str>(DEFAULT_ADDR, &[]),
            secret_key: None,
            limits: ServerLimits::default(),
        }
    }
}
