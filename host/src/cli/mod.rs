//! The `assay` command line: argument definitions and dispatch. One module
//! per command group.

pub mod args;
pub mod cache;
pub mod completions;
pub mod concurrency;
pub mod dataset;
pub mod exec;
pub mod execution;
pub mod grant;
pub mod plugin;
pub mod plugin_new;
pub mod plugin_test;
pub mod rescore;
pub mod run;
pub mod runs;
pub mod secret;
pub mod serve;
pub mod tenant;
pub mod worker;

use std::path::PathBuf;

use anyhow::Result;
use assay_runner::AssemblySettings;
use clap::{Args, Parser, Subcommand};

use crate::app::{App, AppConfig, default_cache_dir, default_database_url};
use crate::exit::Exit;
use crate::logging::LogFormat;

const ROOT_AFTER_HELP: &str = "\
Examples:
  # Run a JSONL file through a target and a scorer, with a summary table
  assay run --dataset examples/capitals.jsonl \\
      --target target/wasm32-wasip2/plugin/echo.wasm \\
      --scorer target/wasm32-wasip2/plugin/exact_match.wasm

  # Register plugins once, then use their ids; gate CI on a mean score
  assay plugin add target/wasm32-wasip2/plugin/*.wasm
  assay run -d examples/capitals.csv -t echo -s exact-match --fail-under exact-match=0.8

  # Look back: list runs, compare two of them
  assay runs list
  assay runs compare <run-a> <run-b>

  # Share one server between teams: tenants, keys, limits
  assay tenant create team-a --set queued-runs=50
  assay key create --tenant team-a --role admin
  assay serve --addr 0.0.0.0:4111 --plugins-dir target/wasm32-wasip2/plugin

  # Scale out on PostgreSQL: an API node that executes nothing, and workers
  assay serve --no-execute & assay worker & assay worker

Environment:
  ASSAY_DATABASE_URL  database (same as --database-url)
  ASSAY_PLUGINS_DIR   directory searched for <id>.wasm (same as --plugins-dir)
  ASSAY_CACHE_DIR     compiled-plugin cache (same as --cache-dir)
  ASSAY_RUN_LEASE     lease of a run this process executes (same as --run-lease, default 15s)
  ASSAY_LOG, RUST_LOG log filter for stderr, e.g. ASSAY_LOG=debug or assay_runner=debug

Exit codes:
  0    success
  1    error (bad input, unknown id, unusable plugin, failed or cancelled run)
  2    usage error (unknown flag, bad value)
  3    a quality gate was missed (--fail-under, runs compare --fail-on-regression)
  4    some items failed and --fail-on-errors was given
  130  interrupted by Ctrl-C (the run is stored as cancelled)

The CLI and `assay serve` share one database: runs started in either are
visible in both.";

/// Longest one plugin load may take in a command-line process.
const CLI_COMPILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
/// Run evaluation datasets through sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(
    name = "assay",
    version,
    about = "Run evaluation datasets through sandboxed WebAssembly plugins",
    after_help = ROOT_AFTER_HELP,
    arg_required_else_help = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Database: sqlite://path/file.db, a plain file path (SQLite) or postgres://user:pass@host/db
    #[arg(
        long,
        global = true,
        env = "ASSAY_DATABASE_URL",
        value_name = "URL",
        default_value_t = default_database_url(),
        hide_env_values = true
    )]
    pub database_url: String,

    /// Directory searched for `<id>.wasm` when a plugin id is not registered (repeatable)
    #[arg(
        long = "plugins-dir",
        global = true,
        env = "ASSAY_PLUGINS_DIR",
        value_name = "DIR"
    )]
    pub plugins_dir: Vec<PathBuf>,

    /// Cache of compiled plugins [default: the user's cache directory, assay/]
    #[arg(long, global = true, env = "ASSAY_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not cache compiled plugins on disk
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// Log lines on stderr as text for people, or one JSON object per line
    /// (with the run id and tenant of a run's lines) for log collectors
    #[arg(
        long,
        global = true,
        env = "ASSAY_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,

    /// Export traces (a span per run and per plugin call) over OTLP/HTTP to
    /// this collector base URL, e.g. http://localhost:4318 (`/v1/traces` is
    /// appended) [default: off]
    #[arg(
        long,
        global = true,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        value_name = "URL"
    )]
    pub otlp_endpoint: Option<String>,

    /// Tenant the command acts for [default: default]; `assay key` commands: the key's tenant
    #[arg(long, global = true, env = "ASSAY_TENANT", value_name = "NAME")]
    pub tenant: Option<String>,

    /// Lease of a run executed by this process: after a crash, another
    /// process can resume the run once it lapses
    #[arg(long, global = true, env = "ASSAY_RUN_LEASE", default_value = "15s", value_parser = args::parse_duration)]
    pub run_lease: std::time::Duration,

    /// Where the key secrets are sealed with comes from.
    #[command(flatten)]
    pub secret_key: secret::SecretKeyArgs,
}

impl GlobalArgs {
    /// The app settings these flags describe.
    pub fn app_config(&self) -> AppConfig {
        AppConfig {
            assembly: AssemblySettings {
                database_url: self.database_url.clone(),
                cache_dir: if self.no_cache {
                    None
                } else {
                    self.cache_dir.clone().or_else(default_cache_dir)
                },
                run_lease: self.run_lease.max(std::time::Duration::from_millis(300)),
                // The command line runs the operator's own runs: no ceilings
                // beyond the options' own ranges (tenant limits still apply,
                // see `assay run`).
                ceilings: assay_runner::Ceilings::none(),
                // Nor a tight compile limit: a CPython component takes tens
                // of seconds to compile on a busy machine, and the operator
                // waiting for it is the only one affected.
                compile_timeout: CLI_COMPILE_TIMEOUT,
                // Every call here is the user's own, so freed instance
                // slots keep the pages a call wrote (about twice the items
                // per second); see `KeepResident` for why `assay serve`
                // leaves it to the operator.
                keep_resident_bytes: assay_plugin_host::RECOMMENDED_KEEP_RESIDENT_BYTES,
                ..AssemblySettings::default()
            },
            plugin_dirs: self.plugins_dir.clone(),
            tenant: self
                .tenant
                .clone()
                .unwrap_or_else(|| assay_store::DEFAULT_TENANT.to_string()),
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a dataset through a target and scorers, then print a summary
    Run(run::RunArgs),
    /// Create, import, export and browse datasets
    #[command(subcommand)]
    Dataset(dataset::DatasetCommand),
    /// Register, list and check plugins (scorers and targets)
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// List, inspect, compare, cancel and resume runs
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Serve the HTTP API (and execute runs triggered through it)
    Serve(serve::ServeArgs),
    /// Execute runs from the shared database, serving no HTTP (scale out `serve --no-execute`)
    Worker(worker::WorkerArgs),
    /// Set, list and delete the tenant's secrets (values are write-only)
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Create tenants and set their limits (operators)
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Create, list and revoke API keys (operators)
    #[command(subcommand)]
    Key(tenant::KeyCommand),
    /// Show or clear the tenant's output cache (target outputs reused by `run --cache`)
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Print a shell completion script
    Completions(completions::CompletionsArgs),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<Exit> {
    let Cli { global, command } = cli;
    match command {
        Command::Completions(args) => completions::run(args),
        Command::Serve(args) => serve::run(&global, args).await,
        Command::Worker(args) => worker::run(&global, args).await,
        command => {
            let mut config = global.app_config();
            // Runs open the tenant's secrets for plugins with a grant; a
            // key that cannot be read costs them the secrets, not the
            // command.
            config.assembly.secret_key = match global.secret_key.load_if_present() {
                Ok(key) => key,
                Err(e) => {
                    eprintln!("warning: secrets are unavailable to plugins: {e:#}");
                    None
                }
            };
            let app = App::open(config).await?;
            match command {
                Command::Run(args) => run::run(&app, args).await,
                Command::Dataset(cmd) => dataset::run(&app, cmd).await,
                Command::Plugin(cmd) => plugin::run(&app, cmd).await,
                Command::Runs(cmd) => runs::run(&app, cmd).await,
                Command::Secret(cmd) => secret::run(&app, &global.secret_key, cmd).await,
                Command::Tenant(cmd) => tenant::run_tenant(&app, cmd).await,
                Command::Key(cmd) => tenant::run_key(&app, global.tenant.as_deref(), cmd).await,
                Command::Cache(cmd) => cache::run(&app, cmd).await,
                Command::Completions(_) | Command::Serve(_) | Command::Worker(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_run_lease_flag_defaults_to_the_shared_default() {
        let cli = Cli::try_parse_from(["assay", "runs", "list"]).unwrap();
        assert_eq!(
            cli.global.app_config().assembly.run_lease,
            assay_runner::assembly::DEFAULT_LEASE
        );
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        fn walk(cmd: &clap::Command, path: &str) {
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.has_subcommands() {
                    walk(sub, &path);
                    continue;
                }
                let help = sub
                    .get_after_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                assert!(
                    help.contains("Examples:"),
                    "`{path}` --help has no examples"
                );
            }
        }
        walk(&Cli::command(), "assay");
    }
}
