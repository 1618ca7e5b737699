//! [`PluginHost`]: one wasmtime `Engine` and `Linker` per process, the epoch
//! ticker, the compiled-code cache, and loading of components.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::resident::KeepResident;

use crate::cache::{self, CacheCounters, CacheStats, DiskCache};
use crate::config::HostConfig;
use crate::error::LoadError;
use crate::loader::InFlight;
use crate::plugin::Plugin;
use crate::sandbox::CallState;

/// Instance slots freed before their memory is decommitted in one batch.
const DECOMMIT_BATCH: usize = 32;

/// The plugin runtime. Cheap to clone (an `Arc` inside); share one per
/// process.
///
/// Owns the wasmtime `Engine` (with epoch interruption and, where the
/// address space allows, the pooling allocator), one `Linker` providing
/// WASI 0.2 with nothing granted, a thread ticking the epoch, and the
/// optional disk cache of compiled components.
#[derive(Clone)]
pub struct PluginHost {
    pub(crate) inner: Arc<HostInner>,
}

pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<CallState>,
    pub(crate) config: HostConfig,
    pooling: bool,
    /// Whether freed pool slots keep the pages a call wrote.
    keep_resident: KeepResident,
    engine_hash: String,
    cache: Option<DiskCache>,
    counters: CacheCounters,
    /// One permit per instance slot: calls beyond `max_instances` wait.
    pub(crate) slots: Arc<Semaphore>,
    /// One permit per concurrent compile of [`PluginHost::load`].
    pub(crate) compile_slots: Arc<Semaphore>,
    /// Guarded loads in progress, by digest.
    pub(crate) in_flight: InFlight,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("pooling", &self.inner.pooling)
            .field("engine_hash", &self.inner.engine_hash)
            .field("cache_dir", &self.inner.config.cache_dir)
            .finish_non_exhaustive()
    }
}

impl PluginHost {
    /// Sets up the engine, linker, epoch ticker and cache directory.
    pub fn new(config: HostConfig) -> Result<Self, LoadError> {
        let keep_resident = KeepResident::decide(config.keep_resident_bytes);
        if config.keep_resident_bytes > 0 && keep_resident.bytes() == 0 {
            tracing::warn!(
                asked_bytes = config.keep_resident_bytes,
                decision = ?keep_resident,
                "freed plugin slots keep no written pages (asked for, refused on this machine)"
            );
        }
        let (engine, pooling) = build_engine(&config, keep_resident.bytes())?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Engine(format!("cannot link WASI: {e}")))?;
        // Outbound wasi:http only (no incoming handler): every request is
        // checked against the call's grant by the store's hooks.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Engine(format!("cannot link wasi:http: {e}")))?;
        let engine_hash = engine_hash(&engine);
        let cache = match &config.cache_dir {
            Some(dir) => Some(
                DiskCache::open(dir, &engine_hash, config.cache_max_bytes).map_err(|source| {
                    LoadError::Io {
                        path: dir.clone(),
                        source,
                    }
                })?,
            ),
            None => None,
        };
        start_epoch_ticker(&engine, config.epoch_tick);
        let slots = Arc::new(Semaphore::new(config.max_instances.max(1) as usize));
        let compile_slots = Arc::new(Semaphore::new(config.max_concurrent_compiles.max(1)));
        tracing::debug!(
            pooling,
            ?keep_resident,
            %engine_hash,
            "plugin host ready"
        );
        Ok(Self {
            inner: Arc::new(HostInner {
                engine,
                linker,
                config,
                pooling,
                keep_resident,
                engine_hash,
                cache,
                counters: CacheCounters::default(),
                slots,
                compile_slots,
                in_flight: InFlight::default(),
            }),
        })
    }

    /// Loads a component file; see [`PluginHost::load_bytes`].
    pub fn load_file(&self, path: &Path) -> Result<Arc<Plugin>, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(&bytes)
    }

    /// Loads a component: checks it is a component of one of the plugin
    /// worlds at this host's contract version, compiles it (or loads it
    /// from the disk cache), pre-instantiates it against the sandbox's
    /// WASI, and calls its `info` once.
    ///
    /// Blocking (compiling takes tens to hundreds of milliseconds): from
    /// async code call it inside `tokio::task::spawn_blocking`.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        let limit = self.inner.config.max_component_bytes;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        check_header(bytes)?;
        let sha256_hex = hex::encode(Sha256::digest(bytes));
        let (component, from_cache) = cache::load_or_compile(
            &self.inner.engine,
            self.inner.cache.as_ref(),
            &self.inner.counters,
            &sha256_hex,
            bytes,
        )
        .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        Plugin::new(
            self.clone(),
            component,
            format!("sha256:{sha256_hex}"),
            bytes.len(),
            from_cache,
        )
        .map(Arc::new)
    }

    /// Counters of the compiled-code cache (hits, misses, writes).
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.counters.snapshot()
    }

    /// A hash of the engine settings that compiled code depends on (part
    /// of every cache file name).
    pub fn engine_config_hash(&self) -> &str {
        &self.inner.engine_hash
    }

    /// Whether the pooling allocator is in use (it may have been refused
    /// by the OS, in which case instances are allocated on demand).
    pub fn uses_pooling(&self) -> bool {
        self.inner.pooling
    }

    /// Whether freed pool slots keep the pages a call wrote, and if not,
    /// why (see [`HostConfig::keep_resident_bytes`]).
    pub fn keep_resident(&self) -> KeepResident {
        if self.inner.pooling {
            self.inner.keep_resident
        } else {
            KeepResident::Off
        }
    }

    /// The settings this host was created with.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// The shared engine.
    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

/// The engine, with the pooling allocator if requested and available.
fn build_engine(config: &HostConfig, keep_resident: usize) -> Result<(Engine, bool), LoadError> {
    if config.pooling {
        match Engine::new(&engine_config(config, true, keep_resident)) {
            Ok(engine) => return Ok((engine, true)),
            Err(err) => {
                tracing::warn!(error = %err, "pooling allocator unavailable, using on-demand allocation");
            }
        }
    }
    Engine::new(&engine_config(config, false, 0))
        .map(|engine| (engine, false))
        .map_err(|e| LoadError::Engine(format!("{e:#}")))
}

fn engine_config(config: &HostConfig, pooling: bool, keep_resident: usize) -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack)
        .parallel_compilation(true);
    if pooling {
        let n = config.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            // A Rust wasip2 component has a handful of core instances
            // (its module, the WASI adapter, shims) and 1-2 memories.
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .total_stacks(n)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .max_core_instances_per_component(config.max_core_instances_per_component)
            .max_memories_per_component(config.max_memories_per_component)
            .max_tables_per_component(config.max_tables_per_component)
            .max_memory_size(config.max_memory_bytes)
            .linear_memory_keep_resident(keep_resident)
            .table_keep_resident(keep_resident)
            // `Auto`: a kernel that refuses the scan disables it rather
            // than failing the pool (`KeepResident::decide` checked it).
            .pagemap_scan(if keep_resident > 0 {
                Enabled::Auto
            } else {
                Enabled::No
            })
            // Every call frees an instance: batching the decommits (madvise)
            // saves syscalls and cross-core TLB shootdowns when calls run on
            // several threads.
            .decommit_batch_size(DECOMMIT_BATCH);
        if keep_resident > 0 {
            // With pages kept, a freed slot goes back to the plugin that
            // used it last, or else to the least recently used one, before
            // any slot never used, which bounds how many slots hold kept
            // pages. (Without kept pages a warm slot holds next to nothing,
            // and taking another plugin's slot would cost a remap.)
            pool.max_unused_warm_slots(config.idle_slots_kept);
        }
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    cfg
}

/// 16 hex digits identifying the engine's code-compatibility settings.
fn engine_hash(engine: &Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Ticks the engine's epoch until the engine is dropped.
fn start_epoch_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("assay-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "cannot start the epoch ticker: plugin time limits rely on the async timeout only");
    }
}

/// Rejects what is not a component before wasmtime sees it, with a message
/// that says what it is instead.
fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::NotWasm {
            detail: "the file is empty".into(),
        });
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm {
            detail: "it does not start with the WebAssembly magic bytes".into(),
        });
    }
    match bytes[6..8] {
        [0, 0] => Err(LoadError::NotAComponent),
        [1, 0] => Ok(()),
        _ => Err(LoadError::NotWasm {
            detail: format!(
                "unknown WebAssembly layer {:#04x}{:02x}",
                bytes[7], bytes[6]
            ),
        }),
    }
}

/// The component's export names.
pub(crate) fn export_names(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The component's import names.
pub(crate) fn import_names(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}
