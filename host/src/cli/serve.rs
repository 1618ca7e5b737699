//! `assay serve`: the HTTP API on the same database the CLI uses.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, anyhow};
use assay_api::{AuthMode, CorsPolicy, DEFAULT_ADDR, ServeConfig, ServerLimits};
use clap::Args;

use crate::app::redact;
use crate::cli::GlobalArgs;
use crate::cli::args::parse_duration;
use crate::cli::execution::ExecutionArgs;
use crate::exit::Exit;

/// Arguments of `assay serve`.
#[derive(Debug, Args)]
#[command(after_help = SERVE_HELP)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value_t = DEFAULT_ADDR, value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    /// Serve the API only: execute no runs here; the runs triggered through
    /// it wait as pending until an `assay worker` (or another `assay serve`)
    /// on the same database executes them
    #[arg(long, conflicts_with_all = ["max_active_runs", "max_takeovers", "item_slots", "keep_resident_mib"])]
    pub no_execute: bool,
    /// How runs are executed (flags shared with `assay worker`).
    #[command(flatten)]
    pub execution: ExecutionArgs,
    /// Largest request body accepted, in MiB
    #[arg(long, default_value_t = assay_api::DEFAULT_BODY_LIMIT / (1 << 20), value_name = "MIB")]
    pub body_limit_mib: usize,
    /// No authentication: every request acts as the `default` tenant's admin (loopback addresses only)
    #[arg(long, conflicts_with = "trust_tenant_header")]
    pub no_auth: bool,
    /// Honour `x-assay-tenant` (and `x-assay-role`) set by an authenticating proxy in front
    #[arg(long)]
    pub trust_tenant_header: bool,
    /// Origin whose web pages may call the API from a browser, as
    /// scheme://host[:port] or `*` for any (repeatable) [default: none]
    #[arg(long = "cors-origin", value_name = "ORIGIN", value_parser = parse_cors_origin)]
    pub cors_origins: Vec<String>,
    /// Host name the server answers to, against DNS rebinding (repeatable;
    /// `*` for any) [default on loopback: localhost, 127.0.0.1, ::1 and the
    /// bound address; elsewhere: any]
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Open connections at once (lowered to the open-file limit); at the cap
    /// the longest-idle connection is closed, or a new one gets 503
    #[arg(long, default_value_t = ServerLimits::default().max_connections, value_name = "N")]
    pub max_connections: usize,
    /// Requests handled at once (not counting /health and /metrics); more get 503 with Retry-After
    #[arg(long, default_value_t = ServerLimits::default().max_requests, value_name = "N")]
    pub max_requests: usize,
    /// Time a client has to send a request head (also how long an idle connection is kept)
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub header_timeout: Duration,
    /// Longest pause between two parts of a request body (408 after it)
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub body_timeout: Duration,
    /// Longest a write to a client may make no progress (a client that stopped reading); then the connection is closed
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub write_timeout: Duration,
    /// Event streams (SSE) open at once in the process; more get 503 with Retry-After
    #[arg(long, default_value_t = ServerLimits::default().max_event_streams, value_name = "N")]
    pub max_event_streams: usize,
    /// Event streams (SSE) open at once per tenant; more get 429 with Retry-After
    #[arg(long, default_value_t = ServerLimits::default().max_event_streams_per_tenant, value_name = "N")]
    pub max_event_streams_per_tenant: usize,
    /// Serve Prometheus metrics at http://ADDR/metrics, apart from the API
    /// (every tenant's labels: keep it on the operator's network) [default: off]
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<SocketAddr>,
    /// Longest time to answer a request (event streams: to start answering); 503 after it
    #[arg(long, value_parser = parse_duration, default_value = "2m", value_name = "DURATION")]
    pub request_timeout: Duration,
}

fn parse_cors_origin(value: &str) -> Result<String, String> {
    CorsPolicy::from_origins(&[value])
        .map(|_| value.to_string())
        .map_err(|e| e.to_string())
}

const SERVE_HELP: &str = "\
Examples:
  assay serve --no-auth                       # local development, as tenant `default`
  assay tenant create team-a && assay key create --tenant team-a --role admin
  assay serve --addr 0.0.0.0:8080 --plugins-dir target/wasm32-wasip2/plugin
  assay serve --no-auth --cors-origin http://localhost:3000
  ASSAY_DATABASE_URL=postgres://assay:secret@db/assay assay serve --max-active-runs 8
  ASSAY_DATABASE_URL=postgres://assay:secret@db/assay assay serve --no-execute   # + `assay worker`s

Security model (details: docs/tenancy.md):
  Every /api route needs `Authorization: Bearer <API key>` and acts as the
  key's tenant: 401 without a key or with an unknown or revoked one; 403 when
  the key's role may not act (viewer: read only; member: datasets, runs, the
  tenant's plugins; admin: also the tenant's keys); another tenant's ids are
  404. /health is open. Tenants and keys are created by the operator with
  `assay tenant create` and `assay key create` on the same database, never by
  a request. --no-auth (acting as `default`) is refused on any address but
  loopback; --trust-tenant-header is for a proxy that authenticates callers
  and sets or strips `x-assay-tenant`/`x-assay-role` itself.

  A tenant can: manage its own datasets, items, runs and plugins; use the
  shared plugins (those of --plugins-dir, and `assay plugin add --shared`).
  A tenant cannot: see or touch another tenant's data; replace or delete a
  shared plugin (an upload with a shared plugin's id is a 409); exceed its
  limits (`assay tenant limits NAME --set key=value`: items in flight, active
  and queued runs, datasets, items per dataset, stored bytes, plugins, plugin
  bytes; over a limit: 422 naming it, a trigger over queued-runs: 429 with
  Retry-After); ask a run for more than the ceilings below (422 naming the
  ceiling). Plugins run sandboxed: no network, files or clock beyond WASI's.

  Uploads are guarded: a component over --max-plugin-mib is refused (413)
  before compiling; at most --compile-concurrency compile at once, each
  within --compile-timeout, on threads apart from request handling; the
  same bytes uploaded concurrently compile once. Compiled code is kept in
  memory within --plugin-memory-mib and on disk within --plugin-cache-mib
  (private to the user; an entry the host did not write is not loaded).

Many or slow clients are bounded (details: docs/operations.md): a request
head must arrive within --header-timeout, a body may not pause longer than
--body-timeout, an answer must start within --request-timeout; at
--max-connections the longest-idle connection is closed to make room; over
--max-requests in flight a request gets 503 with Retry-After at once;
/health is outside these limits. Event streams are capped in total and per
tenant. --metrics-addr serves Prometheus metrics (every tenant's labels)
on an address of its own; --otlp-endpoint exports a trace span per run
and per plugin call over OTLP/HTTP.

The server executes the runs triggered through it (and resumes runs an
earlier process left unfinished). Runs started with `assay run` against the
same database show up in the API, and runs triggered through the API show up
in `assay runs list`. Ctrl-C or SIGTERM stops it gracefully: in-flight items
get --grace to finish, unfinished runs stay resumable.

With --no-execute it only serves the API: triggered runs wait as pending
until an `assay worker` (or another `assay serve`) on the same PostgreSQL
database claims them; cancel still works (a pending run is cancelled at
once, a running one by its worker within a lease renewal). Details:
docs/operations.md, \"API nodes and workers\".

The playground (a web UI over the same API) is served at `/`; it asks for an
API key and keeps it in the browser tab's session storage (with --no-auth it
needs none). A page of another origin may call the API only if that origin
is given with --cors-origin; on loopback only the loopback host names are
answered (--allowed-host), against DNS rebinding.";

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(global: &GlobalArgs, args: ServeArgs) -> Result<Exit> {
    let app = global.app_config();
    let secret_key = global.secret_key.load()?;
    let assembly = args.execution.assembly(&app, Some(secret_key.clone()))?;
    let scheduler = args.execution.scheduler();
    let config = ServeConfig {
        addr: args.addr,
        assembly,
        plugin_dirs: app.plugin_dirs.clone(),
        execute: !args.no_execute,
        max_active_runs: scheduler.max_active_runs,
        max_takeovers: scheduler.max_takeovers,
        grace: args.execution.grace,
        body_limit_bytes: args.body_limit_mib.max(1) << 20,
        auth: if args.no_auth {
            AuthMode::Disabled
        } else if args.trust_tenant_header {
            AuthMode::KeysOrTenantHeader
        } else {
            AuthMode::Keys
        },
        cors: CorsPolicy::from_origins(&args.cors_origins)?,
        allowed_hosts: args.allowed_hosts.clone(),
        secret_key: Some(secret_key),
        limits: ServerLimits {
            max_connections: args.max_connections.max(1),
            max_requests: args.max_requests.max(1),
            header_timeout: args.header_timeout,
            body_timeout: args.body_timeout,
            request_timeout: args.request_timeout,
            write_timeout: args.write_timeout,
            max_event_streams: args.max_event_streams.max(1),
            max_event_streams_per_tenant: args.max_event_streams_per_tenant.max(1),
        },
        metrics_addr: args.metrics_addr,
        ..ServeConfig::default()
    };
    // Each connection is a file descriptor: use all the process may have
    // (the soft limit is often 1024 while the hard one is far higher).
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "cannot raise the open-file limit");
    }
    let config_auth = config.auth;
    let server = assay_api::start(config)
        .await
        .map_err(|e| anyhow!("cannot start the server: {e}"))?;
    eprintln!(
        "assay serve: listening on {} (database {}); Ctrl-C to stop",
        server.url(),
        redact(&app.assembly.database_url)
    );
    eprintln!(
        "  playground at {}/, API under {}/api, OpenAPI document at {}/api/openapi.json",
        server.url(),
        server.url(),
        server.url()
    );
    if let Some(addr) = server.metrics_addr() {
        eprintln!("  metrics at http://{addr}/metrics");
    }
    if args.no_execute {
        eprintln!(
            "  executing no runs here (--no-execute): triggered runs wait as pending for `assay worker` on this database"
        );
    }
    match config_auth {
        AuthMode::Disabled => {
            eprintln!("  no authentication (--no-auth): every request acts as tenant `default`")
        }
        AuthMode::Keys => eprintln!(
            "  requests need `Authorization: Bearer <key>` (create one with `assay key create --tenant default`)"
        ),
        AuthMode::KeysOrTenantHeader => eprintln!(
            "  API keys, or `x-assay-tenant` from the trusted proxy in front (--trust-tenant-header)"
        ),
    }
    assay_api::shutdown_signal().await;
    if args.no_execute {
        eprintln!("Stopping...");
    } else {
        eprintln!(
            "Stopping (in-flight items get {}s to finish)...",
            args.execution.grace.as_secs()
        );
    }
    server
        .shutdown()
        .await
        .map_err(|e| anyhow!("the server stopped with an error: {e}"))?;
    Ok(Exit::Success)
}
