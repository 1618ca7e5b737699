//! Host-wide settings ([`HostConfig`]) and per-call limits ([`Limits`]).

use std::path::PathBuf;
use std::time::Duration;

const MIB: usize = 1 << 20;

/// What to set [`HostConfig::keep_resident_bytes`] to where it is wanted:
/// above the working set of a Rust plugin's call (tens of KiB) and of most
/// CPython and SpiderMonkey calls; measured in BENCHMARKS.md ("Keeping the
/// pages a call wrote").
pub const RECOMMENDED_KEEP_RESIDENT_BYTES: usize = 16 * MIB;

/// Settings of one [`PluginHost`](crate::PluginHost): they shape its wasmtime
/// `Engine`, so they are fixed for the host's lifetime.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Directory for compiled native code (`<sha256>-<engine>.cwasm`).
    /// `None` disables the disk cache: every load compiles.
    ///
    /// The host loads these files as trusted native code, so the directory
    /// must be writable only by the user running the host (it is created
    /// with mode 0700).
    pub cache_dir: Option<PathBuf>,
    /// Most plugin instances alive at once (calls in flight, across all
    /// plugins). Sizes the pooling allocator; further calls wait for a slot.
    pub max_instances: u32,
    /// Use the pooling allocator (faster instantiation). If its address
    /// space cannot be reserved the host falls back to on-demand allocation.
    pub pooling: bool,
    /// Upper bound for any per-call [`Limits::max_memory_bytes`]: the size
    /// of one linear-memory slot in the pool. Larger per-call limits are
    /// clamped to it.
    pub max_memory_bytes: usize,
    /// Most bytes of native stack a guest may use (deep recursion beyond
    /// this is reported as a stack overflow).
    pub max_wasm_stack: usize,
    /// Epoch tick: the granularity of time limits and of guest yields.
    pub epoch_tick: Duration,
    /// Largest component accepted for loading (larger: refused before
    /// compiling). Bounds what one upload can make the host compile.
    pub max_component_bytes: usize,
    /// Most components compiling at once in [`PluginHost::load`](crate::PluginHost::load)
    /// (process-wide); further loads wait.
    pub max_concurrent_compiles: usize,
    /// Longest a [`PluginHost::load`](crate::PluginHost::load) may take,
    /// waiting for a compile slot included.
    pub compile_timeout: Duration,
    /// Size budget of the disk cache: after each write the least recently
    /// used entries are removed until the directory is within it.
    pub cache_max_bytes: u64,
    /// Most core wasm instances one component may create.
    pub max_core_instances_per_component: u32,
    /// Most linear memories one component may define.
    pub max_memories_per_component: u32,
    /// Most tables one component may define.
    pub max_tables_per_component: u32,
    /// Largest `wasi:random` request a guest may make at once (larger
    /// requests trap instead of making the host allocate them).
    pub max_random_bytes: u64,
    /// Most bytes of each freed linear-memory (and table) slot of the pool
    /// kept mapped and reset in place rather than returned to the kernel:
    /// the pages the call wrote, found with Linux's `PAGEMAP_SCAN`, copied
    /// back from the image (or zeroed), so the next instance finds them
    /// mapped and pristine without a page fault. A slot keeps about its last
    /// call's written pages, up to this. 0 (the default) returns every page.
    ///
    /// Honoured only where the kernel has the scan and no swap is on (see
    /// [`KeepResident`](crate::KeepResident) and
    /// [`PluginHost::keep_resident`](crate::PluginHost::keep_resident)): in
    /// wasmtime 48 the scan misses a written page that is swapped out or
    /// being migrated at that moment, and the next instance could read it.
    /// Turn it on where every call belongs to one user, or where the
    /// operator accepts that rare window for about twice the throughput.
    pub keep_resident_bytes: usize,
    /// While pages are kept: how many free slots may still hold the pages
    /// of the plugin that used them last before a new instance takes one of
    /// them instead of a slot never used (wasmtime's
    /// `max_unused_warm_slots`). Enough for each plugin of a few runs to
    /// keep slots of its own; with none, plugins taking turns on a few call
    /// slots take each other's slots, and every such take maps the memory
    /// image again (an `mmap`, a TLB shootdown on every core): 51-66k of
    /// them in a 50k-item run instead of under 200, and about a third
    /// fewer items per second in half the runs. It also bounds the memory
    /// kept beyond the slots in use (tens of KiB per slot for a Rust
    /// plugin, at most `keep_resident_bytes`). Default 32; the isolation
    /// tests use 0, so that slots pass between plugins all the time.
    pub idle_slots_kept: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_instances: 256,
            pooling: true,
            max_memory_bytes: 1024 * MIB,
            max_wasm_stack: 512 * 1024,
            epoch_tick: Duration::from_millis(10),
            max_component_bytes: 48 * MIB,
            max_concurrent_compiles: 2,
            compile_timeout: Duration::from_secs(60),
            cache_max_bytes: 1 << 30,
            max_core_instances_per_component: 16,
            max_memories_per_component: 2,
            max_tables_per_component: 4,
            max_random_bytes: MIB as u64,
            keep_resident_bytes: 0,
            idle_slots_kept: 32,
        }
    }
}

/// Limits of one plugin call. Each call runs in a fresh sandbox with these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline of the call (instantiation included).
    pub timeout: Duration,
    /// Linear memory cap of the instance.
    pub max_memory_bytes: usize,
    /// Cap on the JSON the plugin returns (output, or reason + metadata).
    pub max_output_bytes: usize,
    /// Cap on each of the captured stdout and stderr; past it the text is
    /// cut and [`CapturedLogs::truncated`](crate::CapturedLogs::truncated) set.
    pub max_log_bytes: usize,
}

impl Default for Limits {
    /// Target defaults: 30 s, 64 MiB, 1 MiB output, 64 KiB logs.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_memory_bytes: 64 * MIB,
            max_output_bytes: MIB,
            max_log_bytes: 64 * 1024,
        }
    }
}

impl Limits {
    /// Scorer defaults: as [`Limits::default`] with a 5 s deadline.
    pub fn scorer_default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            ..Self::default()
        }
    }

    /// These limits with a different deadline.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }
}
