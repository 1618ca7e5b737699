//! Starting and stopping the server: [`serve`] for `assay serve`, [`start`]
//! for tests and benches (a server on a chosen port, stopped on demand).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use assay_plugin_host::LoadError;
use assay_runner::{Assembly, SchedulerConfig, SharedPluginsError};
use assay_store::StoreError;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::ServeConfig;
use crate::routes::router;
use crate::state::AppState;

/// Why the server could not start (or stopped with an error).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database could not be opened or migrated.
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    /// The wasm engine could not be set up.
    #[error("cannot start the plugin host: {0}")]
    PluginHost(#[from] LoadError),
    /// A plugin directory could not be read.
    #[error("cannot read plugin directory {}: {source}", path.display())]
    PluginDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `--no-auth` on an address other than loopback.
    #[error(
        "refusing to serve {addr} without authentication: --no-auth is only allowed on a \
         loopback address (127.0.0.1, ::1); create an API key with `assay key create` instead"
    )]
    NoAuthOffLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The HTTP server failed.
    #[error("HTTP server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Assembles the store, plugin host, catalog and executor (see
/// [`assay_runner::Assembly`]), registers the plugins of
/// `config.plugin_dirs` as shared plugins and, unless `config.execute` is
/// off, starts the scheduler (which also resumes runs interrupted by an
/// earlier process). Without a scheduler this process only serves the API:
/// the runs it creates wait as `pending` for another process (`assay
/// worker`, another `assay serve`) on the same database.
pub async fn build_state(config: &ServeConfig) -> Result<AppState, ServeError> {
    let assembly = Assembly::open(config.assembly.clone()).await?;
    let store = assembly.store().clone();
    info!(backend = store.backend(), "database ready");
    assembly
        .register_shared_plugins(&config.plugin_dirs)
        .await
        .map_err(|e| match e {
            SharedPluginsError::PluginHost(e) => ServeError::PluginHost(e),
            SharedPluginsError::Dir { path, source } => ServeError::PluginDir { path, source },
        })?;
    let options = config.api_options();
    if !config.execute {
        info!("executing no runs here (--no-execute): runs wait for a worker");
        return Ok(AppState::without_scheduler(
            store,
            assembly.catalog()?,
            options,
        ));
    }
    let scheduler = assembly.start_scheduler(SchedulerConfig {
        max_active_runs: config.max_active_runs,
        max_takeovers: config.max_takeovers,
    })?;
    Ok(AppState::new(store, scheduler, options))
}

/// A server running in the background.
pub struct RunningServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    state: AppState,
    grace: Duration,
    task: JoinHandle<std::io::Result<()>>,
    metrics_task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningServer {
    /// The address it listens on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address `GET /metrics` is served on, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared state (store, catalog, scheduler if this node executes
    /// runs).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Graceful stop: accept no new connections, end event streams, let
    /// requests in progress finish, and stop the scheduler (if this node
    /// executes runs): in-flight items get the grace period to finish,
    /// unfinished runs stay resumable.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        info!(grace = ?self.grace, "shutting down");
        self.state.shutdown_token().cancel();
        if let Some(metrics) = self.metrics_task {
            metrics.abort();
        }
        let mut task = self.task;
        let grace = self.grace;
        let http = async move {
            match tokio::time::timeout(grace, &mut task).await {
                Ok(Ok(result)) => result,
                Ok(Err(join)) => Err(std::io::Error::other(join)),
                Err(_) => {
                    warn!("connections still open after the grace period; closing them");
                    task.abort();
                    Ok(())
                }
            }
        };
        let scheduler = async {
            if let Some(scheduler) = self.state.scheduler() {
                scheduler.shutdown(grace).await;
            }
        };
        let (http, ()) = tokio::join!(http, scheduler);
        info!("stopped");
        Ok(http?)
    }
}

/// Binds `config.addr`, builds the state (see [`build_state`]) and serves in
/// the background.
pub async fn start(config: ServeConfig) -> Result<RunningServer, ServeError> {
    check_auth(&config)?;
    let listener = bind(config.addr).await?;
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    if metrics_listener.is_some() {
        // Installed before anything is recorded, so nothing is missed.
        crate::metrics::handle();
    }
    let state = build_state(&config).await?;
    let mut server = spawn(listener, state, config.grace);
    if let Some(listener) = metrics_listener {
        server.metrics_addr = listener.local_addr().ok();
        let limits = crate::config::ServerLimits {
            max_connections: METRICS_MAX_CONNECTIONS,
            max_requests: METRICS_MAX_CONNECTIONS,
            ..server.state.options().limits.clone()
        };
        let app = crate::metrics::router(server.state.clone());
        let stop = server.state.shutdown_token().clone();
        server.metrics_task = Some(tokio::spawn(crate::conn::accept_loop(
            listener, app, limits, stop,
        )));
        info!(addr = ?server.metrics_addr, "metrics at /metrics");
    }
    Ok(server)
}

/// Connections to the metrics address at once (scrapers, not clients).
const METRICS_MAX_CONNECTIONS: usize = 32;

/// Serves `state` on `addr` in the background (tests and benches that build
/// their own state).
pub async fn start_with_state(
    addr: SocketAddr,
    state: AppState,
    grace: Duration,
) -> Result<RunningServer, ServeError> {
    let listener = bind(addr).await?;
    Ok(spawn(listener, state, grace))
}

/// Refuses to serve without authentication anywhere but on loopback.
pub fn check_auth(config: &ServeConfig) -> Result<(), ServeError> {
    if config.auth == crate::auth::AuthMode::Disabled && !crate::auth::is_loopback(&config.addr) {
        return Err(ServeError::NoAuthOffLoopback { addr: config.addr });
    }
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

fn spawn(listener: TcpListener, state: AppState, grace: Duration) -> RunningServer {
    let addr = listener.local_addr().unwrap_or_else(|_| {
        // Only fails for unbound sockets; `bind` succeeded.
        SocketAddr::from(([127, 0, 0, 1], 0))
    });
    let app = router(state.clone());
    let stop = state.shutdown_token().clone();
    let limits = state.options().limits.clone();
    let task = tokio::spawn(crate::conn::accept_loop(listener, app, limits, stop));
    info!(%addr, "listening");
    RunningServer {
        addr,
        metrics_addr: None,
        state,
        grace,
        task,
        metrics_task: None,
    }
}

/// `assay serve`: starts the server and runs until SIGINT or SIGTERM, then
/// shuts down gracefully (see [`RunningServer::shutdown`]).
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let server = start(config).await?;
    shutdown_signal().await;
    server.shutdown().await
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("SIGINT received"),
        _ = term => info!("SIGTERM received"),
    }
}
