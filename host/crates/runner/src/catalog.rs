//! The plugin catalog: registers components in storage and turns plugin ids
//! into loaded, sandboxed plugins.
//!
//! Component bytes live in the store (so every process sharing a database
//! can load them); compiled code is cached on disk by the plugin host, and
//! loaded plugins are kept in memory by digest within a byte budget (see
//! [`crate::loaded`]).

use std::path::Path;
use std::sync::Arc;

use assay_plugin_host::{Plugin, PluginHost, PluginKind};
use assay_store::tenancy::check_new_plugin;
use assay_store::{PluginKind as StoredKind, PluginRecord, SHARED_TENANT, Store, StoreError};
use chrono::Utc;

use crate::ceilings::Ceilings;
use crate::error::RunError;
use crate::loaded::ByteLru;
use crate::secrets::SecretKey;

/// Default budget of compiled plugin code kept in memory by one process.
pub const DEFAULT_LOADED_PLUGIN_BYTES: u64 = 512 << 20;

/// Registers and resolves plugins for one process.
pub struct Catalog {
    host: PluginHost,
    pub(crate) store: Arc<dyn Store>,
    loaded: ByteLru<Arc<Plugin>>,
    ceilings: Ceilings,
    secret_key: Option<SecretKey>,
}

impl Catalog {
    /// Loads (compiles, or takes from the compiled-code cache) `bytes` and
    /// records how long it took (see [`crate::metrics::plugin_loaded`]).
    async fn load_recorded(
        &self,
        bytes: Vec<u8>,
    ) -> Result<Arc<Plugin>, assay_plugin_host::LoadError> {
        let started = std::time::Instant::now();
        let plugin = self.host.load(bytes).await?;
        crate::metrics::plugin_loaded(plugin.loaded_from_cache(), started.elapsed());
        Ok(plugin)
    }

    /// A catalog loading plugins into `host` and reading them from `store`.
    pub fn new(host: PluginHost, store: Arc<dyn Store>) -> Self {
        Self {
            host,
            store,
            loaded: ByteLru::new(DEFAULT_LOADED_PLUGIN_BYTES),
            ceilings: Ceilings::default(),
            secret_key: None,
        }
    }

    /// The same catalog keeping at most `bytes` of compiled plugin code in
    /// memory (least recently used dropped first; default
    /// [`DEFAULT_LOADED_PLUGIN_BYTES`]).
    pub fn with_loaded_budget(mut self, bytes: u64) -> Self {
        self.loaded = ByteLru::new(bytes);
        self
    }

    /// Loaded plugins held in memory: how many, and their compiled bytes.
    pub fn loaded_usage(&self) -> (usize, u64) {
        (self.loaded.len(), self.loaded.bytes())
    }

    /// The same catalog holding runs to `ceilings` (default:
    /// [`Ceilings::default`]).
    pub fn with_ceilings(mut self, ceilings: Ceilings) -> Self {
        self.ceilings = ceilings;
        self
    }

    /// The key that opens the tenants' secrets for runs planned through
    /// this catalog (without one, plugins get no secret values).
    pub fn with_secret_key(mut self, key: Option<SecretKey>) -> Self {
        self.secret_key = key;
        self
    }

    /// See [`Catalog::with_secret_key`].
    pub fn secret_key(&self) -> Option<&SecretKey> {
        self.secret_key.as_ref()
    }

    /// What no run planned or created through this catalog may exceed.
    pub fn ceilings(&self) -> &Ceilings {
        &self.ceilings
    }

    /// The plugin host (engine, limits, cache).
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// Validates `bytes` as a plugin (loads it in the sandbox, reads its
    /// info) and registers it under its own id for `tenant`, replacing an
    /// older component of the tenant with the same id.
    ///
    /// `Conflict` (naming the id) when a shared plugin has that id: shared
    /// plugins cannot be replaced by a tenant. `LimitExceeded` when the
    /// tenant's `plugins` or `plugin-bytes` limit would be crossed. With
    /// `tenant` = [`SHARED_TENANT`] the plugin is registered as shared
    /// (operators only; no limits).
    pub async fn register_bytes(
        &self,
        tenant: &str,
        bytes: Vec<u8>,
    ) -> Result<PluginRecord, RunError> {
        let plugin = self
            .load_recorded(bytes.clone())
            .await
            .map_err(|e| RunError::PluginLoad {
                id: "<upload>".into(),
                message: e.to_string(),
            })?;
        let record = PluginRecord {
            id: plugin.info().id.clone(),
            tenant_id: tenant.to_string(),
            kind: match plugin.kind() {
                PluginKind::Scorer => StoredKind::Scorer,
                PluginKind::Target => StoredKind::Target,
            },
            name: plugin.info().name.clone(),
            description: plugin.info().description.clone(),
            digest: plugin.digest().to_string(),
            contract_version: plugin.contract_version().to_string(),
            size: bytes.len() as i64,
            created_at: Utc::now(),
        };
        if tenant != SHARED_TENANT {
            match self.store.get_plugin(SHARED_TENANT, &record.id).await {
                Ok(shared) => {
                    return Err(StoreError::Conflict(format!(
                        "plugin id `{}` is taken by a shared plugin (digest {}); shared plugins \
                         cannot be replaced by a tenant: give your plugin another id",
                        shared.id, shared.digest
                    ))
                    .into());
                }
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let replaces = match self.store.get_plugin(tenant, &record.id).await {
                Ok(own) => Some(own.size),
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            check_new_plugin(self.store.as_ref(), tenant, record.size, replaces).await?;
        }
        let stored = self.store.register_plugin(tenant, record, bytes).await?;
        self.keep(plugin);
        Ok(stored)
    }

    /// Deletes `tenant`'s plugin `id` from the store and drops its compiled
    /// code from this process's memory (unless another registered plugin
    /// has the same bytes; it would only be loaded again).
    pub async fn delete_plugin(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let record = self.store.get_plugin(tenant, id).await?;
        self.store.delete_plugin(tenant, id).await?;
        self.loaded.remove(&record.digest);
        Ok(())
    }

    /// Whether this process holds the compiled code of `digest` in memory.
    pub fn is_loaded(&self, digest: &str) -> bool {
        self.loaded.contains(digest)
    }

    fn keep(&self, plugin: Arc<Plugin>) {
        let bytes = plugin.compiled_bytes().max(plugin.size_bytes()) as u64;
        self.loaded
            .insert(plugin.digest().to_string(), plugin, bytes);
    }

    /// Reads a `.wasm` file and registers it (see [`Catalog::register_bytes`]).
    pub async fn register_file(&self, tenant: &str, path: &Path) -> Result<PluginRecord, RunError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| RunError::PluginLoad {
                id: path.display().to_string(),
                message: e.to_string(),
            })?;
        self.register_bytes(tenant, bytes)
            .await
            .map_err(|e| match e {
                RunError::PluginLoad { message, .. } => RunError::PluginLoad {
                    id: path.display().to_string(),
                    message,
                },
                other => other,
            })
    }

    /// Registers every `*.wasm` in `dir` whose digest is not registered yet.
    /// Returns the records of the directory's plugins and the files that
    /// failed, with their errors (one bad file does not stop the others).
    pub async fn register_dir(
        &self,
        tenant: &str,
        dir: &Path,
    ) -> std::io::Result<(Vec<PluginRecord>, Vec<(String, RunError)>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        files.sort();
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for path in files {
            match self.register_file(tenant, &path).await {
                Ok(record) => ok.push(record),
                Err(e) => failed.push((path.display().to_string(), e)),
            }
        }
        Ok((ok, failed))
    }

    /// The registered plugin `id` of `tenant`, loaded.
    pub async fn resolve(
        &self,
        tenant: &str,
        id: &str,
        kind: &'static str,
    ) -> Result<Arc<Plugin>, RunError> {
        let record = match self.visible_plugin(tenant, id).await {
            Ok(r) => r,
            Err(StoreError::NotFound { .. }) => {
                return Err(RunError::UnknownPlugin {
                    kind,
                    id: id.to_string(),
                    hint: " (register it with `assay plugin add <file.wasm>` or POST /api/plugins)"
                        .into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        self.load_record(tenant, &record).await
    }

    /// The plugin `id` as `tenant` sees it: its own, or else a shared one
    /// (the record's `tenant_id` says which: [`SHARED_TENANT`] for shared).
    pub async fn visible_plugin(&self, tenant: &str, id: &str) -> Result<PluginRecord, StoreError> {
        match self.store.get_plugin(tenant, id).await {
            Err(StoreError::NotFound { .. }) if tenant != SHARED_TENANT => {
                self.store.get_plugin(SHARED_TENANT, id).await
            }
            other => other,
        }
    }

    /// Loads the component of a registered plugin (memory cache by digest).
    pub async fn load_record(
        &self,
        tenant: &str,
        record: &PluginRecord,
    ) -> Result<Arc<Plugin>, RunError> {
        if let Some(p) = self.loaded.get(&record.digest) {
            return Ok(p);
        }
        // The record names its namespace (the tenant's, or the shared one).
        let namespace = if record.tenant_id.is_empty() {
            tenant
        } else {
            &record.tenant_id
        };
        let bytes = self.store.plugin_bytes(namespace, &record.id).await?;
        let plugin = self
            .load_recorded(bytes)
            .await
            .map_err(|e| RunError::PluginLoad {
                id: record.id.clone(),
                message: e.to_string(),
            })?;
        self.keep(plugin.clone());
        Ok(plugin)
    }
}
