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

/// The cache entry of `wasm` in `dir` for `host`.
fn entry_of(
    host: &PluginHost,
    dir: &std::path::Path,
    wasm: &std::path::Path,
) -> std::path::PathBuf {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(wasm).unwrap()));
    dir.join(format!("{digest}-{}.cwasm", host.engine_config_hash()))
}

#[cfg(unix)]
#[test]
fn directory_and_entries_are_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let host = host_with_cache(&cache);
    let wasm = assay_test_support::plugin_wasm("echo");
    host.load_file(&wasm).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&entry_of(&host, &cache, &wasm)), 0o600);
}

/// Another component's compiled code under this component's name (a valid
/// entry for the engine, so wasmtime alone would load it) is refused.
#[test]
fn swapped_entry_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_with_cache(dir.path());
    let echo = assay_test_support::plugin_wasm("echo");
    let exact = assay_test_support::plugin_wasm("exact-match");
    host.load_file(&echo).unwrap();
    host.load_file(&exact).unwrap();
    std::fs::copy(
        entry_of(&host, dir.path(), &exact),
        entry_of(&host, dir.path(), &echo),
    )
    .unwrap();

    let fresh = host_with_cache(dir.path());
    let plugin = fresh.load_file(&echo).unwrap();
    assert!(!plugin.loaded_from_cache());
    assert_eq!(plugin.info().id, "echo");
    assert_eq!(fresh.cache_stats().rejected, 1);
    // The entry was rewritten with echo's code: the next host hits.
    let again = host_with_cache(dir.path()).load_file(&echo).unwrap();
    assert!(again.loaded_from_cache());
    assert_eq!(again.info().id, "echo");
}

#[test]
fn altered_entry_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_with_cache(dir.path());
    let wasm = assay_test_support::plugin_wasm("echo");
    host.load_file(&wasm).unwrap();
    let entry = entry_of(&host, dir.path(), &wasm);
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&entry, &bytes).unwrap();

    let fresh = host_with_cache(dir.path());
    assert!(!fresh.load_file(&wasm).unwrap().loaded_from_cache());
    assert_eq!(fresh.cache_stats().rejected, 1);
}

#[cfg(unix)]
#[test]
fn entry_open_to_other_users_is_not_loaded() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let host = host_with_cache(dir.path());
    let wasm = assay_test_support::plugin_wasm("echo");
    host.load_file(&wasm).unwrap();
    let entry = entry_of(&host, dir.path(), &wasm);
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();

    let fresh = host_with_cache(dir.path());
    assert!(!fresh.load_file(&wasm).unwrap().loaded_from_cache());
    assert_eq!(fresh.cache_stats().rejected, 1);
}

/// Needs root (to give the file away); the test machine and CI run as root.
#[cfg(unix)]
#[test]
fn entry_owned_by_another_user_is_not_loaded() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: changing a file's owner needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let host = host_with_cache(dir.path());
    let wasm = assay_test_support::plugin_wasm("echo");
    host.load_file(&wasm).unwrap();
    let entry = entry_of(&host, dir.path(), &wasm);
    std::os::unix::fs::chown(&entry, Some(65534), Some(65534)).unwrap();

    let fresh = host_with_cache(dir.path());
    assert!(!fresh.load_file(&wasm).unwrap().loaded_from_cache());
    assert_eq!(fresh.cache_stats().rejected, 1);
}

#[test]
fn disk_cache_is_trimmed_to_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["echo", "exact-match", "contains"];
    let wasms: Vec<_> = names
        .iter()
        .map(|n| assay_test_support::plugin_wasm(n))
        .collect();
    // Measure the entries, then allow exactly the two newest.
    let probe = host_with_cache(dir.path());
    let sizes: Vec<u64> = wasms
        .iter()
        .map(|wasm| {
            probe.load_file(wasm).unwrap();
            let entry = entry_of(&probe, dir.path(), wasm);
            let len = std::fs::metadata(&entry).unwrap().len();
            std::fs::remove_file(entry).unwrap();
            len
        })
        .collect();
    let budget = sizes[1] + sizes[2];

    let host = PluginHost::new(HostConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        cache_max_bytes: budget,
        max_instances: 8,
        ..HostConfig::default()
    })
    .unwrap();
    for wasm in &wasms {
        host.load_file(wasm).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let total: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(total <= budget, "{total} bytes on disk, budget {budget}");
    assert!(host.cache_stats().trimmed >= 1);
    // The newest entry stays; the oldest (echo) went first.
    assert!(entry_of(&host, dir.path(), &wasms[2]).is_file());
    assert!(!entry_of(&host, dir.path(), &wasms[0]).is_file());
}
