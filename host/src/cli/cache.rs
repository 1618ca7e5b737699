//! `assay cache stats|clear`: the tenant's output cache, the stored target
//! outputs that runs with `--cache` reuse (see docs/caching.md).

use anyhow::{Result, anyhow};
use assay_store::StoreError;
use clap::{Args, Subcommand};

use crate::app::App;
use crate::cli::print_json;
use crate::exit::Exit;

/// Output cache commands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries and bytes in the tenant's output cache, and its budget
    #[command(after_help = "\
Examples:
  assay cache stats
  assay cache stats --tenant team-a --json

The budget is the tenant limit `cache-bytes` (`assay tenant limits NAME --set
cache-bytes=2G`); beyond it the least recently used outputs are evicted.")]
    Stats(JsonArg),
    /// Remove every stored output of the tenant: the next cached run calls the target again
    #[command(after_help = "\
Examples:
  assay cache clear
  assay cache clear --tenant team-a

Runs and their results are not touched; only the outputs runs with --cache
would have reused are removed.")]
    Clear(JsonArg),
}

/// `--json`.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Runs a cache command for the command's tenant (`--tenant`).
pub async fn run(app: &App, cmd: CacheCommand) -> Result<Exit> {
    let tenant = &app.tenant;
    match cmd {
        CacheCommand::Stats(a) => {
            let stats = app
                .store
                .cache_stats(tenant)
                .await
                .map_err(|e| no_tenant(tenant, e))?;
            if a.json {
                print_json(&stats)?;
            } else {
                println!(
                    "Output cache of tenant {tenant}: {} entries, {} of {} bytes",
                    stats.entries, stats.bytes, stats.limit_bytes
                );
            }
        }
        CacheCommand::Clear(a) => {
            // The tenant must exist (clearing an unknown one would say
            // "0 removed" for a typo).
            app.store
                .cache_stats(tenant)
                .await
                .map_err(|e| no_tenant(tenant, e))?;
            let cleared = app.store.clear_cache(tenant).await?;
            if a.json {
                print_json(&cleared)?;
            } else {
                println!(
                    "Cleared the output cache of tenant {tenant}: {} entries, {} bytes",
                    cleared.entries, cleared.bytes
                );
            }
        }
    }
    Ok(Exit::Success)
}

fn no_tenant(name: &str, e: StoreError) -> anyhow::Error {
    if e.is_not_found() {
        anyhow!("no tenant `{name}`\n  hint: `assay tenant list` shows the tenants")
    } else {
        e.into()
    }
}
