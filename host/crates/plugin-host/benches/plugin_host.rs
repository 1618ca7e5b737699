//! `cargo bench -p assay-plugin-host`: figures for BENCHMARKS.md.
//!
//! * memory (VmRSS) of an idle host with 10 plugins loaded, and the time to
//!   start a host and load them from the disk cache;
//! * component load: compile vs load from the disk cache;
//! * per-call cost of a trivial scorer (exact-match) with a fresh instance,
//!   sequential and concurrent.
//!
//! Set `ASSAY_BENCH_CALLS` to change the number of calls (default 10000).
//! Set `ASSAY_BENCH_COMPONENTS=label=path.wasm,label=path.wasm` to measure
//! other scorer components instead (the Python and JavaScript SDKs' word
//! overlap, say): size, first compile, cache-hit load, and per-call cost
//! with a fresh instance (p50, p99).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_plugin_host::{HostConfig, Limits, Plugin, PluginHost, PluginItem};
use serde_json::json;

const SHIPPED: &[&str] = &[
    "echo",
    "template",
    "exact-match",
    "contains",
    "regex",
    "levenshtein",
    "content-similarity",
    "keyword-coverage",
    "textual-difference",
    "json-valid",
    "numeric-diff",
];

fn main() {
    if let Some(dir) = std::env::var_os(IDLE_CHILD) {
        idle_memory_child(dir.into());
        return;
    }
    // `cargo bench` passes `--bench`; any other argument filters nothing.
    let calls: usize = std::env::var("ASSAY_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let available = assay_test_support::plugin_crates();
    let plugins: Vec<PathBuf> = SHIPPED
        .iter()
        .filter(|name| available.iter().any(|a| a == *name))
        .map(|name| assay_test_support::plugin_wasm(name))
        .collect();
    println!("assay-plugin-host bench ({} cores)", cores());
    if let Ok(list) = std::env::var("ASSAY_BENCH_COMPONENTS") {
        for entry in list.split(',').filter(|e| !e.is_empty()) {
            let (label, path) = entry.split_once('=').unwrap_or((entry, entry));
            component_cost(label, &PathBuf::from(path), calls);
        }
        return;
    }

    idle_memory(&plugins);
    compile_vs_cache(&plugins);
    per_call(calls, true);
    per_call(calls / 2, false);
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Environment variable that makes the bench process the idle-memory child.
const IDLE_CHILD: &str = "ASSAY_BENCH_IDLE_CHILD";

/// RSS of a host with 10 plugins loaded and idle, and its start-up time
/// from a warm cache, measured in a fresh child process (as a restarted
/// `assay serve` would start), so nothing this process did counts.
fn idle_memory(plugins: &[PathBuf]) {
    let ten: Vec<&PathBuf> = plugins.iter().take(10).collect();
    let cache = tempfile::tempdir().unwrap();
    let config = HostConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..HostConfig::default()
    };
    {
        let warm = PluginHost::new(config).unwrap();
        for p in &ten {
            warm.load_file(p).unwrap();
        }
    }
    let paths = std::env::join_paths(&ten).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(IDLE_CHILD, cache.path())
        .env("ASSAY_BENCH_PLUGINS", paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// The child side of [`idle_memory`].
fn idle_memory_child(cache_dir: PathBuf) {
    let plugins: Vec<PathBuf> =
        std::env::split_paths(&std::env::var_os("ASSAY_BENCH_PLUGINS").unwrap()).collect();
    let start_rss = vm_rss_kib();
    let started = Instant::now();
    let host = PluginHost::new(HostConfig {
        cache_dir: Some(cache_dir),
        ..HostConfig::default()
    })
    .unwrap();
    let host_time = started.elapsed();
    let host_rss = vm_rss_kib();
    let loaded: Vec<Arc<Plugin>> = plugins.iter().map(|p| host.load_file(p).unwrap()).collect();
    let total_time = started.elapsed();
    assert!(loaded.iter().all(|p| p.loaded_from_cache()));
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = vm_rss_kib();
    println!(
        "\n== idle host with {} plugins loaded (fresh process) ==",
        loaded.len()
    );
    println!(
        "start: PluginHost::new {:.1} ms (pooling: {}), + load {} plugins from the disk cache = {:.1} ms total",
        ms(host_time),
        host.uses_pooling(),
        loaded.len(),
        ms(total_time)
    );
    println!(
        "VmRSS: process start {:.1} MiB, after PluginHost::new {:.1} MiB, with {} plugins loaded and idle {:.1} MiB (host + plugins: +{:.1} MiB)",
        mib(start_rss),
        mib(host_rss),
        loaded.len(),
        mib(idle_rss),
        mib(idle_rss.saturating_sub(start_rss))
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Load time with a compile (empty cache) vs from the disk cache, for 3
/// plugins; median of 5 rounds, each with a fresh cache dir and host.
fn compile_vs_cache(plugins: &[PathBuf]) {
    println!("\n== component load: compile vs disk cache (median of 5) ==");
    println!(
        "{:<28} {:>9} {:>14} {:>14}",
        "plugin", "size", "compile+load", "cache-hit load"
    );
    for path in plugins.iter().take(3) {
        let mut compiled = Vec::new();
        let mut cached = Vec::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let config = HostConfig {
                cache_dir: Some(dir.path().to_path_buf()),
                max_instances: 16,
                ..HostConfig::default()
            };
            let cold = PluginHost::new(config.clone()).unwrap();
            let t = Instant::now();
            let p = cold.load_file(path).unwrap();
            compiled.push(t.elapsed());
            assert!(!p.loaded_from_cache());
            let warm = PluginHost::new(config).unwrap();
            let t = Instant::now();
            let p = warm.load_file(path).unwrap();
            cached.push(t.elapsed());
            assert!(p.loaded_from_cache());
        }
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        println!(
            "{:<28} {:>6} KB {:>11.2} ms {:>11.2} ms",
            path.file_name().unwrap().to_string_lossy(),
            size / 1000,
            ms(median(compiled)),
            ms(median(cached))
        );
    }
    println!("(both include pre-instantiation and the one `info` call made at load)");
}

fn item(i: usize) -> PluginItem {
    PluginItem {
        id: format!("item-{i}"),
        input: json!("What is the capital of France?"),
        ground_truth: Some(json!("Paris")),
        metadata: None,
    }
}

struct Stats {
    mean: Duration,
    p50: Duration,
    p99: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let total: Duration = v.iter().sum();
    Stats {
        mean: total / v.len() as u32,
        p50: v[v.len() / 2],
        p99: v[v.len() * 99 / 100],
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Per-call cost of exact-match with a fresh instance per call.
fn per_call(calls: usize, pooling: bool) {
    let host = PluginHost::new(HostConfig {
        pooling,
        ..HostConfig::default()
    })
    .unwrap();
    let scorer = host
        .load_file(&assay_test_support::plugin_wasm("exact-match"))
        .unwrap();
    let allocator = if host.uses_pooling() {
        "pooling"
    } else {
        "on-demand"
    };
    let output = json!("Paris");
    let limits = Limits::scorer_default();
    println!("\n== per call, exact-match, fresh instance, {allocator} allocator ==");

    // Sequential, on a current-thread runtime.
    let items: Vec<PluginItem> = (0..calls).map(item).collect();
    let lat = sequential_latencies(&scorer, &items, &output, &limits, 200, Some(1.0));
    let total: Duration = lat.iter().sum();
    let s = stats(lat);
    println!(
        "sequential ({calls} calls): mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs, {:.0} calls/s",
        us(s.mean),
        us(s.p50),
        us(s.p99),
        calls as f64 / total.as_secs_f64()
    );

    // 2 tokio workers, 16 calls in flight.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let concurrency = 16;
    let (elapsed, lat) = rt.block_on(async {
        let scorer = scorer.clone();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (scorer, next, output) = (scorer.clone(), next.clone(), output.clone());
            tasks.spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= calls {
                        break lat;
                    }
                    let it = item(i);
                    let t = Instant::now();
                    scorer
                        .score(&it, Some(&output), None, &limits)
                        .await
                        .unwrap();
                    lat.push(t.elapsed());
                }
            });
        }
        let mut all = Vec::with_capacity(calls);
        while let Some(r) = tasks.join_next().await {
            all.extend(r.unwrap());
        }
        (started.elapsed(), all)
    });
    let s = stats(lat);
    println!(
        "2 workers x {concurrency} in flight ({calls} calls): {:.0} calls/s; latency mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs",
        calls as f64 / elapsed.as_secs_f64(),
        us(s.mean),
        us(s.p50),
        us(s.p99)
    );
}

/// Size, first compile, cache-hit load and per-call cost (fresh instance,
/// pooling allocator, sequential) of one scorer component.
fn component_cost(label: &str, path: &std::path::Path, calls: usize) {
    let size = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len();
    let dir = tempfile::tempdir().unwrap();
    let keep_resident_bytes = std::env::var("ASSAY_BENCH_KEEP_RESIDENT_MIB")
        .ok()
        .map(|v| {
            v.parse::<usize>()
                .expect("ASSAY_BENCH_KEEP_RESIDENT_MIB is a number of MiB")
        })
        .map_or(assay_plugin_host::RECOMMENDED_KEEP_RESIDENT_BYTES, |mib| {
            mib << 20
        });
    let config = HostConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        max_instances: 16,
        keep_resident_bytes,
        ..HostConfig::default()
    };
    println!(
        "keep resident: {} MiB per slot asked, {:?}",
        keep_resident_bytes >> 20,
        assay_plugin_host::KeepResident::decide(keep_resident_bytes)
    );
    let t = Instant::now();
    let cold = PluginHost::new(config.clone())
        .unwrap()
        .load_file(path)
        .unwrap();
    let compile = t.elapsed();
    assert!(!cold.loaded_from_cache());
    let host = PluginHost::new(config).unwrap();
    let t = Instant::now();
    let scorer = host.load_file(path).unwrap();
    let cached = t.elapsed();
    assert!(scorer.loaded_from_cache());
    let output = json!("The capital of France is Paris");
    // Big runtimes need more than the scorer default of 64 MiB.
    let limits = Limits {
        max_memory_bytes: 256 << 20,
        ..Limits::scorer_default()
    };
    let items: Vec<PluginItem> = (0..calls).map(item).collect();
    let lat = sequential_latencies(&scorer, &items, &output, &limits, 20, None);
    let total: Duration = lat.iter().sum();
    let st = stats(lat);
    println!(
        "\n== {label}: {} ==\nsize {:.1} MB, compile+load {:.0} ms, cache-hit load {:.1} ms, \
         compiled code {:.1} MB\nper call (fresh instance, pooling, sequential, {calls} calls): \
         mean {:.1} us, p50 {:.1} us, p99 {:.1} us ({:.0} calls/s)",
        path.display(),
        size as f64 / 1e6,
        ms(compile),
        ms(cached),
        scorer.compiled_bytes() as f64 / 1e6,
        us(st.mean),
        us(st.p50),
        us(st.p99),
        calls as f64 / total.as_secs_f64()
    );
}

/// The latency of each `score` call over `items`, one call at a time on a
/// current-thread runtime, after `warmup` calls that are not counted; each
/// score must be `expect` when given.
fn sequential_latencies(
    scorer: &Plugin,
    items: &[PluginItem],
    output: &serde_json::Value,
    limits: &Limits,
    warmup: usize,
    expect: Option<f64>,
) -> Vec<Duration> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for it in items.iter().take(warmup) {
            scorer.score(it, Some(output), None, limits).await.unwrap();
        }
        let mut lat = Vec::with_capacity(items.len());
        for it in items {
            let t = Instant::now();
            let s = scorer.score(it, Some(output), None, limits).await.unwrap();
            lat.push(t.elapsed());
            if let Some(want) = expect {
                assert_eq!(s.value, want);
            }
        }
        lat
    })
}
