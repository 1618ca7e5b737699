//! How many items the command line's runs keep in flight when not told.
//!
//! The API's `maxConcurrency` defaults to 5, Mastra's default, which its
//! clients expect. On the command line that default is kept for a run one
//! of whose plugins may reach the network, where it bounds the requests a
//! provider sees at once; a run whose plugins stay local gets
//! [`DEFAULT_LOCAL_CONCURRENCY`] instead, because its calls are pure CPU,
//! already bounded by the process's call slots, and more items in flight
//! overlap the feed's and the writer's round trips (BENCHMARKS.md, "The
//! command line's default concurrency").

use anyhow::Result;
use assay_runner::config::{DEFAULT_LOCAL_CONCURRENCY, DEFAULT_MAX_CONCURRENCY};
use assay_store::Run;

use crate::app::App;

/// `assay run --concurrency`'s help, with the defaults it documents.
pub fn run_help() -> String {
    format!(
        "Items processed at once [default: {DEFAULT_LOCAL_CONCURRENCY}, or \
         {DEFAULT_MAX_CONCURRENCY} when a plugin of the run may reach the network: \
         a stored grant or --allow-host]"
    )
}

/// `assay runs rescore --concurrency`'s help.
pub fn rescore_help() -> String {
    format!(
        "Items graded at once [default: the parent run's, at most \
         {DEFAULT_MAX_CONCURRENCY} when a new scorer may reach the network]"
    )
}

/// The default for a new run of plugins `ids`, given whether the run has
/// one-off hosts (`--allow-host`).
pub async fn default_for<'a>(
    app: &App,
    ids: impl IntoIterator<Item = &'a str>,
    one_off_hosts: bool,
) -> Result<usize> {
    Ok(if one_off_hosts || may_reach_network(app, ids).await? {
        DEFAULT_MAX_CONCURRENCY
    } else {
        DEFAULT_LOCAL_CONCURRENCY
    })
}

/// The concurrency of a re-scoring run of `parent` with scorers `ids` when
/// not given: the parent's (`None`), unless a new scorer may reach the
/// network and the parent's is above the network default.
pub async fn rescore_default<'a>(
    app: &App,
    parent: &Run,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<Option<usize>> {
    if !may_reach_network(app, ids).await? {
        return Ok(None);
    }
    let parents = parent.config["options"]["maxConcurrency"]
        .as_u64()
        .map_or(DEFAULT_MAX_CONCURRENCY, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        });
    Ok(Some(parents.min(DEFAULT_MAX_CONCURRENCY)))
}

/// Whether one of plugins `ids` has a stored grant naming a host (an
/// unreadable grant counts as one: the cautious answer).
async fn may_reach_network<'a>(app: &App, ids: impl IntoIterator<Item = &'a str>) -> Result<bool> {
    for id in ids {
        if let Some(grant) = app.store.get_plugin_grant(&app.tenant, id).await? {
            match serde_json::from_str::<assay_plugin_host::NetworkGrant>(&grant.grant_json) {
                Ok(g) if g.hosts.is_empty() => {}
                _ => return Ok(true),
            }
        }
    }
    Ok(false)
}
