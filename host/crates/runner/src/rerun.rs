//! Starting a stored run again: the same dataset version, target, scorers
//! and options (configs, limits, narrowed network grants), so that a run
//! can be reproduced from its id alone (`assay runs rerun`).

use std::collections::BTreeMap;

use assay_store::Run;

use crate::error::RunError;
use crate::rescore::RescoreRequest;
use crate::trigger::{RunRequest, StoredRunConfig};

/// What starting `run` again asks for.
#[derive(Debug, Clone)]
pub enum Rerun {
    /// A run that called its target: the same request.
    Run(RunRequest),
    /// A re-scoring run: the same parent, scorers and configs.
    Rescore(RescoreRequest),
}

/// The request that starts `run` again. The plugins are resolved again
/// when it is created (their digests are pinned anew; see
/// [`changed_pins`]); the network grants the run used are narrowed again
/// from the plugins' stored grants, so a grant revoked since stays revoked.
pub fn rerun_of(run: &Run) -> Result<Rerun, RunError> {
    let config = stored_config(run)?;
    let mut options = config.options;
    options.network_from_operator = false;
    if let Some(parent) = &run.parent_run_id {
        return Ok(Rerun::Rescore(RescoreRequest {
            parent_run_id: parent.clone(),
            scorer_ids: run.scorer_ids.clone(),
            scorer_configs: options.scorer_configs,
            max_concurrency: Some(options.max_concurrency),
            run_id: None,
        }));
    }
    Ok(Rerun::Run(RunRequest {
        dataset_id: run.dataset_id.clone(),
        version: Some(run.dataset_version),
        target_type: run.target_type,
        target_id: run.target_id.clone(),
        scorer_ids: run.scorer_ids.clone(),
        options,
        run_id: None,
    }))
}

/// The plugins whose pinned digest differs between `before` and `after`
/// (a plugin replaced in the registry since `before` ran), as
/// `(id, before, after)`.
pub fn changed_pins(before: &Run, after: &Run) -> Result<Vec<(String, String, String)>, RunError> {
    let (a, b) = (stored_config(before)?, stored_config(after)?);
    let mut pins_a: BTreeMap<String, String> = a.scorer_digests;
    pins_a.insert(before.target_id.clone(), a.target_digest);
    let mut pins_b: BTreeMap<String, String> = b.scorer_digests;
    pins_b.insert(after.target_id.clone(), b.target_digest);
    Ok(pins_a
        .into_iter()
        .filter_map(|(id, da)| match pins_b.get(&id) {
            Some(db) if *db != da => Some((id, da, db.clone())),
            _ => None,
        })
        .collect())
}

/// The run's stored config (options and pinned digests).
pub fn stored_config(run: &Run) -> Result<StoredRunConfig, RunError> {
    serde_json::from_value(run.config.clone()).map_err(|e| RunError::InvalidOptions {
        field: "config".into(),
        message: format!("the stored config of run {} is unreadable: {e}", run.id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(id: &str, target_digest: &str, scorer_digest: &str) -> Run {
        let now = chrono::Utc::now();
        serde_json::from_value(json!({
            "id": id, "datasetId": "d1", "datasetVersion": 4,
            "targetType": "plugin", "targetId": "t", "scorerIds": ["s"],
            "status": "completed", "totalItems": 1, "succeededCount": 1,
            "failedCount": 0, "skippedCount": 0,
            "config": {"options": {"maxConcurrency": 7, "maxRetries": 1, "retryDelay": 10,
                                   "targetConfig": {"k": 1}, "scorerConfigs": {"s": {"x": true}}},
                       "targetDigest": target_digest, "scorerDigests": {"s": scorer_digest}},
            "error": null, "cancelRequested": false,
            "startedAt": now, "completedAt": now, "createdAt": now, "updatedAt": now,
        }))
        .expect("a valid run")
    }

    #[test]
    fn a_rerun_asks_for_the_same_version_plugins_and_options() {
        let original = run("r1", "sha256:t1", "sha256:s1");
        let Rerun::Run(request) = rerun_of(&original).unwrap() else {
            panic!("a run that called its target reruns as a run");
        };
        assert_eq!(request.dataset_id, "d1");
        assert_eq!(request.version, Some(4));
        assert_eq!(request.target_id, "t");
        assert_eq!(request.scorer_ids, vec!["s".to_string()]);
        assert_eq!(request.options.max_concurrency, 7);
        assert_eq!(request.options.max_retries, 1);
        assert_eq!(request.options.target_config, Some(json!({"k": 1})));
        assert_eq!(request.options.scorer_configs["s"], json!({"x": true}));

        let mut child = original.clone();
        child.parent_run_id = Some("p".into());
        let Rerun::Rescore(request) = rerun_of(&child).unwrap() else {
            panic!("a re-scoring run reruns as a re-scoring");
        };
        assert_eq!(request.parent_run_id, "p");
        assert_eq!(request.max_concurrency, Some(7));
        assert_eq!(request.scorer_configs["s"], json!({"x": true}));
    }

    #[test]
    fn changed_pins_name_each_replaced_plugin_with_both_digests() {
        let a = run("r1", "sha256:t1", "sha256:s1");
        assert!(
            changed_pins(&a, &run("r2", "sha256:t1", "sha256:s1"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            changed_pins(&a, &run("r2", "sha256:t1", "sha256:s2")).unwrap(),
            vec![(
                "s".to_string(),
                "sha256:s1".to_string(),
                "sha256:s2".to_string()
            )]
        );
    }
}
