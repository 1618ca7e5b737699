//! `assay worker`: executes runs from the shared database, serving no HTTP.
//! The scheduler is the one `assay serve` runs (see
//! [`assay_runner::node`]); API nodes started with `assay serve
//! --no-execute` leave the runs they create to it.

use anyhow::{Result, anyhow};
use assay_runner::Assembly;
use clap::Args;

use crate::app::redact;
use crate::cli::GlobalArgs;
use crate::cli::execution::ExecutionArgs;
use crate::exit::Exit;

/// Arguments of `assay worker`.
#[derive(Debug, Args)]
#[command(after_help = WORKER_HELP)]
pub struct WorkerArgs {
    /// How runs are executed (flags shared with `assay serve`).
    #[command(flatten)]
    pub execution: ExecutionArgs,
}

const WORKER_HELP: &str = "\
Examples:
  # API node and workers on one PostgreSQL database
  export ASSAY_DATABASE_URL=postgres://assay:secret@db/assay
  assay serve --addr 0.0.0.0:4111 --no-execute --plugins-dir /plugins
  assay worker --max-active-runs 8 --item-slots 512
  assay --log-format json worker               # one JSON object per log line

A worker claims pending runs (and runs whose process stopped without
finishing them) from the database and executes them, like `assay serve`
does, but serves no HTTP: no API, no /health, no /metrics (watch the queue
on an API node's --metrics-addr). Start as many as the work needs; the
database's claims and leases keep two processes from executing the same
items at once, and runs are claimed fairly between tenants across all of
them. A worker on
SQLite works too, on the machine that holds the file: it executes the runs
an `assay serve --no-execute` on the same file creates.

Runs that use secrets need the same secret key as the node the secrets were
set on (ASSAY_SECRET_KEY or --secret-key-file); without one their plugins
get no secret values.

Ctrl-C or SIGTERM stops it gracefully: it claims no new runs, in-flight items
get --grace to finish, then the rest are cancelled; unfinished runs stay
resumable and another worker takes them over. Details: docs/operations.md,
\"API nodes and workers\".";

/// Executes runs until Ctrl-C or SIGTERM.
pub async fn run(global: &GlobalArgs, args: WorkerArgs) -> Result<Exit> {
    let app = global.app_config();
    // A worker opens secrets for plugins but never seals any: it uses the
    // operator's key if there is one and creates none.
    let secret_key = global.secret_key.load_if_present()?;
    let has_secret_key = secret_key.is_some();
    let settings = args.execution.assembly(&app, secret_key)?;
    let assembly = Assembly::open(settings)
        .await
        .map_err(|e| anyhow!("cannot open the database: {e}"))?;
    assembly.register_shared_plugins(&app.plugin_dirs).await?;
    let config = args.execution.scheduler();
    let scheduler = assembly
        .start_scheduler(config)
        .map_err(|e| anyhow!("cannot start the plugin host: {e}"))?;
    tracing::info!(
        backend = assembly.store().backend(),
        owner = scheduler.executor().owner(),
        max_active_runs = config.max_active_runs,
        "worker started"
    );
    eprintln!(
        "assay worker: executing runs from {} (up to {} at once, as {}); Ctrl-C to stop",
        redact(&app.assembly.database_url),
        config.max_active_runs,
        scheduler.executor().owner()
    );
    if !has_secret_key {
        eprintln!(
            "  no secret key (ASSAY_SECRET_KEY, --secret-key-file): plugins get no secret values"
        );
    }
    assay_api::shutdown_signal().await;
    eprintln!(
        "Stopping (in-flight items get {}s to finish)...",
        args.execution.grace.as_secs()
    );
    scheduler.shutdown(args.execution.grace).await;
    Ok(Exit::Success)
}
