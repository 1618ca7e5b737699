//! `assay tenant create|list|limits` and `assay key create|list|revoke`:
//! the operator's commands, talking to the database directly (whoever can
//! open the database is the operator).

use anyhow::{Result, anyhow};
use assay_store::tenancy::{LIMITS, issue_api_key};
use assay_store::{Role, StoreError, TenantLimits};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::app::App;
use crate::cli::print_json;
use crate::exit::{Exit, UsageError};
use crate::table;

/// Tenant commands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (tenants are never created by using them)
    #[command(after_help = "\
Examples:
  assay tenant create team-a
  assay tenant create team-b --set queued-runs=20 --set items-in-flight=500
  assay key create --tenant team-a --role admin --name alice

Names are 1 to 64 characters of A-Z a-z 0-9 . _ -. The `default` tenant always
exists: it is what the CLI and `assay serve --no-auth` act as.")]
    Create(CreateArgs),
    /// List tenants and their limits
    #[command(after_help = "\
Examples:
  assay tenant list
  assay tenant list --json")]
    List(JsonArg),
    /// Show a tenant's limits and usage, or change limits with --set
    #[command(after_help = LIMITS_HELP)]
    Limits(LimitsArgs),
}

const LIMITS_HELP: &str = "\
Examples:
  assay tenant limits team-a
  assay tenant limits team-a --set items-in-flight=500 --set stored-bytes=20G
  assay tenant limits team-a --set weight=3

Limits (sizes take k, M, G suffixes, powers of 1024):
  items-in-flight    items of the tenant executing at once; also the largest
                     maxConcurrency of one run (default 256)
  active-runs        runs executing at once; more wait as pending (16)
  queued-runs        pending runs; a trigger beyond is a 429 (1000)
  datasets           datasets (1000)
  items-per-dataset  live items of one dataset (10000000)
  stored-bytes       bytes of item JSON stored, all versions (10G)
  plugins            plugins the tenant registered (100)
  plugin-bytes       bytes of the tenant's plugin components (1G)
  weight             not a limit but a share, 1 to 1000: while tenants compete,
                     runs and item slots go to them in proportion to their
                     weights (1); see docs/fair-share.md
  cache-bytes        bytes of cached target outputs (`run --cache`); beyond it
                     the least recently used are evicted, not refused (1G)

Over a limit the request changes nothing and is refused naming the limit and
its value (HTTP 422; a trigger over queued-runs is 429 with Retry-After).";

/// `tenant create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Tenant name
    pub name: String,
    /// Set a limit (KEY=VALUE, repeatable; see `assay tenant limits --help`)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `--json` only.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `tenant limits`.
#[derive(Debug, Args)]
pub struct LimitsArgs {
    /// Tenant name
    pub name: String,
    /// Change a limit (KEY=VALUE, repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; the token is printed once and never stored
    #[command(after_help = "\
Examples:
  assay key create --tenant team-a
  assay key create --tenant team-a --role viewer --name dashboard
  TOKEN=$(assay key create --tenant team-a --json | jq -r .token)
  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:4111/api/datasets

Roles: viewer (read only), member (datasets, runs, the tenant's plugins; the
default), admin (a member who also manages the tenant's keys through /api/keys).
Only the SHA-256 of the token is stored: a lost token cannot be shown again;
revoke the key and create another.")]
    Create(KeyCreateArgs),
    /// List API keys (id, tenant, role, prefix; never the tokens)
    #[command(after_help = "\
Examples:
  assay key list
  assay key list --tenant team-a --json")]
    List(KeyListArgs),
    /// Revoke an API key: it stops authenticating at once
    #[command(after_help = "\
Examples:
  assay key revoke 0192f1c4-8a3b-7c2d-9e4f-5a6b7c8d9e0f")]
    Revoke(KeyRevokeArgs),
}

/// `key create` (the tenant is the global `--tenant NAME`, required).
#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// viewer, member or admin
    #[arg(long, default_value = "member", value_parser = parse_role)]
    pub role: Role,
    /// A label shown in listings
    #[arg(long)]
    pub name: Option<String>,
    /// Print `{"token": ..., "key": ...}`
    #[arg(long)]
    pub json: bool,
}

/// `key list` (only the keys of the global `--tenant NAME` when given).
#[derive(Debug, Args)]
pub struct KeyListArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `key revoke`.
#[derive(Debug, Args)]
pub struct KeyRevokeArgs {
    /// Key id (from `assay key list`)
    pub id: String,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("unknown role `{s}`: viewer, member or admin"))
}

fn apply_sets(limits: &mut TenantLimits, sets: &[String]) -> Result<()> {
    for spec in sets {
        let (key, value) = spec
            .split_once('=')
            .ok_or_else(|| UsageError(format!("`{spec}`: expected KEY=VALUE")))?;
        limits.set(key.trim(), value).map_err(UsageError)?;
    }
    Ok(())
}

fn no_tenant(name: &str, e: StoreError) -> anyhow::Error {
    if e.is_not_found() {
        anyhow!(
            "no tenant `{name}`\n  hint: `assay tenant list` shows the tenants; `assay tenant create {name}` creates it"
        )
    } else {
        e.into()
    }
}

fn limits_table(limits: &TenantLimits, usage: Option<&assay_store::TenantUsage>) -> String {
    let used = |key: &str| -> String {
        let Some(u) = usage else {
            return String::new();
        };
        match key {
            "active-runs" => u.active_runs,
            "queued-runs" => u.queued_runs,
            "datasets" => u.datasets,
            "stored-bytes" => u.stored_bytes,
            "plugins" => u.plugins,
            "plugin-bytes" => u.plugin_bytes,
            "cache-bytes" => u.cache_bytes,
            _ => return String::new(),
        }
        .to_string()
    };
    let rows: Vec<Vec<String>> = LIMITS
        .iter()
        .map(|spec| {
            vec![
                spec.key.to_string(),
                spec.get(limits).to_string(),
                used(spec.key),
            ]
        })
        .collect();
    table::render(&["LIMIT", "VALUE", "USED"], &rows, &[1, 2])
}

/// Runs a tenant command.
pub async fn run_tenant(app: &App, cmd: TenantCommand) -> Result<Exit> {
    match cmd {
        TenantCommand::Create(a) => {
            let mut limits = TenantLimits::default();
            apply_sets(&mut limits, &a.set)?;
            let info = app
                .store
                .create_tenant(&a.name, &limits)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(_) => anyhow!(
                        "tenant `{}` already exists\n  hint: `assay tenant limits {}` shows its limits",
                        a.name,
                        a.name
                    ),
                    StoreError::Validation { message, .. } => {
                        anyhow!("invalid tenant name `{}`: {message}", a.name)
                    }
                    other => other.into(),
                })?;
            if a.json {
                print_json(&info)?;
            } else {
                println!("Created tenant {}", info.id);
                println!("  next: assay key create --tenant {} --role admin", info.id);
            }
        }
        TenantCommand::List(a) => {
            let tenants = app.store.list_tenants().await?;
            if a.json {
                print_json(&tenants)?;
            } else {
                let rows: Vec<Vec<String>> = tenants
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            t.limits.items_in_flight.to_string(),
                            t.limits.active_runs.to_string(),
                            t.limits.queued_runs.to_string(),
                            t.limits.datasets.to_string(),
                            t.created_at.format("%Y-%m-%d %H:%M").to_string(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(
                        &[
                            "TENANT",
                            "IN FLIGHT",
                            "ACTIVE",
                            "QUEUED",
                            "DATASETS",
                            "CREATED"
                        ],
                        &rows,
                        &[1, 2, 3, 4]
                    )
                );
            }
        }
        TenantCommand::Limits(a) => {
            let mut limits = app
                .store
                .tenant_limits(&a.name)
                .await
                .map_err(|e| no_tenant(&a.name, e))?;
            if !a.set.is_empty() {
                apply_sets(&mut limits, &a.set)?;
                limits = app.store.set_tenant_limits(&a.name, &limits).await?;
            }
            let usage = app.store.tenant_usage(&a.name).await?;
            if a.json {
                print_json(&json!({"id": a.name, "limits": limits, "usage": usage}))?;
            } else {
                if !a.set.is_empty() {
                    println!("Updated the limits of {}", a.name);
                }
                print!("{}", limits_table(&limits, Some(&usage)));
            }
        }
    }
    Ok(Exit::Success)
}

/// Runs a key command.
pub async fn run_key(app: &App, tenant: Option<&str>, cmd: KeyCommand) -> Result<Exit> {
    match cmd {
        KeyCommand::Create(a) => {
            let Some(tenant) = tenant else {
                return Err(UsageError(
                    "`assay key create` needs --tenant NAME (the tenant the key acts for)".into(),
                )
                .into());
            };
            let (key, token) = issue_api_key(app.store.as_ref(), tenant, a.role, a.name)
                .await
                .map_err(|e| no_tenant(tenant, e))?;
            if a.json {
                print_json(&json!({"token": token, "key": key}))?;
            } else {
                println!("{token}");
                eprintln!(
                    "Created {} key {} for tenant {} (prefix {}). The token above is shown \
                     only now: store it safely.",
                    key.role, key.id, key.tenant_id, key.prefix
                );
            }
        }
        KeyCommand::List(a) => {
            if let Some(t) = tenant {
                app.store
                    .tenant_limits(t)
                    .await
                    .map_err(|e| no_tenant(t, e))?;
            }
            let keys = app.store.list_api_keys(tenant).await?;
            if a.json {
                print_json(&keys)?;
            } else if keys.is_empty() {
                println!("No API keys. Create one with `assay key create --tenant NAME`.");
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.id.clone(),
                            k.tenant_id.clone(),
                            k.role.to_string(),
                            format!("{}...", k.prefix),
                            k.name.clone().unwrap_or_default(),
                            match k.revoked_at {
                                Some(t) => format!("revoked {}", t.format("%Y-%m-%d %H:%M")),
                                None => "active".into(),
                            },
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(
                        &["ID", "TENANT", "ROLE", "PREFIX", "NAME", "STATUS"],
                        &rows,
                        &[]
                    )
                );
            }
        }
        KeyCommand::Revoke(a) => {
            let key = app.store.revoke_api_key(None, &a.id).await.map_err(|e| {
                if e.is_not_found() {
                    anyhow!(
                        "no API key `{}`\n  hint: `assay key list` shows the keys",
                        a.id
                    )
                } else {
                    e.into()
                }
            })?;
            println!(
                "Revoked key {} ({} of tenant {})",
                key.id, key.role, key.tenant_id
            );
        }
    }
    Ok(Exit::Success)
}
