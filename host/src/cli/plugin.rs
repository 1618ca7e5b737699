//! `assay plugin add|list|check|info|remove|grant|revoke`.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use assay_plugin_host::{PluginReport, inspect};
use assay_store::{Page, PluginKind, PluginRecord, SHARED_TENANT};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::app::{App, BUILD_PLUGINS_HINT, looks_like_path};
use crate::cli::print_json;
use crate::exit::Exit;
use crate::table;
use crate::term::safe;

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Register component files so runs can name them by id
    #[command(after_help = "\
Examples:
  assay plugin add target/wasm32-wasip2/plugin/echo.wasm
  assay plugin add target/wasm32-wasip2/plugin/*.wasm

Registering the same file again changes nothing; a new build of a plugin
replaces the old one under the same id (runs keep the digest they pinned).

With --shared (operators) the plugins are shared: every tenant of `assay serve`
sees them and none can replace or delete them; a tenant's upload of a
component with a shared plugin's id is refused (409). `assay serve
--plugins-dir DIR` registers DIR's plugins as shared.")]
    Add(AddArgs),
    /// List registered plugins
    #[command(after_help = "\
Examples:
  assay plugin list
  assay plugin list --kind scorer --json")]
    List(ListArgs),
    /// Check that component files load as assay plugins (exit 1 if one does not)
    #[command(after_help = "\
Examples:
  assay plugin check my_scorer.wasm
  assay plugin check target/wasm32-wasip2/plugin/*.wasm --json

The check loads each file exactly as a run would: the component must target
the assay:plugin contract (scorer-plugin or target-plugin world), import only
WASI interfaces the sandbox provides, and answer its info call.")]
    Check(CheckArgs),
    /// Describe a plugin: kind, world, digest, imports and exports
    #[command(after_help = "\
Examples:
  assay plugin info exact-match
  assay plugin info target/wasm32-wasip2/plugin/echo.wasm --json")]
    Info(InfoArgs),
    /// Unregister a plugin
    #[command(after_help = "\
Examples:
  assay plugin remove my-scorer")]
    Remove(RemoveArgs),
    /// Let a plugin make outbound HTTP requests to some hosts (per tenant)
    #[command(after_help = "\
Examples:
  assay plugin grant openai-target --host api.openai.com
  assay plugin grant my-target --host 127.0.0.1:8080 --allow-http --timeout-ms 5000
  assay plugin grant my-target --replace --host api.example.com --json

Hosts are added to the plugin's current grant; limit flags given replace the
current limits; --replace starts from an empty grant. A host is a name
(api.openai.com), a wildcard over subdomains (*.example.com) or an IP address,
with an optional port. Only https unless --allow-http. A grant belongs to the
tenant: granting a shared plugin lets it reach the hosts in this tenant's runs
only. `assay plugin info ID` shows the grant.")]
    Grant(crate::cli::grant::GrantArgs),
    /// Take hosts, or the whole network grant, away from a plugin
    #[command(after_help = "\
Examples:
  assay plugin revoke my-target --host 127.0.0.1:8080
  assay plugin revoke my-target")]
    Revoke(crate::cli::grant::RevokeArgs),
    /// Create a plugin project (Rust, Python or JavaScript) that builds and tests as generated
    #[command(after_help = "\
Examples:
  assay plugin new my-scorer --lang python
  assay plugin new my-target --lang js --kind target
  assay plugin new my-scorer --lang rust --sdk-root ~/src/assay

The project's README lists its three commands: test, build, check.")]
    New(crate::cli::plugin_new::NewArgs),
    /// Run a component file over the first items of a dataset file and print each result and its logs
    #[command(after_help = "\
Examples:
  assay plugin test my_scorer.wasm --dataset examples/capitals.jsonl
  assay plugin test my_scorer.wasm -d data.jsonl --limit 20 --config ignoreCase=true
  assay plugin test my_target.wasm -d data.csv --json

Nothing is registered or stored. A scorer scores each item's input as the
output (what the echo target gives). Exit code 1 when a call failed.")]
    Test(crate::cli::plugin_test::TestArgs),
}

/// `plugin add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Component files (.wasm)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Register as shared plugins: visible to every tenant, read-only for them
    #[arg(long)]
    pub shared: bool,
    /// Print the registered plugins as JSON
    #[arg(long)]
    pub json: bool,
}

/// Plugin kinds, for filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    /// Scorers.
    Scorer,
    /// Targets.
    Target,
}

/// `plugin list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only plugins of this kind
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `plugin check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Component files (.wasm)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print one JSON report per file
    #[arg(long)]
    pub json: bool,
}

/// `plugin info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A registered plugin id or a component file
    #[arg(value_name = "ID|FILE")]
    pub plugin: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `plugin remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Plugin id
    pub id: String,
    /// Remove a shared plugin (every tenant stops seeing it)
    #[arg(long)]
    pub shared: bool,
}

/// The outcome of checking one file, for `--json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckOutcome {
    file: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<PluginReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Runs a plugin command.
pub async fn run(app: &App, cmd: PluginCommand) -> Result<Exit> {
    match cmd {
        PluginCommand::Add(a) => add(app, a).await,
        PluginCommand::List(a) => list(app, a).await,
        PluginCommand::Check(a) => check(app, a).await,
        PluginCommand::Info(a) => info(app, a).await,
        PluginCommand::Grant(a) => crate::cli::grant::grant(app, a).await,
        PluginCommand::Revoke(a) => crate::cli::grant::revoke(app, a).await,
        PluginCommand::New(a) => crate::cli::plugin_new::run(a),
        PluginCommand::Test(a) => crate::cli::plugin_test::run(app, a).await,
        PluginCommand::Remove(a) => {
            let namespace = if a.shared { SHARED_TENANT } else { &app.tenant };
            app.store.delete_plugin(namespace, &a.id).await.map_err(|e| {
                if e.is_not_found() {
                    anyhow!("no plugin with id `{}`\n  hint: `assay plugin list` shows the registered plugins", a.id)
                } else {
                    e.into()
                }
            })?;
            println!("Removed plugin {}", a.id);
            Ok(Exit::Success)
        }
    }
}

async fn add(app: &App, a: AddArgs) -> Result<Exit> {
    // One bad file does not stop the others; it is reported and makes the
    // exit code 1.
    let mut records = Vec::new();
    let mut failures = Vec::new();
    for file in &a.files {
        let registered = if a.shared {
            app.register_file_in(SHARED_TENANT, file).await
        } else {
            app.register_file(file).await
        };
        match registered {
            Ok(record) => records.push(record),
            Err(e) => failures.push(e),
        }
    }
    if a.json {
        print_json(&records)?;
    } else if !records.is_empty() {
        print!("{}", plugin_table(&records));
    }
    for e in &failures {
        eprintln!("error: {e}");
    }
    Ok(if failures.is_empty() {
        Exit::Success
    } else {
        Exit::Error
    })
}

fn plugin_table(records: &[PluginRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.kind.to_string(),
                r.name.clone(),
                short_digest(&r.digest),
                format_size(r.size),
                if r.tenant_id == SHARED_TENANT {
                    "shared".into()
                } else {
                    "tenant".into()
                },
            ]
        })
        .collect();
    table::render(
        &["ID", "KIND", "NAME", "DIGEST", "SIZE", "SCOPE"],
        &rows,
        &[4],
    )
}

fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", &hex[..12.min(hex.len())])
}

fn format_size(bytes: i64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

async fn list(app: &App, a: ListArgs) -> Result<Exit> {
    let mut records = Vec::new();
    let mut page = 0;
    loop {
        let p = app
            .store
            .list_visible_plugins(&app.tenant, Page::new(page, 100))
            .await?;
        records.extend(p.items);
        if !p.has_more {
            break;
        }
        page += 1;
    }
    if let Some(kind) = a.kind {
        let want = match kind {
            KindArg::Scorer => PluginKind::Scorer,
            KindArg::Target => PluginKind::Target,
        };
        records.retain(|r| r.kind == want);
    }
    if a.json {
        print_json(&records)?;
    } else if records.is_empty() {
        println!(
            "No plugins registered. Add some with `assay plugin add <file.wasm>`; {BUILD_PLUGINS_HINT}."
        );
    } else {
        print!("{}", plugin_table(&records));
    }
    Ok(Exit::Success)
}

async fn check(app: &App, a: CheckArgs) -> Result<Exit> {
    let host = app.plugin_host()?;
    let mut outcomes = Vec::new();
    for file in &a.files {
        let shown = file.display().to_string();
        let outcome = if !file.exists() {
            CheckOutcome {
                file: shown,
                ok: false,
                report: None,
                error: Some(format!("file not found ({BUILD_PLUGINS_HINT})")),
            }
        } else {
            let host = host.clone();
            let path = file.clone();
            match tokio::task::spawn_blocking(move || inspect(&host, &path)).await? {
                Ok(report) => CheckOutcome {
                    file: shown,
                    ok: true,
                    report: Some(report),
                    error: None,
                },
                Err(e) => CheckOutcome {
                    file: shown,
                    ok: false,
                    report: None,
                    error: Some(e.to_string()),
                },
            }
        };
        outcomes.push(outcome);
    }
    let all_ok = outcomes.iter().all(|o| o.ok);
    if a.json {
        print_json(&outcomes)?;
    } else {
        for o in &outcomes {
            match (&o.report, &o.error) {
                (Some(r), _) => println!(
                    "ok    {}: {} plugin `{}` ({}), contract {}",
                    o.file,
                    r.kind,
                    r.id,
                    short_digest(&r.digest),
                    r.contract_version
                ),
                (None, Some(e)) => println!("FAIL  {}: {}", o.file, safe(e)),
                (None, None) => {}
            }
        }
    }
    if all_ok {
        Ok(Exit::Success)
    } else {
        let failed = outcomes.iter().filter(|o| !o.ok).count();
        eprintln!(
            "error: {failed} of {} files are not usable assay plugins",
            outcomes.len()
        );
        Ok(Exit::Error)
    }
}

async fn info(app: &App, a: InfoArgs) -> Result<Exit> {
    let (report, record) = if looks_like_path(&a.plugin) {
        let path = PathBuf::from(&a.plugin);
        if !path.exists() {
            return Err(anyhow!(
                "plugin file {} does not exist\n  hint: {BUILD_PLUGINS_HINT}",
                a.plugin
            ));
        }
        let host = app.plugin_host()?;
        let report = tokio::task::spawn_blocking(move || inspect(&host, &path))
            .await?
            .map_err(|e| anyhow!("{} is not a usable assay plugin: {e}", a.plugin))?;
        (report, None)
    } else {
        let record = app.catalog()?.visible_plugin(&app.tenant, &a.plugin).await.map_err(|e| {
            if e.is_not_found() {
                anyhow!(
                    "no plugin with id `{}`\n  hint: `assay plugin list` shows the registered plugins; `assay plugin info <file.wasm>` describes a file",
                    a.plugin
                )
            } else {
                e.into()
            }
        })?;
        let catalog = app.catalog()?;
        let plugin = catalog.load_record(&app.tenant, &record).await?;
        (PluginReport::from_plugin(&plugin), Some(record))
    };
    let grant = match &record {
        Some(r) => crate::cli::grant::current(app, &r.id).await?,
        None => None,
    };
    if a.json {
        print_json(
            &serde_json::json!({ "report": report, "registered": record, "networkGrant": grant }),
        )?;
    } else {
        println!("{}", safe(&report.to_string()));
        if let Some(r) = record {
            println!(
                "  registered:  {}",
                r.created_at.format("%Y-%m-%d %H:%M:%S UTC")
            );
            match &grant {
                Some(g) => println!("  network:     {}", safe(&crate::cli::grant::describe(g))),
                None => println!("  network:     none granted"),
            }
        }
    }
    Ok(Exit::Success)
}
