//! The output cache in the executor: a run with the cache reuses the
//! outputs an earlier run stored for the same target digest, config and
//! item, calls the target for everything else (failures included: a
//! failure is never stored), and says which results were cached.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use assay_runner::stats::summarize_stored;
use assay_runner::{Executor, OutputCache, RunHooks, RunOptions, TargetSource};
use assay_store::{NewRun, Run, RunResult, RunStatus, Store, TargetType};
use common::*;
use serde_json::{Value, json};

fn opts() -> RunOptions {
    RunOptions {
        max_concurrency: 16,
        cache: true,
        ..Default::default()
    }
}

/// A new pending run over the same dataset version as `run`.
async fn another_run(store: &Arc<dyn Store>, run: &Run) -> Run {
    store
        .create_run(
            TENANT,
            NewRun {
                id: None,
                dataset_id: run.dataset_id.clone(),
                dataset_version: run.dataset_version,
                target_type: TargetType::Plugin,
                target_id: "mock".into(),
                scorer_ids: vec![],
                config: json!({}),
                total_items: run.total_items,
                repeats: 1,
                parent_run_id: None,
            },
        )
        .await
        .unwrap()
}

/// Executes `run` through `target` behind the output cache, keyed by
/// `digest` and `config`.
async fn run_cached(
    store: &Arc<dyn Store>,
    run: &Run,
    target: &Arc<MockTarget>,
    digest: &str,
    config: Option<Value>,
) -> Run {
    let cache = OutputCache::new(
        store.clone(),
        TENANT,
        &run.id,
        target.clone(),
        TargetType::Plugin,
        digest,
        config.as_ref(),
    );
    let mut p = plan(run.clone(), target.clone(), vec![], opts());
    p.target = TargetSource::Cached(Arc::new(cache));
    let summary = Executor::new(store.clone())
        .with_page_size(64)
        .execute(p, RunHooks::default())
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    store.get_run(TENANT, &run.id).await.unwrap()
}

fn calls(target: &MockTarget) -> usize {
    target.calls.load(Ordering::SeqCst)
}

fn cached_from(r: &RunResult) -> Option<&str> {
    r.target_metadata
        .as_ref()?
        .pointer("/cached/fromRun")?
        .as_str()
}

#[tokio::test]
async fn a_second_run_reuses_the_stored_outputs_and_calls_the_target_for_failures_only() {
    let (store, _dir) = store().await;
    // 300 items (several pages of the feed), every 7th failing.
    let inputs = (0..300)
        .map(|i| match i % 7 {
            3 => json!({"n": i, "fail": "boom"}),
            _ => json!({"n": i}),
        })
        .collect();
    let first = dataset_run(&store, inputs).await;
    let target = Arc::new(MockTarget::default());
    let config = Some(json!({"model": "m", "apiKeySecret": "OPENAI_API_KEY"}));

    let first = run_cached(&store, &first, &target, "sha256:t1", config.clone()).await;
    assert_eq!(calls(&target), 300, "an empty cache: every item is a call");
    let failed = (0..300).filter(|i| i % 7 == 3).count();
    assert_eq!(first.failed_count, failed as i64);
    let before = all_results(&store, &first.id).await;
    assert!(before.iter().all(|r| cached_from(r).is_none()));
    let stats = store.cache_stats(TENANT).await.unwrap();
    assert_eq!(
        stats.entries,
        300 - failed as i64,
        "failures are not stored"
    );

    let second = another_run(&store, &first).await;
    let second = run_cached(&store, &second, &target, "sha256:t1", config).await;
    assert_eq!(
        calls(&target),
        300 + failed,
        "only the failed items call the target again"
    );
    assert_eq!(second.succeeded_count, 300 - failed as i64);
    assert_eq!(second.failed_count, failed as i64);

    let after = all_results(&store, &second.id).await;
    assert_eq!(after.len(), 300);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a.item_id, b.item_id);
        match &a.error {
            Some(error) => {
                assert_eq!(b.error.as_ref(), Some(error), "item {}", a.item_index);
                assert_eq!(cached_from(b), None, "a failure is never reused");
            }
            None => {
                assert_eq!(b.output, a.output, "item {}", a.item_index);
                assert_eq!(b.latency, a.latency, "the original call's latency");
                assert_eq!(b.trace_id, a.trace_id);
                assert_eq!(cached_from(b), Some(first.id.as_str()));
                let usage = |r: &RunResult| r.target_metadata.as_ref().unwrap()["usage"].clone();
                assert_eq!(usage(b), usage(a), "the original call's token usage");
            }
        }
    }
    let stats = summarize_stored(&store, TENANT, &second, 0.5)
        .await
        .unwrap();
    assert_eq!(stats.cached_count, (300 - failed) as u64);
    let stats = summarize_stored(&store, TENANT, &first, 0.5).await.unwrap();
    assert_eq!(stats.cached_count, 0);
}

#[tokio::test]
async fn an_item_that_failed_is_called_again_and_its_success_is_then_reused() {
    let (store, _dir) = store().await;
    // Fails (transiently, without retries) on its first call only.
    let run = dataset_run(
        &store,
        vec![json!({"n": 1, "failTimes": 1}), json!({"n": 2})],
    )
    .await;
    let target = Arc::new(MockTarget::default());
    let run = run_cached(&store, &run, &target, "sha256:t1", None).await;
    assert_eq!((run.succeeded_count, run.failed_count), (1, 1));
    assert_eq!(calls(&target), 2);

    let second = another_run(&store, &run).await;
    let second = run_cached(&store, &second, &target, "sha256:t1", None).await;
    assert_eq!((second.succeeded_count, second.failed_count), (2, 0));
    assert_eq!(calls(&target), 3, "the failed item was called again");

    let third = another_run(&store, &run).await;
    let third = run_cached(&store, &third, &target, "sha256:t1", None).await;
    assert_eq!((third.succeeded_count, third.failed_count), (2, 0));
    assert_eq!(calls(&target), 3, "both outputs came from the cache");
    let results = all_results(&store, &third.id).await;
    assert_eq!(cached_from(&results[0]), Some(second.id.as_str()));
    assert_eq!(cached_from(&results[1]), Some(run.id.as_str()));
}

#[tokio::test]
async fn the_key_covers_the_target_digest_its_config_and_the_item() {
    let (store, _dir) = store().await;
    let target = Arc::new(MockTarget::default());
    let run = dataset_run(&store, vec![json!({"n": 1, "q": "a"})]).await;
    let config = json!({"model": "m", "temperature": 0});
    run_cached(&store, &run, &target, "sha256:t1", Some(config)).await;
    assert_eq!(calls(&target), 1);

    // The same config written in another order: a hit.
    let again = another_run(&store, &run).await;
    let same = json!({"temperature": 0, "model": "m"});
    run_cached(&store, &again, &target, "sha256:t1", Some(same.clone())).await;
    assert_eq!(calls(&target), 1);

    // Another config, another digest of the target: misses.
    let other_config = another_run(&store, &run).await;
    let changed = json!({"model": "m", "temperature": 1});
    run_cached(&store, &other_config, &target, "sha256:t1", Some(changed)).await;
    assert_eq!(calls(&target), 2);
    let other_digest = another_run(&store, &run).await;
    run_cached(
        &store,
        &other_digest,
        &target,
        "sha256:t2",
        Some(same.clone()),
    )
    .await;
    assert_eq!(calls(&target), 3);

    // Another item input (another dataset): a miss.
    let other_item = dataset_run(&store, vec![json!({"n": 1, "q": "b"})]).await;
    run_cached(
        &store,
        &other_item,
        &target,
        "sha256:t1",
        Some(same.clone()),
    )
    .await;
    assert_eq!(calls(&target), 4);
    // The same input in another dataset: a hit (the key is the item's
    // content, not its id).
    let same_item = dataset_run(&store, vec![json!({"q": "a", "n": 1})]).await;
    run_cached(&store, &same_item, &target, "sha256:t1", Some(same.clone())).await;
    assert_eq!(calls(&target), 4);

    // After clearing, everything is a call again.
    store.clear_cache(TENANT).await.unwrap();
    let cleared = another_run(&store, &run).await;
    run_cached(&store, &cleared, &target, "sha256:t1", Some(same)).await;
    assert_eq!(calls(&target), 5);
}

#[tokio::test]
async fn a_run_without_the_cache_neither_reads_nor_writes_it() {
    let (store, _dir) = store().await;
    let target = Arc::new(MockTarget::default());
    let run = dataset_run(&store, plain(5)).await;
    run_cached(&store, &run, &target, "sha256:t1", None).await;
    assert_eq!(calls(&target), 5);

    let plain_run = another_run(&store, &run).await;
    Executor::new(store.clone())
        .execute(
            plan(
                plain_run.clone(),
                target.clone(),
                vec![],
                RunOptions::default(),
            ),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(calls(&target), 10, "the cache is opt-in");
    assert!(
        all_results(&store, &plain_run.id)
            .await
            .iter()
            .all(|r| cached_from(r).is_none())
    );
    assert_eq!(store.cache_stats(TENANT).await.unwrap().entries, 5);
}
