//! The output cache's part of the storage contract (SQLite and PostgreSQL):
//! entries per tenant, lookups that mark what they return as used, the
//! `cache-bytes` budget kept by evicting the least recently used entries,
//! clearing, and the count of a run's results that reused a cached output.

use super::*;

contract!(
    cached_outputs_round_trip_per_tenant,
    the_cache_stays_within_the_tenant_budget_evicting_the_least_recently_used,
    concurrent_writes_keep_the_cache_within_its_budget,
    clearing_the_cache_empties_one_tenant_only,
    results_that_reused_a_cached_output_are_counted,
);

/// An entry whose output is `output` (same-length outputs give same-size
/// entries).
fn entry(key: &str, output: &str) -> NewCachedOutput {
    NewCachedOutput {
        key: key.into(),
        target_id: "openai-chat".into(),
        output: json!({ "text": output }),
        target_metadata: Some(json!({"usage": {"totalTokens": 12}, "model": "m-1"})),
        trace_id: Some(format!("trace-{key}")),
        latency: 51.5,
        run_id: "run-0".into(),
    }
}

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|k| k.to_string()).collect()
}

/// The keys a lookup of `list` finds, sorted.
async fn found(s: &Fixture, tenant: &str, list: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = s
        .cached_outputs(tenant, &keys(list))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.key)
        .collect();
    found.sort();
    found
}

async fn tenant_with_budget(s: &Fixture, name: &str, cache_bytes: i64) {
    let limits = TenantLimits {
        cache_bytes,
        ..TenantLimits::default()
    };
    s.create_tenant(name, &limits).await.unwrap();
}

/// Lets the clock move past the millisecond timestamps of earlier writes.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

async fn cached_outputs_round_trip_per_tenant(s: Fixture) {
    s.create_tenant("team-b", &TenantLimits::default())
        .await
        .unwrap();
    let (a, b) = (entry("k-a", "alpha"), entry("k-b", "beta"));
    let put = s
        .put_cached_outputs(T, vec![a.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(
        put,
        CachePut {
            stored: 2,
            too_large: 0,
            evicted: 0
        }
    );
    let stats = s.cache_stats(T).await.unwrap();
    assert_eq!(stats.entries, 2);
    assert_eq!(stats.bytes, a.size_bytes() + b.size_bytes());
    assert_eq!(stats.limit_bytes, TenantLimits::default().cache_bytes);
    assert_eq!(s.tenant_usage(T).await.unwrap().cache_bytes, stats.bytes);

    // Unknown keys are left out; a key asked twice is one entry.
    let before = Utc::now() - chrono::Duration::milliseconds(1);
    let mut got = s
        .cached_outputs(T, &keys(&["k-a", "nope", "k-a"]))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let got = got.remove(0);
    assert_eq!(got.key, "k-a");
    assert_eq!(got.target_id, "openai-chat");
    assert_eq!(got.output, json!({"text": "alpha"}));
    assert_eq!(got.target_metadata, a.target_metadata);
    assert_eq!(got.trace_id.as_deref(), Some("trace-k-a"));
    assert_eq!(got.latency, 51.5);
    assert_eq!(got.run_id, "run-0");
    assert_eq!(got.size_bytes, a.size_bytes());
    assert_eq!(got.hits, 1, "this lookup counts");
    assert!(got.last_used_at >= before, "the lookup marked it used");
    assert_eq!(
        s.cached_outputs(T, &keys(&["k-a"])).await.unwrap()[0].hits,
        2
    );
    assert!(s.cached_outputs(T, &[]).await.unwrap().is_empty());

    // Another tenant sees none of it, and has its own entry for the key.
    assert!(found(&s, "team-b", &["k-a", "k-b"]).await.is_empty());
    s.put_cached_outputs("team-b", vec![entry("k-a", "other")])
        .await
        .unwrap();
    assert_eq!(
        s.cached_outputs("team-b", &keys(&["k-a"])).await.unwrap()[0].output,
        json!({"text": "other"})
    );
    assert_eq!(
        s.cached_outputs(T, &keys(&["k-a"])).await.unwrap()[0].output,
        json!({"text": "alpha"})
    );

    // Writing a key again replaces its entry and its bytes.
    let longer = entry("k-b", "a much longer answer than before");
    s.put_cached_outputs(T, vec![longer.clone()]).await.unwrap();
    let stats = s.cache_stats(T).await.unwrap();
    assert_eq!(stats.entries, 2);
    assert_eq!(stats.bytes, a.size_bytes() + longer.size_bytes());
    let replaced = &s.cached_outputs(T, &keys(&["k-b"])).await.unwrap()[0];
    assert_eq!(replaced.output, longer.output);
    assert_eq!(replaced.hits, 1, "a replaced entry starts its count again");

    assert_not_found(s.put_cached_outputs("nobody", vec![entry("k", "x")]).await);
    assert_not_found(s.cache_stats("nobody").await);
}

async fn the_cache_stays_within_the_tenant_budget_evicting_the_least_recently_used(s: Fixture) {
    let size = entry("k1", "same").size_bytes();
    tenant_with_budget(&s, "small", 3 * size).await;
    assert_eq!(
        s.tenant_limits("small").await.unwrap().cache_bytes,
        3 * size
    );
    for key in ["k1", "k2", "k3"] {
        s.put_cached_outputs("small", vec![entry(key, "same")])
            .await
            .unwrap();
        tick().await;
    }
    // k1 is used again, so k2 is now the least recently used.
    assert_eq!(found(&s, "small", &["k1"]).await, ["k1"]);
    tick().await;
    let put = s
        .put_cached_outputs("small", vec![entry("k4", "same")])
        .await
        .unwrap();
    assert_eq!((put.stored, put.evicted), (1, 1));
    assert_eq!(
        found(&s, "small", &["k1", "k2", "k3", "k4"]).await,
        ["k1", "k3", "k4"]
    );
    let stats = s.cache_stats("small").await.unwrap();
    assert_eq!((stats.entries, stats.bytes), (3, 3 * size));

    // An output larger than the whole budget is not stored, and evicts
    // nothing; in a write with smaller ones, only it is left out.
    let huge = entry("huge", &"x".repeat(4 * size as usize));
    let put = s
        .put_cached_outputs("small", vec![huge.clone()])
        .await
        .unwrap();
    assert_eq!(
        put,
        CachePut {
            stored: 0,
            too_large: 1,
            evicted: 0
        }
    );
    tick().await;
    let put = s
        .put_cached_outputs("small", vec![huge, entry("k5", "same")])
        .await
        .unwrap();
    assert_eq!((put.stored, put.too_large, put.evicted), (1, 1, 1));
    assert!(found(&s, "small", &["huge"]).await.is_empty());
    assert_eq!(
        found(&s, "small", &["k1", "k3", "k4", "k5"]).await.len(),
        3,
        "one of the older entries made room for k5"
    );

    // A lowered budget applies at the next write, which evicts down to it.
    let mut limits = s.tenant_limits("small").await.unwrap();
    limits.cache_bytes = size;
    s.set_tenant_limits("small", &limits).await.unwrap();
    tick().await;
    let put = s
        .put_cached_outputs("small", vec![entry("k6", "same")])
        .await
        .unwrap();
    assert_eq!((put.stored, put.evicted), (1, 3));
    assert_eq!(
        found(&s, "small", &["k1", "k2", "k3", "k4", "k5", "k6"]).await,
        ["k6"]
    );
    let stats = s.cache_stats("small").await.unwrap();
    assert_eq!(
        (stats.entries, stats.bytes, stats.limit_bytes),
        (1, size, size)
    );
    assert_eq!(s.tenant_usage("small").await.unwrap().cache_bytes, size);

    // A budget of 0 stores nothing.
    limits.cache_bytes = 0;
    s.set_tenant_limits("small", &limits).await.unwrap();
    let put = s
        .put_cached_outputs("small", vec![entry("k7", "same")])
        .await
        .unwrap();
    assert_eq!((put.stored, put.too_large), (0, 1));
    assert_eq!(
        field_of(
            s.set_tenant_limits(
                "small",
                &TenantLimits {
                    cache_bytes: -1,
                    ..limits
                }
            )
            .await
        ),
        "cache-bytes"
    );
}

/// Writes of one tenant from two connections (two processes) never take
/// its cache past the budget, and its byte count stays the entries' sum.
async fn concurrent_writes_keep_the_cache_within_its_budget(s: Fixture) {
    let size = entry("c00a", "same").size_bytes();
    tenant_with_budget(&s, "busy", 5 * size).await;
    let other = connect(&s.url).await.unwrap();
    let stores = [s.store.clone(), other];
    let writes = (0..12).map(|i| {
        let store = stores[i % 2].clone();
        async move {
            let batch = vec![
                entry(&format!("c{i:02}a"), "same"),
                entry(&format!("c{i:02}b"), "same"),
            ];
            store.put_cached_outputs("busy", batch).await.unwrap()
        }
    });
    let puts = futures::future::join_all(writes).await;
    let stored: u64 = puts.iter().map(|p| p.stored).sum();
    let evicted: u64 = puts.iter().map(|p| p.evicted).sum();
    assert_eq!(stored, 24);
    let stats = s.cache_stats("busy").await.unwrap();
    assert_eq!(stats.entries as u64, stored - evicted);
    assert_eq!(stats.bytes, stats.entries * size);
    assert!(stats.bytes <= 5 * size, "{stats:?}");
    assert_eq!(
        s.tenant_usage("busy").await.unwrap().cache_bytes,
        stats.bytes
    );
}

async fn clearing_the_cache_empties_one_tenant_only(s: Fixture) {
    s.create_tenant("team-b", &TenantLimits::default())
        .await
        .unwrap();
    let mine = vec![entry("k1", "one"), entry("k2", "two")];
    let bytes: i64 = mine.iter().map(NewCachedOutput::size_bytes).sum();
    s.put_cached_outputs(T, mine).await.unwrap();
    s.put_cached_outputs("team-b", vec![entry("k1", "theirs")])
        .await
        .unwrap();

    let cleared = s.clear_cache(T).await.unwrap();
    assert_eq!(cleared, CacheCleared { entries: 2, bytes });
    let stats = s.cache_stats(T).await.unwrap();
    assert_eq!((stats.entries, stats.bytes), (0, 0));
    assert_eq!(s.tenant_usage(T).await.unwrap().cache_bytes, 0);
    assert!(found(&s, T, &["k1", "k2"]).await.is_empty());
    assert_eq!(found(&s, "team-b", &["k1"]).await, ["k1"]);
    assert_eq!(s.cache_stats("team-b").await.unwrap().entries, 1);

    // Clearing again removes nothing; the cache fills again afterwards.
    assert_eq!(s.clear_cache(T).await.unwrap(), CacheCleared::default());
    s.put_cached_outputs(T, vec![entry("k3", "three")])
        .await
        .unwrap();
    assert_eq!(s.cache_stats(T).await.unwrap().entries, 1);
}

async fn results_that_reused_a_cached_output_are_counted(s: Fixture) {
    let (_, added, run) = claimed_run(&s, 4, "w1").await;
    let mut batch: Vec<NewResult> = added
        .iter()
        .enumerate()
        .map(|(i, it)| result_for(it, i as i64, None))
        .collect();
    batch[0].target_metadata = Some(json!({"usage": {"totalTokens": 3},
        "cached": {"fromRun": "run-0", "storedAt": "2026-01-01T00:00:00Z", "key": "k"}}));
    batch[1].target_metadata = Some(json!({"cached": {"fromRun": "run-0"}}));
    // Not the cache's mark: a plugin's own `cached` flag, and no metadata.
    batch[2].target_metadata = Some(json!({"cached": true}));
    batch[3].target_metadata = None;
    s.write_results(&run.id, &assay_store::Claim::of("w1", &run), batch)
        .await
        .unwrap();
    assert_eq!(s.cached_result_count(T, &run.id).await.unwrap(), 2);
    assert_eq!(s.cached_result_count("other", &run.id).await.unwrap(), 0);
}
