//! Creating a run (validated up front, O(1) whatever the dataset size) and
//! turning a stored run back into something the executor can execute.

use std::collections::BTreeMap;
use std::sync::Arc;

use assay_plugin_host::{Limits, NetworkGrant, Plugin, PluginKind};
use assay_store::{NewRun, Run, Store, TenantLimits};
use serde::{Deserialize, Serialize};

use crate::cache::OutputCache;
use crate::catalog::Catalog;
use crate::config::RunOptions;
use crate::error::RunError;
use crate::executor::RunPlan;
use crate::network::NetworkPlanner;
use crate::plugins::{Scorer, ScorerAsTarget, Target, WasmScorer, WasmTarget};
use crate::rescore::TargetSource;

/// What a run's target is (stored with the run).
pub use assay_store::TargetType;

/// A request to run a dataset.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The dataset to run.
    pub dataset_id: String,
    /// The dataset version to pin (`None`: the latest).
    pub version: Option<i64>,
    /// Target kind.
    pub target_type: TargetType,
    /// Target plugin id.
    pub target_id: String,
    /// Scorer plugin ids.
    pub scorer_ids: Vec<String>,
    /// Tunables.
    pub options: RunOptions,
    /// A caller-chosen run id.
    pub run_id: Option<String>,
}

/// What is stored in a run's `config` column: the options and the content
/// digests of the plugins the run was created with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRunConfig {
    /// The run's options.
    pub options: RunOptions,
    /// Digest of the target plugin at trigger time.
    pub target_digest: String,
    /// Digest of each scorer plugin at trigger time, by id.
    pub scorer_digests: BTreeMap<String, String>,
}

/// The grants a run asks for (`network`, by plugin id), each narrowed from
/// the plugin's stored grant with [`NetworkGrant::narrow`]: a plugin that
/// is not the run's, a plugin without a stored grant, or a request wider
/// than the stored grant (a host, plain http) is an error naming it.
async fn narrow_network(
    store: &Arc<dyn Store>,
    tenant: &str,
    target_id: &str,
    scorer_ids: &[String],
    requested: BTreeMap<String, NetworkGrant>,
) -> Result<BTreeMap<String, NetworkGrant>, RunError> {
    let mut narrowed = BTreeMap::new();
    for (id, asked) in requested {
        let field = format!("network.{id}");
        if id != target_id && !scorer_ids.contains(&id) {
            return Err(RunError::InvalidOptions {
                field,
                message: format!("`{id}` is neither the run's target nor one of its scorers"),
            });
        }
        let Some(stored) = store.get_plugin_grant(tenant, &id).await? else {
            return Err(RunError::InvalidOptions {
                field,
                message: format!("plugin `{id}` has no network grant to narrow"),
            });
        };
        let stored: NetworkGrant =
            serde_json::from_str(&stored.grant_json).map_err(|e| RunError::InvalidOptions {
                field: field.clone(),
                message: format!("the stored grant of plugin `{id}` is unreadable: {e}"),
            })?;
        let grant = stored
            .narrow(&asked)
            .map_err(|e| RunError::InvalidOptions {
                field: field.clone(),
                message: e.to_string(),
            })?;
        narrowed.insert(id, grant);
    }
    Ok(narrowed)
}

/// Validates `request` and creates the run as `pending`. Checks, in order
/// (the first failing one is the error): options in range and under the
/// operator's ceilings, the tenant's limits, dataset exists and has items
/// at the pinned version, target and every scorer resolve to plugins of
/// the right kind, network grants narrowed. Touches no item. The item
/// count and the plugins are read at once, so a trigger refused for an
/// empty dataset has still loaded its plugins (a compile only on a cold
/// cache).
pub async fn create_run(
    store: &Arc<dyn Store>,
    catalog: &Catalog,
    tenant: &str,
    request: RunRequest,
) -> Result<Run, RunError> {
    let mut options = request.options;
    options.validate()?;
    catalog.ceilings().check(&options)?;
    // The reads are independent: issued at once, checked in the documented
    // order. A trigger's latency is the sum of its round trips, and on a
    // busy process each round trip waits for a core.
    let (limits, usage, dataset) = tokio::join!(
        store.tenant_limits(tenant),
        store.tenant_usage(tenant),
        store.get_dataset(tenant, &request.dataset_id),
    );
    let limits = limits?;
    check_tenant_options(&options, &limits)?;
    // Early, for a clear error before the dataset is read; the store checks
    // again inside the insert's transaction, where the count cannot race.
    assay_store::tenancy::admit_run(&limits, &usage?)?;

    let dataset = dataset?;
    let version = request.version.unwrap_or(dataset.version);
    if version < 0 || version > dataset.version {
        return Err(RunError::InvalidOptions {
            field: "version".into(),
            message: format!(
                "dataset {} has versions 0 to {}",
                dataset.id, dataset.version
            ),
        });
    }
    let (total, target, scorers) = tokio::join!(
        store.count_items_at_version(tenant, &dataset.id, version),
        resolve_target(catalog, tenant, request.target_type, &request.target_id),
        futures::future::join_all(request.scorer_ids.iter().map(|id| resolve_kind(
            catalog,
            tenant,
            id,
            PluginKind::Scorer
        )),),
    );
    let total = total?;
    if total == 0 {
        return Err(RunError::EmptyDataset {
            dataset_id: dataset.id,
            version,
        });
    }

    let target = target?;
    let mut scorer_digests = BTreeMap::new();
    for (id, scorer) in request.scorer_ids.iter().zip(scorers) {
        scorer_digests.insert(id.clone(), scorer?.digest().to_string());
    }
    if !options.network_from_operator {
        options.network = narrow_network(
            store,
            tenant,
            &request.target_id,
            &request.scorer_ids,
            std::mem::take(&mut options.network),
        )
        .await?;
    }
    let repeat = options.repeat;
    let config = StoredRunConfig {
        options,
        target_digest: target.digest().to_string(),
        scorer_digests,
    };
    let run = store
        .create_run(
            tenant,
            NewRun {
                id: request.run_id,
                dataset_id: dataset.id,
                dataset_version: version,
                target_type: request.target_type,
                target_id: request.target_id,
                scorer_ids: request.scorer_ids,
                config: serde_json::to_value(&config).expect("config serializes"),
                total_items: total * i64::from(repeat),
                repeats: i64::from(repeat),
                parent_run_id: None,
            },
        )
        .await?;
    Ok(run)
}

/// `OverLimit` when a run option asks for more than the tenant's limits
/// allow (`maxConcurrency` above `items-in-flight`).
pub fn check_tenant_options(options: &RunOptions, limits: &TenantLimits) -> Result<(), RunError> {
    let max = limits.items_in_flight.max(0) as u64;
    if options.max_concurrency as u64 > max {
        return Err(RunError::OverLimit {
            field: "maxConcurrency".into(),
            asked: options.max_concurrency as u64,
            scope: "tenant limit",
            limit: "items-in-flight",
            value: max,
        });
    }
    Ok(())
}

/// Lowers the options above the tenant's limits to them and says what
/// changed (the CLI prints the notices; see [`check_tenant_options`]).
pub fn clamp_tenant_options(options: &mut RunOptions, limits: &TenantLimits) -> Vec<String> {
    match check_tenant_options(options, limits) {
        Ok(()) => Vec::new(),
        Err(e) => {
            options.max_concurrency = limits.items_in_flight.max(1) as usize;
            vec![format!(
                "{e}; running {} items at a time",
                options.max_concurrency
            )]
        }
    }
}

/// Loads the plugins of a stored run and builds its execution plan.
pub async fn plan_run(
    catalog: &Catalog,
    tenant: &str,
    run: Run,
    claimed: bool,
) -> Result<RunPlan, RunError> {
    let config: StoredRunConfig =
        serde_json::from_value(run.config.clone()).map_err(|e| RunError::InvalidOptions {
            field: "config".into(),
            message: format!("stored run config is unreadable: {e}"),
        })?;
    let mut options = config.options;
    let target_type = run.target_type;
    // A stored run is held to this process's ceilings (a run created
    // elsewhere may have asked for more than they allow).
    let ceilings = catalog.ceilings();
    let target_limits = ceilings.call_limits(
        Limits::default(),
        options.target_timeout,
        ceilings.max_target_timeout,
        options.max_memory_bytes,
    );
    let scorer_limits = ceilings.call_limits(
        Limits::scorer_default(),
        options.scorer_timeout,
        ceilings.max_scorer_timeout,
        options.max_memory_bytes,
    );
    options.item_timeout = Some(ceilings.item_timeout(options.item_timeout));

    let network = NetworkPlanner::new(catalog, tenant, &options);
    // The target and the scorers load at once (each is a few store reads,
    // or a compile on a cold cache).
    let target = async {
        let source = match &run.parent_run_id {
            // A re-scoring run reads its parent's outputs: its target is
            // neither loaded nor called (it may have been deleted since).
            Some(parent) => TargetSource::Recorded {
                parent_run_id: parent.clone(),
            },
            None => {
                let target_plugin =
                    resolve_target(catalog, tenant, target_type, &run.target_id).await?;
                check_pin(&run.target_id, &config.target_digest, &target_plugin)?;
                let target_network = network.access_for(&run.target_id).await?;
                let target: Arc<dyn Target> = match target_type {
                    TargetType::Plugin => Arc::new(
                        WasmTarget::new(
                            target_plugin,
                            options.target_config.clone(),
                            target_limits,
                        )
                        .with_network(target_network),
                    ),
                    TargetType::Scorer => Arc::new(ScorerAsTarget::new(Arc::new(
                        WasmScorer::new(
                            target_plugin,
                            options.target_config.clone(),
                            target_limits,
                        )
                        .with_network(target_network),
                    ))),
                };
                if options.cache {
                    TargetSource::Cached(Arc::new(OutputCache::new(
                        catalog.store.clone(),
                        tenant,
                        &run.id,
                        target,
                        target_type,
                        &config.target_digest,
                        options.target_config.as_ref(),
                    )))
                } else {
                    TargetSource::Call(target)
                }
            }
        };
        Ok::<_, RunError>(source)
    };
    let scorers = futures::future::join_all(run.scorer_ids.iter().map(|id| async {
        let plugin = resolve_kind(catalog, tenant, id, PluginKind::Scorer).await?;
        if let Some(pinned) = config.scorer_digests.get(id) {
            check_pin(id, pinned, &plugin)?;
        }
        let scorer: Arc<dyn Scorer> = Arc::new(
            WasmScorer::new(
                plugin,
                options.scorer_configs.get(id).cloned(),
                scorer_limits,
            )
            .with_network(network.access_for(id).await?),
        );
        Ok::<_, RunError>(scorer)
    }));
    let (target, scorers) = tokio::join!(target, scorers);
    let target = target?;
    let scorers = scorers.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(RunPlan {
        tenant: tenant.to_string(),
        run,
        target,
        scorers,
        options,
        claimed,
    })
}

fn check_pin(id: &str, pinned: &str, plugin: &Plugin) -> Result<(), RunError> {
    if plugin.digest() != pinned {
        return Err(RunError::PluginLoad {
            id: id.to_string(),
            message: format!(
                "the plugin changed since the run was created (run pinned {pinned}, registry has {})",
                plugin.digest()
            ),
        });
    }
    Ok(())
}

async fn resolve_target(
    catalog: &Catalog,
    tenant: &str,
    target_type: TargetType,
    id: &str,
) -> Result<Arc<Plugin>, RunError> {
    match target_type {
        TargetType::Plugin => resolve_kind(catalog, tenant, id, PluginKind::Target).await,
        TargetType::Scorer => resolve_kind(catalog, tenant, id, PluginKind::Scorer).await,
    }
}

pub(crate) async fn resolve_kind(
    catalog: &Catalog,
    tenant: &str,
    id: &str,
    kind: PluginKind,
) -> Result<Arc<Plugin>, RunError> {
    let label = match kind {
        PluginKind::Scorer => "scorer",
        PluginKind::Target => "target",
    };
    let plugin = catalog.resolve(tenant, id, label).await?;
    if plugin.kind() != kind {
        return Err(RunError::WrongPluginKind {
            id: id.to_string(),
            expected: label,
            actual: plugin.kind().to_string(),
        });
    }
    Ok(plugin)
}
