//! `PluginHost::load`: the guarded load servers use for uploads.

use std::sync::Arc;
use std::time::Duration;

use assay_plugin_host::{HostConfig, Limits, LoadError, PluginHost, PluginItem};
use serde_json::json;

fn host(tweak: impl FnOnce(&mut HostConfig)) -> PluginHost {
    let mut config = HostConfig {
        max_instances: 16,
        ..HostConfig::default()
    };
    tweak(&mut config);
    PluginHost::new(config).expect("host")
}

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(assay_test_support::plugin_wasm(name)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_loads_compile_once() {
    let host = host(|_| {});
    let bytes = wasm("exact-match");
    let loads = (0..10).map(|_| host.load(bytes.clone()));
    let plugins: Vec<_> = futures::future::join_all(loads)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("all loads succeed");
    assert!(plugins.iter().all(|p| Arc::ptr_eq(p, &plugins[0])));
    assert_eq!(host.cache_stats().misses, 1, "compiled once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_failing_loads_share_the_error() {
    let host = host(|_| {});
    let mut bytes = wasm("exact-match");
    bytes.truncate(bytes.len() - 3);
    let loads = (0..5).map(|_| host.load(bytes.clone()));
    for result in futures::future::join_all(loads).await {
        assert!(matches!(result, Err(LoadError::Compile(_))), "{result:?}");
    }
    assert_eq!(host.cache_stats().misses, 1, "compiled once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_over_the_time_limit_fails_with_a_clear_error() {
    let host = host(|c| c.compile_timeout = Duration::from_millis(1));
    let err = host.load(wasm("json-valid")).await.unwrap_err();
    assert!(matches!(err, LoadError::CompileTimeout { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "compiling the component took longer than the limit of 1ms (the host may be busy compiling other uploads: try again later)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_component_is_refused_before_compiling() {
    let host = host(|c| c.max_component_bytes = 1000);
    let err = host.load(wasm("echo")).await.unwrap_err();
    assert!(
        matches!(err, LoadError::TooLarge { limit: 1000, .. }),
        "{err:?}"
    );
    assert_eq!(host.cache_stats().misses, 0);
}

/// While the only compile slot is busy with a big component, calls to an
/// already loaded plugin go on: the compile runs off the async workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_compile_does_not_block_calls() {
    let host = host(|c| c.max_concurrent_compiles = 1);
    let scorer = host.load(wasm("exact-match")).await.unwrap();
    let compiling = tokio::spawn({
        let host = host.clone();
        async move { host.load(wasm("json-valid")).await }
    });
    let item = PluginItem {
        id: "1".into(),
        input: json!("q"),
        ground_truth: Some(json!("a")),
        metadata: None,
    };
    for _ in 0..20 {
        let score = scorer
            .score(&item, Some(&json!("a")), None, &Limits::scorer_default())
            .await
            .unwrap();
        assert_eq!(score.value, 1.0);
    }
    assert!(
        !compiling.is_finished(),
        "the calls finished while the big component was still compiling"
    );
    compiling.await.unwrap().expect("the big component loads");
}
