//! Re-scoring: a new run that grades the stored target outputs of a
//! finished run (its parent) with other scorers, or new versions of them,
//! without calling the target.
//!
//! A re-scoring run is an ordinary run (pending, claimed, streamed,
//! resumed, cancelled like any other) whose `parentRunId` names the run it
//! reads. Its target id, type and pinned target digest are the parent's
//! (they say where the outputs came from), its dataset version is the
//! parent's, and the executor takes each item's output from the parent's
//! result instead of a target call ([`TargetSource::Recorded`]). See
//! `docs/rescoring.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use assay_plugin_host::PluginKind;
use assay_store::{NewRun, Run, Store, StoreError};
use serde_json::Value;

use crate::catalog::Catalog;
use crate::error::RunError;
use crate::plugins::Target;
use crate::trigger::{StoredRunConfig, check_tenant_options, resolve_kind};

/// Where a run's outputs come from.
#[derive(Clone)]
pub enum TargetSource {
    /// Calling the target.
    Call(Arc<dyn Target>),
    /// The stored results of another run, read page by page (a
    /// re-scoring run). An item without a result there is skipped.
    Recorded {
        /// The run whose outputs are reused.
        parent_run_id: String,
    },
    /// The output cache, read page by page: an item with a stored output
    /// starts with it, the others call the cache's target, and each
    /// successful output is stored (a run with `cache` on; see
    /// [`crate::cache`]).
    Cached(Arc<crate::cache::OutputCache>),
}

impl From<Arc<dyn Target>> for TargetSource {
    fn from(target: Arc<dyn Target>) -> Self {
        TargetSource::Call(target)
    }
}

/// A request to re-score a finished run.
#[derive(Debug, Clone, Default)]
pub struct RescoreRequest {
    /// The finished run whose outputs are graded again.
    pub parent_run_id: String,
    /// The scorers of the new run (at least one).
    pub scorer_ids: Vec<String>,
    /// Config of a scorer, by id. A scorer the parent also had keeps the
    /// parent's config unless given one here.
    pub scorer_configs: BTreeMap<String, Value>,
    /// Items graded at once (`None`: the parent's `maxConcurrency`).
    pub max_concurrency: Option<usize>,
    /// A caller-chosen id for the new run.
    pub run_id: Option<String>,
}

/// Validates `request` and creates the re-scoring run as `pending`.
///
/// The parent must be finished (completed, failed or cancelled: a run
/// still producing outputs is a `Conflict`), the scorers must resolve to
/// scorer plugins (their digests are pinned like any run's), and the
/// tenant's limits apply. The target is neither loaded nor called: it may
/// even have been deleted since.
pub async fn create_rescore(
    store: &Arc<dyn Store>,
    catalog: &Catalog,
    tenant: &str,
    request: RescoreRequest,
) -> Result<Run, RunError> {
    let parent = store.get_run(tenant, &request.parent_run_id).await?;
    if !parent.status.is_terminal() {
        return Err(RunError::Store(StoreError::Conflict(format!(
            "run {} is {}; only a finished run can be re-scored",
            parent.id, parent.status
        ))));
    }
    if request.scorer_ids.is_empty() {
        return Err(RunError::InvalidOptions {
            field: "scorerIds".into(),
            message: "a re-scoring run needs at least one scorer".into(),
        });
    }
    let mut seen = BTreeSet::new();
    for id in &request.scorer_ids {
        if !seen.insert(id.as_str()) {
            return Err(RunError::InvalidOptions {
                field: "scorerIds".into(),
                message: format!("scorer `{id}` is listed twice"),
            });
        }
    }
    if let Some(id) = request
        .scorer_configs
        .keys()
        .find(|id| !seen.contains(id.as_str()))
    {
        return Err(RunError::InvalidOptions {
            field: format!("scorerConfigs.{id}"),
            message: format!("`{id}` is not one of the scorers of the run"),
        });
    }
    let parent_config: StoredRunConfig =
        serde_json::from_value(parent.config.clone()).map_err(|e| RunError::InvalidOptions {
            field: "config".into(),
            message: format!("the stored config of run {} is unreadable: {e}", parent.id),
        })?;

    let mut options = parent_config.options;
    let mut scorer_configs = BTreeMap::new();
    for id in &request.scorer_ids {
        let config = request
            .scorer_configs
            .get(id)
            .or_else(|| options.scorer_configs.get(id));
        if let Some(config) = config {
            scorer_configs.insert(id.clone(), config.clone());
        }
    }
    options.scorer_configs = scorer_configs;
    // The parent's network grants were narrowed (or granted by the
    // operator) for the parent's plugins; a scorer of the new run reaches
    // the hosts of its own stored grant.
    options.network = BTreeMap::new();
    // Its outputs come from the parent, never from the output cache.
    options.cache = false;
    if let Some(n) = request.max_concurrency {
        options.max_concurrency = n;
    }
    options.validate()?;
    catalog.ceilings().check(&options)?;
    let limits = store.tenant_limits(tenant).await?;
    check_tenant_options(&options, &limits)?;
    let usage = store.tenant_usage(tenant).await?;
    assay_store::tenancy::admit_run(&limits, &usage)?;

    let mut scorer_digests = BTreeMap::new();
    for id in &request.scorer_ids {
        let scorer = resolve_kind(catalog, tenant, id, PluginKind::Scorer).await?;
        scorer_digests.insert(id.clone(), scorer.digest().to_string());
    }
    let config = StoredRunConfig {
        options,
        target_digest: parent_config.target_digest,
        scorer_digests,
    };
    let run = store
        .create_run(
            tenant,
            NewRun {
                id: request.run_id,
                dataset_id: parent.dataset_id,
                dataset_version: parent.dataset_version,
                target_type: parent.target_type,
                target_id: parent.target_id,
                scorer_ids: request.scorer_ids,
                config: serde_json::to_value(&config).expect("config serializes"),
                total_items: parent.total_items,
                repeats: parent.repeats,
                parent_run_id: Some(parent.id),
            },
        )
        .await?;
    Ok(run)
}
