//! `assay plugin grant|revoke`: the network a plugin may reach, per tenant
//! (see docs/secrets.md). The grant is stored as the JSON of the plugin
//! host's `NetworkGrant`, which validates it.

use anyhow::{Result, anyhow};
use assay_plugin_host::{HostPattern, NetworkGrant, RateLimit, RequestRate};
use assay_store::PluginGrant;
use clap::Args;

use crate::app::App;
use crate::cli::print_json;
use crate::exit::Exit;

/// Who the command line records as the granter.
const GRANTED_BY: &str = "cli";

/// `plugin grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// Plugin id (the tenant's own, or a shared one)
    pub id: String,
    /// Host the plugin may reach: `api.openai.com`, `*.example.com:8443`,
    /// `127.0.0.1:8080` (repeatable; added to the hosts already granted)
    #[arg(long = "host", value_name = "HOST", value_parser = parse_host)]
    pub hosts: Vec<HostPattern>,
    /// Also allow plain http (https only otherwise)
    #[arg(long)]
    pub allow_http: bool,
    /// Start from an empty grant instead of adding to the current one
    #[arg(long)]
    pub replace: bool,
    /// Requests one call may make
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u32>,
    /// Bytes of one request body
    #[arg(long, value_name = "BYTES")]
    pub max_request_bytes: Option<u64>,
    /// Bytes of one response body
    #[arg(long, value_name = "BYTES")]
    pub max_response_bytes: Option<u64>,
    /// Time to connect, in milliseconds
    #[arg(long, value_name = "MS")]
    pub connect_timeout_ms: Option<u64>,
    /// Time for one request, in milliseconds
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Requests per second to HOST, for all of a run's calls together
    /// (requests wait for their turn), e.g. `api.openai.com=5` (repeatable)
    #[arg(long = "requests-per-second", value_name = "HOST=N", value_parser = parse_rps)]
    pub requests_per_second: Vec<(HostPattern, RequestRate)>,
    /// Tokens per minute HOST may report in its answers' `usage`, for all
    /// of a run's calls together, e.g. `api.openai.com=90000` (repeatable)
    #[arg(long = "tokens-per-minute", value_name = "HOST=N", value_parser = parse_tpm)]
    pub tokens_per_minute: Vec<(HostPattern, u64)>,
    /// Print the resulting grant as JSON
    #[arg(long)]
    pub json: bool,
}

fn split_host_value(text: &str) -> Result<(HostPattern, &str), String> {
    let (host, value) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("`{text}`: write HOST=N (e.g. api.openai.com=5)"))?;
    Ok((parse_host(host)?, value.trim()))
}

fn parse_rps(text: &str) -> Result<(HostPattern, RequestRate), String> {
    let (host, value) = split_host_value(text)?;
    let rate: f64 = value
        .parse()
        .map_err(|_| format!("`{value}` is not a number of requests per second"))?;
    Ok((host, RequestRate::new(rate)?))
}

fn parse_tpm(text: &str) -> Result<(HostPattern, u64), String> {
    let (host, value) = split_host_value(text)?;
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok((host, n)),
        _ => Err(format!(
            "`{value}` is not a number of tokens per minute (a whole number above 0)"
        )),
    }
}

/// The grant's rate limit of `host`, added when it has none yet.
fn rate_limit_of<'a>(grant: &'a mut NetworkGrant, host: &HostPattern) -> &'a mut RateLimit {
    let at = match grant.rate_limits.iter().position(|l| &l.host == host) {
        Some(at) => at,
        None => {
            grant.rate_limits.push(RateLimit {
                host: host.clone(),
                requests_per_second: None,
                tokens_per_minute: None,
            });
            grant.rate_limits.len() - 1
        }
    };
    &mut grant.rate_limits[at]
}

/// `plugin revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Plugin id
    pub id: String,
    /// Host to take away (repeatable); without --host the whole grant goes
    #[arg(long = "host", value_name = "HOST", value_parser = parse_host)]
    pub hosts: Vec<HostPattern>,
}

fn parse_host(text: &str) -> Result<HostPattern, String> {
    text.parse::<HostPattern>().map_err(|e| e.to_string())
}

/// The stored grant of a plugin, parsed.
pub async fn current(app: &App, id: &str) -> Result<Option<NetworkGrant>> {
    app.store
        .get_plugin_grant(&app.tenant, id)
        .await?
        .map(|g| parse_stored(&g))
        .transpose()
}

fn parse_stored(g: &PluginGrant) -> Result<NetworkGrant> {
    serde_json::from_str(&g.grant_json).map_err(|e| {
        anyhow!(
            "the stored grant of plugin {} is not valid: {e}",
            g.plugin_id
        )
    })
}

/// Adds to (or with `--replace`, replaces) the plugin's grant.
pub async fn grant(app: &App, a: GrantArgs) -> Result<Exit> {
    let mut grant = if a.replace {
        NetworkGrant::default()
    } else {
        current(app, &a.id).await?.unwrap_or_default()
    };
    for host in a.hosts {
        if !grant.hosts.contains(&host) {
            grant.hosts.push(host);
        }
    }
    if a.allow_http {
        grant.allow_http = true;
    }
    let limits = &mut grant.limits;
    set(&mut limits.max_requests, a.max_requests);
    set(&mut limits.max_request_bytes, a.max_request_bytes);
    set(&mut limits.max_response_bytes, a.max_response_bytes);
    set(&mut limits.connect_timeout_ms, a.connect_timeout_ms);
    set(&mut limits.timeout_ms, a.timeout_ms);
    for (host, rate) in a.requests_per_second {
        rate_limit_of(&mut grant, &host).requests_per_second = Some(rate);
    }
    for (host, tokens) in a.tokens_per_minute {
        rate_limit_of(&mut grant, &host).tokens_per_minute = Some(tokens);
    }
    if grant.hosts.is_empty() {
        return Err(anyhow!(
            "a grant needs at least one host\n  hint: assay plugin grant {} --host api.example.com",
            a.id
        ));
    }
    store(app, &a.id, &grant).await?;
    if a.json {
        print_json(&grant)?;
    } else {
        println!("Granted plugin {}: {}", a.id, describe(&grant));
    }
    Ok(Exit::Success)
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

async fn store(app: &App, id: &str, grant: &NetworkGrant) -> Result<()> {
    let json = serde_json::to_string(grant)?;
    app.store
        .set_plugin_grant(&app.tenant, id, &json, GRANTED_BY)
        .await
        .map_err(|e| {
            if e.is_not_found() {
                anyhow!("no plugin with id `{id}`\n  hint: `assay plugin list` shows the registered plugins")
            } else {
                e.into()
            }
        })?;
    Ok(())
}

/// Takes hosts away, or the whole grant.
pub async fn revoke(app: &App, a: RevokeArgs) -> Result<Exit> {
    let Some(mut grant) = current(app, &a.id).await? else {
        return Err(anyhow!("plugin {} has no network grant", a.id));
    };
    if let Some(missing) = a.hosts.iter().find(|h| !grant.hosts.contains(h)) {
        return Err(anyhow!(
            "host {missing} is not granted to plugin {} (granted: {})",
            a.id,
            grant.granted_list()
        ));
    }
    grant.hosts.retain(|h| !a.hosts.contains(h));
    grant.rate_limits.retain(|l| !a.hosts.contains(&l.host));
    if a.hosts.is_empty() || grant.hosts.is_empty() {
        app.store.delete_plugin_grant(&app.tenant, &a.id).await?;
        println!("Revoked the network grant of plugin {}", a.id);
    } else {
        store(app, &a.id, &grant).await?;
        println!("Granted plugin {}: {}", a.id, describe(&grant));
    }
    Ok(Exit::Success)
}

/// One line: hosts, http, limits, rate limits.
pub fn describe(grant: &NetworkGrant) -> String {
    let l = &grant.limits;
    let mut rates = String::new();
    for r in &grant.rate_limits {
        let mut parts = Vec::new();
        if let Some(rps) = r.requests_per_second {
            parts.push(format!("{} requests/s", rps.get()));
        }
        if let Some(tpm) = r.tokens_per_minute {
            parts.push(format!("{tpm} tokens/min"));
        }
        rates.push_str(&format!("; {} at most {}", r.host, parts.join(" and ")));
    }
    let text = format!(
        "{}{}; at most {} requests per call, {} B up, {} B down, connect {} ms, request {} ms",
        grant.granted_list(),
        if grant.allow_http {
            " (http allowed)"
        } else {
            " (https only)"
        },
        l.max_requests,
        l.max_request_bytes,
        l.max_response_bytes,
        l.connect_timeout_ms,
        l.timeout_ms
    );
    text + &rates
}
