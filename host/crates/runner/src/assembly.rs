//! The one place a process assembles its parts: the store, the plugin host,
//! the plugin catalog and the executor.
//!
//! The `assay` command line and `assay serve` both build their parts here,
//! from one [`AssemblySettings`], so a run executed by either gets the same
//! instance pool, item slots and lease. What differs between them is only
//! what their flags set. The defaults live in this module and are
//! documented in `docs/architecture.md`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use assay_plugin_host::{HostConfig, LoadError, PluginHost};
use assay_store::{Store, StoreError};

use crate::catalog::Catalog;
use crate::ceilings::Ceilings;
use crate::executor::Executor;

/// Default cap on plugin instances alive at once in one process (calls in
/// flight across every plugin and run; further calls wait for a slot).
pub const DEFAULT_MAX_INSTANCES: u32 = 256;
/// Default cap on items in flight at once across all runs of one process.
pub const DEFAULT_PROCESS_ITEM_SLOTS: usize = 256;
/// Default lease of a run this process executes; renewed every third of it.
/// After a crash, another process resumes the run once the lease lapses.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// Default largest component a process loads (uploads included).
pub const DEFAULT_MAX_COMPONENT_BYTES: usize = 48 << 20;
/// Default number of components compiling at once in one process.
pub const DEFAULT_MAX_CONCURRENT_COMPILES: usize = 2;
/// Default longest one plugin load may take (compile slot wait included).
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default size budget of the compiled-plugin disk cache.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 1 << 30;
/// Database used when none is given.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://assay.db?mode=rwc";

/// Result batches one process writes at once on PostgreSQL. (SQLite has a
/// single writer, so there the runs' writers take turns, one at a time.)
pub const POSTGRES_CONCURRENT_WRITES: usize = 4;

/// What a process is assembled from.
#[derive(Debug, Clone, PartialEq)]
pub struct AssemblySettings {
    /// `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://...`, as
    /// the store accepts it (the CLI normalizes what a user typed first).
    pub database_url: String,
    /// Disk cache of compiled plugins (`None`: compile on every load).
    pub cache_dir: Option<PathBuf>,
    /// Plugin instances alive at once (sizes the pooling allocator).
    pub max_instances: u32,
    /// Items in flight at once across all runs of this process.
    pub process_item_slots: usize,
    /// Lease of a run this process executes.
    pub run_lease: Duration,
    /// Largest component loaded (larger: refused before compiling).
    pub max_component_bytes: usize,
    /// Components compiling at once; further loads wait.
    pub max_concurrent_compiles: usize,
    /// Longest one load may take, waiting for a compile slot included.
    pub compile_timeout: Duration,
    /// Size budget of the compiled-plugin disk cache.
    pub cache_max_bytes: u64,
    /// Compiled plugin code kept in memory (least recently used dropped).
    pub loaded_plugin_bytes: u64,
    /// The key that opens the tenants' secrets for plugins with a network
    /// grant (`None`: they get no secret values).
    pub secret_key: Option<crate::secrets::SecretKey>,
    /// What no run of this process may exceed (`assay serve` sets them
    /// from its flags; the command line, run by the operator, has none).
    pub ceilings: Ceilings,
    /// Written bytes a freed plugin-instance slot keeps, reset in place
    /// (`HostConfig::keep_resident_bytes`; 0 returns every page).
    pub keep_resident_bytes: usize,
}

impl Default for AssemblySettings {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.into(),
            cache_dir: None,
            max_instances: DEFAULT_MAX_INSTANCES,
            process_item_slots: DEFAULT_PROCESS_ITEM_SLOTS,
            run_lease: DEFAULT_LEASE,
            max_component_bytes: DEFAULT_MAX_COMPONENT_BYTES,
            max_concurrent_compiles: DEFAULT_MAX_CONCURRENT_COMPILES,
            compile_timeout: DEFAULT_COMPILE_TIMEOUT,
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            loaded_plugin_bytes: crate::catalog::DEFAULT_LOADED_PLUGIN_BYTES,
            secret_key: None,
            ceilings: Ceilings::default(),
            keep_resident_bytes: 0,
        }
    }
}

impl AssemblySettings {
    /// The plugin host configuration these settings ask for.
    pub fn host_config(&self) -> HostConfig {
        HostConfig {
            cache_dir: self.cache_dir.clone(),
            max_instances: self.max_instances,
            max_component_bytes: self.max_component_bytes,
            max_concurrent_compiles: self.max_concurrent_compiles,
            compile_timeout: self.compile_timeout,
            cache_max_bytes: self.cache_max_bytes,
            keep_resident_bytes: self.keep_resident_bytes,
            ..HostConfig::default()
        }
    }
}

/// An open store, plus the plugin catalog built on first use (creating the
/// wasm engine reserves its instance pool, which commands that never load a
/// plugin should not pay for).
pub struct Assembly {
    store: Arc<dyn Store>,
    settings: AssemblySettings,
    catalog: OnceLock<Arc<Catalog>>,
}

impl Assembly {
    /// Connects to the database (applying migrations).
    pub async fn open(settings: AssemblySettings) -> Result<Self, StoreError> {
        let store = assay_store::connect(&settings.database_url).await?;
        Ok(Self::with_store(store, settings))
    }

    /// Assembles around a store that is already open.
    pub fn with_store(store: Arc<dyn Store>, settings: AssemblySettings) -> Self {
        Self {
            store,
            settings,
            catalog: OnceLock::new(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The settings this process was assembled from.
    pub fn settings(&self) -> &AssemblySettings {
        &self.settings
    }

    /// A new plugin host with these settings (for inspecting files without
    /// registering them); runs load their plugins through [`Self::catalog`].
    pub fn plugin_host(&self) -> Result<PluginHost, LoadError> {
        PluginHost::new(self.settings.host_config())
    }

    /// The plugin catalog of this process, built on first use.
    pub fn catalog(&self) -> Result<Arc<Catalog>, LoadError> {
        if let Some(c) = self.catalog.get() {
            return Ok(c.clone());
        }
        let catalog = Arc::new(
            Catalog::new(self.plugin_host()?, self.store.clone())
                .with_ceilings(self.settings.ceilings)
                .with_loaded_budget(self.settings.loaded_plugin_bytes)
                .with_secret_key(self.settings.secret_key.clone()),
        );
        Ok(self.catalog.get_or_init(|| catalog).clone())
    }

    /// A new executor with these settings. Each has its own lease owner id
    /// and item slots: build one per process, and share it between runs
    /// through the [`crate::Scheduler`] or by cloning it.
    pub fn executor(&self) -> Executor {
        let writers = if self.settings.database_url.starts_with("postgres") {
            POSTGRES_CONCURRENT_WRITES
        } else {
            1
        };
        Executor::new(self.store.clone())
            .with_process_item_slots(self.settings.process_item_slots)
            .with_write_slots(writers)
            .with_lease(self.settings.run_lease)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_parts_follow_the_settings() {
        let dir = tempfile::tempdir().unwrap();
        let settings = AssemblySettings {
            database_url: format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display()),
            cache_dir: Some(dir.path().join("cache")),
            max_instances: 3,
            process_item_slots: 7,
            run_lease: Duration::from_secs(2),
            max_component_bytes: 1 << 20,
            max_concurrent_compiles: 1,
            compile_timeout: Duration::from_secs(9),
            cache_max_bytes: 5 << 20,
            loaded_plugin_bytes: 3 << 20,
            secret_key: None,
            ceilings: Ceilings::none(),
            keep_resident_bytes: 4 << 20,
        };
        let assembly = Assembly::open(settings.clone()).await.unwrap();
        assert_eq!(assembly.store().backend(), "sqlite");
        let executor = assembly.executor();
        assert_eq!(executor.lease(), Duration::from_secs(2));
        assert_eq!(executor.process_item_slots(), 7);
        let host = settings.host_config();
        assert_eq!(host.max_instances, 3);
        assert_eq!(host.cache_dir, settings.cache_dir);
        assert_eq!(host.max_component_bytes, 1 << 20);
        assert_eq!(host.keep_resident_bytes, 4 << 20);
        assert_eq!(host.max_concurrent_compiles, 1);
        assert_eq!(host.compile_timeout, Duration::from_secs(9));
        assert_eq!(host.cache_max_bytes, 5 << 20);
        // One catalog per process, however often it is asked for.
        let first = assembly.catalog().unwrap();
        assert!(Arc::ptr_eq(&first, &assembly.catalog().unwrap()));
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let d = AssemblySettings::default();
        assert_eq!(d.max_instances, DEFAULT_MAX_INSTANCES);
        assert_eq!(d.process_item_slots, DEFAULT_PROCESS_ITEM_SLOTS);
        assert_eq!(d.run_lease, DEFAULT_LEASE);
        assert_eq!(d.cache_dir, None);
        // The host's own defaults and these agree (one number each).
        let h = HostConfig::default();
        assert_eq!(d.max_component_bytes, h.max_component_bytes);
        assert_eq!(d.max_concurrent_compiles, h.max_concurrent_compiles);
        assert_eq!(d.compile_timeout, h.compile_timeout);
        assert_eq!(d.cache_max_bytes, h.cache_max_bytes);
        assert_eq!(d.keep_resident_bytes, h.keep_resident_bytes);
        let doc = include_str!("../../../../docs/architecture.md");
        for (name, value) in [
            ("max instances", DEFAULT_MAX_INSTANCES.to_string()),
            ("item slots", DEFAULT_PROCESS_ITEM_SLOTS.to_string()),
            ("run lease", format!("{} s", DEFAULT_LEASE.as_secs())),
            (
                "largest component",
                format!("{} MiB", DEFAULT_MAX_COMPONENT_BYTES >> 20),
            ),
            (
                "compiles at once",
                DEFAULT_MAX_CONCURRENT_COMPILES.to_string(),
            ),
            (
                "compile timeout",
                format!("{} s", DEFAULT_COMPILE_TIMEOUT.as_secs()),
            ),
            (
                "disk cache budget",
                format!("{} MiB", DEFAULT_CACHE_MAX_BYTES >> 20),
            ),
            (
                "loaded plugins",
                format!("{} MiB", crate::catalog::DEFAULT_LOADED_PLUGIN_BYTES >> 20),
            ),
            (
                "kept written pages",
                format!("{} MiB", d.keep_resident_bytes >> 20),
            ),
        ] {
            assert!(
                doc.lines()
                    .any(|l| l.contains(name) && l.contains(&format!("| {value} |"))),
                "docs/architecture.md does not give {value} as the default {name}"
            );
        }
    }
}
