//! The disk cache of compiled components.

use assay_plugin_host::{HostConfig, PluginHost};

fn host_with_cache(dir: &std::path::Path) -> PluginHost {
    PluginHost::new(HostConfig {
        cache_dir: Some(dir.to_path_buf()),
        max_instances: 8,
        ..HostConfig::default()
    })
    .expect("host")
}

#[test]
fn second_host_loads_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = assay_test_support::plugin_wasm("exact-match");

    let first = host_with_cache(dir.path());
    let plugin = first.load_file(&wasm).unwrap();
    assert!(!plugin.loaded_from_cache());
    let stats = first.cache_stats();
    assert_eq!((stats.hits, stats.misses, stats.writes), (0, 1, 1));
    let digest = plugin.digest().strip_prefix("sha256:").unwrap().to_string();
    let entry = dir
        .path()
        .join(format!("{digest}-{}.cwasm", first.engine_config_hash()));
    assert!(
        entry.is_file(),
        "cache entry written at {}",
        entry.display()
    );

    // A new host (as after a restart) with the same settings hits.
    let second = host_with_cache(dir.path());
    assert_eq!(second.engine_config_hash(), first.engine_config_hash());
    let again = second.load_file(&wasm).unwrap();
    assert!(again.loaded_from_cache());
    assert_eq!(second.cache_stats().hits, 1);
    assert_eq!(second.cache_stats().misses, 0);
    assert_eq!(again.info(), plugin.info());
}

#[test]
fn corrupt_cache_entry_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = assay_test_support::plugin_wasm("echo");
    let host = host_with_cache(dir.path());
    let plugin = host.load_file(&wasm).unwrap();
    let digest = plugin.digest().strip_prefix("sha256:").unwrap().to_string();
    let entry = dir
        .path()
        .join(format!("{digest}-{}.cwasm", host.engine_config_hash()));
    std::fs::write(&entry, b"not a compiled component").unwrap();

    let fresh = host_with_cache(dir.path());
    let reloaded = fresh.load_file(&wasm).unwrap();
    assert!(!reloaded.loaded_from_cache());
    assert_eq!(fresh.cache_stats().writes, 1);
    assert!(
        std::fs::read(&entry).unwrap().len() > 1000,
        "entry rewritten"
    );
}

#[test]
fn without_cache_dir_nothing_is_cached() {
    let host = PluginHost::new(HostConfig::default()).unwrap();
    let wasm = assay_test_support::plugin_wasm("echo");
    assert!(!host.load_file(&wasm).unwrap().loaded_from_cache());
    assert!(!host.load_file(&wasm).unwrap().loaded_from_cache());
    assert_eq!(host.cache_stats().misses, 2);
    assert_eq!(host.cache_stats().writes, 0);
}
