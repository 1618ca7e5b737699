//! The plugin catalog: registers components in storage and turns plugin ids
//! into loaded, sandboxed plugins.
//!
//! Component bytes live in the store (so every process sharing a database
//! can load them); compiled code is cached on disk by the plugin host, and
//! loaded plugins are kept in memory by digest.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use assay_plugin_host::{Plugin, PluginHost};
use assay_store::{PluginRecord, Store, StoreError};
use chrono::Utc;

use crate::error::RunError;

/// Registers and resolves plugins for one process.
pub struct Catalog {
    host: PluginHost,
    store: Arc<dyn Store>,
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
}

impl Catalog {
    /// A catalog loading plugins into `host` and reading them from `store`.
    pub fn new(host: PluginHost, store: Arc<dyn Store>) -> Self {
        Self {
            host,
            store,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The plugin host (engine, limits, cache).
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// Validates `bytes` as a plugin (loads it in the sandbox, reads its
    /// info) and registers it under its own id for `tenant`, replacing an
    /// older component with the same id.
    pub async fn register_bytes(
        &self,
        tenant: &str,
        bytes: Vec<u8>,
    ) -> Result<PluginRecord, RunError> {
        let plugin = self
            .host
            .load(bytes.clone())
            .await
            .map_err(|e| RunError::PluginLoad {
                id: "<upload>".into(),
                message: e.to_string(),
            })?;
        let record = PluginRecord {
            id: plugin.info().id.clone(),
            tenant_id: tenant.to_string(),
            kind: plugin.kind().to_string(),
            name: plugin.info().name.clone(),
            description: plugin.info().description.clone(),
            digest: plugin.digest().to_string(),
            contract_version: plugin.contract_version().to_string(),
            size: bytes.len() as i64,
            created_at: Utc::now(),
        };
        let stored = self.store.register_plugin(tenant, record, bytes).await?;
        self.loaded
            .lock()
            .expect("catalog lock")
            .insert(plugin.digest().to_string(), plugin);
        Ok(stored)
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
        let record = match self.store.get_plugin(tenant, id).await {
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

    /// Loads the component of a registered plugin (memory cache by digest).
    pub async fn load_record(
        &self,
        tenant: &str,
        record: &PluginRecord,
    ) -> Result<Arc<Plugin>, RunError> {
        if let Some(p) = self
            .loaded
            .lock()
            .expect("catalog lock")
            .get(&record.digest)
        {
            return Ok(p.clone());
        }
        let bytes = self.store.plugin_bytes(tenant, &record.id).await?;
        let plugin = self
            .host
            .load(bytes)
            .await
            .map_err(|e| RunError::PluginLoad {
                id: record.id.clone(),
                message: e.to_string(),
            })?;
        self.loaded
            .lock()
            .expect("catalog lock")
            .insert(record.digest.clone(), plugin.clone());
        Ok(plugin)
    }
}
