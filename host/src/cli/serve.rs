//! `assay serve`: the HTTP API on the same database the CLI uses.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, anyhow};
use assay_api::{CorsPolicy, DEFAULT_ADDR, ServeConfig};
use clap::Args;

use crate::app::{normalize_database_url, redact};
use crate::cli::GlobalArgs;
use crate::cli::args::parse_duration;
use crate::exit::Exit;

/// Arguments of `assay serve`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  assay serve
  assay serve --addr 0.0.0.0:8080 --plugins-dir target/wasm32-wasip2/plugin
  assay serve --cors-origin http://localhost:3000
  ASSAY_DATABASE_URL=postgres://assay:secret@db/assay assay serve --max-active-runs 8

The server executes the runs triggered through it (and resumes runs an
earlier process left unfinished). Runs started with `assay run` against the
same database show up in the API, and runs triggered through the API show up
in `assay runs list`. Ctrl-C or SIGTERM stops it gracefully: in-flight items
get --grace to finish, unfinished runs stay resumable.

The playground (a web UI over the same API) is served at `/`.

The API is unauthenticated: keep it on localhost or behind a proxy.")]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value_t = DEFAULT_ADDR, value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    /// Runs executed at once (more wait as pending)
    #[arg(long, default_value_t = assay_api::config::DEFAULT_MAX_ACTIVE_RUNS, value_name = "N")]
    pub max_active_runs: usize,
    /// Items in flight at once across all runs
    #[arg(long, default_value_t = assay_runner::executor::DEFAULT_PROCESS_ITEM_SLOTS, value_name = "N")]
    pub item_slots: usize,
    /// At shutdown, how long in-flight items may take to finish
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub grace: Duration,
    /// Largest request body accepted, in MiB
    #[arg(long, default_value_t = assay_api::DEFAULT_BODY_LIMIT / (1 << 20), value_name = "MIB")]
    pub body_limit_mib: usize,
    /// Origin whose web pages may call the API from a browser, as
    /// scheme://host[:port] or `*` for any (repeatable) [default: none]
    #[arg(long = "cors-origin", value_name = "ORIGIN", value_parser = parse_cors_origin)]
    pub cors_origins: Vec<String>,
    /// Host name the server answers to, against DNS rebinding (repeatable;
    /// `*` for any) [default on loopback: localhost, 127.0.0.1, ::1 and the
    /// bound address; elsewhere: any]
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
}

fn parse_cors_origin(value: &str) -> Result<String, String> {
    CorsPolicy::from_origins(&[value])
        .map(|_| value.to_string())
        .map_err(|e| e.to_string())
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(global: &GlobalArgs, args: ServeArgs) -> Result<Exit> {
    let app = global.app_config();
    let database_url = normalize_database_url(&app.database_url)?;
    let config = ServeConfig {
        addr: args.addr,
        database_url,
        plugin_dirs: app.plugin_dirs.clone(),
        cache_dir: app.cache_dir.clone(),
        max_active_runs: args.max_active_runs.max(1),
        process_item_slots: args.item_slots.max(1),
        grace: args.grace,
        body_limit_bytes: args.body_limit_mib.max(1) << 20,
        run_lease: app.run_lease,
        cors: CorsPolicy::from_origins(&args.cors_origins)?,
        allowed_hosts: args.allowed_hosts.clone(),
        ..ServeConfig::default()
    };
    let server = assay_api::start(config)
        .await
        .map_err(|e| anyhow!("cannot start the server: {e}"))?;
    eprintln!(
        "assay serve: listening on {} (database {}); Ctrl-C to stop",
        server.url(),
        redact(&app.database_url)
    );
    eprintln!(
        "  playground at {}/, API under {}/api, OpenAPI document at {}/api/openapi.json",
        server.url(),
        server.url(),
        server.url()
    );
    assay_api::shutdown_signal().await;
    eprintln!(
        "Stopping (in-flight items get {}s to finish)...",
        args.grace.as_secs()
    );
    server
        .shutdown()
        .await
        .map_err(|e| anyhow!("the server stopped with an error: {e}"))?;
    Ok(Exit::Success)
}
