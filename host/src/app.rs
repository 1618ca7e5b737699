//! What every command needs: the store, the plugin catalog (built on first
//! use), the tenant, and the lookups that turn what a user typed (a dataset
//! name, a `.wasm` path, a plugin id) into stored records with errors that
//! say what to do next.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use assay_plugin_host::PluginHost;
use assay_runner::{Assembly, AssemblySettings, Catalog, Executor, RunError};
use assay_store::{Dataset, Page, PluginRecord, Run, SHARED_TENANT, Store, StoreError};
use sha2::{Digest, Sha256};

/// How the shipped plugins are built (named in errors about missing files).
pub const BUILD_PLUGINS_HINT: &str = "the shipped plugins are built with `scripts/build-plugins.sh` into target/wasm32-wasip2/plugin/ (it needs the wasm32-wasip2 target: `rustup target add wasm32-wasip2`)";

/// Settings an [`App`] is opened with (from the global flags).
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Store, plugin host and executor settings, shared with `assay serve`.
    /// The database URL is as the user gave it (normalized by
    /// [`normalize_database_url`] when the app opens).
    pub assembly: AssemblySettings,
    /// Directories searched for `<id>.wasm` when a plugin id is unknown.
    pub plugin_dirs: Vec<PathBuf>,
    /// Tenant all commands act for.
    pub tenant: String,
}

/// An open store plus a lazily built plugin catalog.
pub struct App {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The tenant.
    pub tenant: String,
    config: AppConfig,
    assembly: Assembly,
}

/// The database URL used when none is given: a SQLite file in the user's
/// data directory.
pub fn default_database_url() -> String {
    let path = dirs::data_dir()
        .map(|d| d.join("assay").join("assay.db"))
        .unwrap_or_else(|| PathBuf::from("assay.db"));
    format!("sqlite://{}", path.display())
}

/// The compiled-plugin cache used when none is given.
pub fn default_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("assay"))
}

/// Turns what a user gave into a URL the store accepts: a bare path is a
/// SQLite file; SQLite files are created if missing (with their parent
/// directory).
pub fn normalize_database_url(url: &str) -> Result<String> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_string());
    }
    let rest = if let Some(r) = url.strip_prefix("sqlite://") {
        r
    } else if let Some(r) = url.strip_prefix("sqlite:") {
        r
    } else if url.contains("://") {
        bail!(
            "unsupported database URL `{url}`\n  hint: use sqlite://path/to/file.db, a plain file path, or postgres://user:pass@host/db"
        );
    } else {
        url
    };
    if rest.contains(":memory:") || rest.contains("mode=memory") {
        return Ok(format!("sqlite:{rest}"));
    }
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() {
        bail!("the database URL `{url}` names no file");
    }
    if let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).with_context(|| {
            format!("cannot create the database directory {}", parent.display())
        })?;
    }
    let encoded = path
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    Ok(match query {
        Some(q) if q.contains("mode=") => format!("sqlite://{encoded}?{q}"),
        Some(q) => format!("sqlite://{encoded}?{q}&mode=rwc"),
        None => format!("sqlite://{encoded}?mode=rwc"),
    })
}

impl App {
    /// Connects to the database (applying migrations).
    pub async fn open(config: AppConfig) -> Result<Self> {
        let settings = AssemblySettings {
            database_url: normalize_database_url(&config.assembly.database_url)?,
            ..config.assembly.clone()
        };
        let assembly = Assembly::open(settings).await.map_err(|e| {
            anyhow!(
                "cannot open the database {}: {e}\n  hint: check --database-url / ASSAY_DATABASE_URL",
                redact(&config.assembly.database_url)
            )
        })?;
        Ok(Self {
            store: assembly.store().clone(),
            tenant: config.tenant.clone(),
            config,
            assembly,
        })
    }

    /// The plugin catalog (creates the wasm engine on first use).
    pub fn catalog(&self) -> Result<Arc<Catalog>> {
        self.assembly
            .catalog()
            .map_err(|e| anyhow!("cannot start the wasm engine: {e}"))
    }

    /// A fresh plugin host with this process's settings.
    pub fn plugin_host(&self) -> Result<PluginHost> {
        self.assembly
            .plugin_host()
            .map_err(|e| anyhow!("cannot start the wasm engine: {e}"))
    }

    /// An executor with this process's settings (lease, item slots).
    pub fn executor(&self) -> Executor {
        self.assembly.executor()
    }

    /// Settings this app was opened with.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// A dataset by id, or else by name.
    pub async fn dataset(&self, reference: &str) -> Result<Dataset> {
        match self.store.get_dataset(&self.tenant, reference).await {
            Ok(d) => return Ok(d),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(d) = self
            .store
            .find_dataset_by_name(&self.tenant, reference)
            .await?
        {
            return Ok(d);
        }
        bail!(
            "no dataset with id or name `{reference}`\n  hint: `assay dataset list` shows the datasets; a file path must exist (and end in .jsonl, .csv, .tsv or .json)"
        )
    }

    /// A run by id (or by a unique prefix of at least 6 characters among
    /// the newest 1,000 runs).
    pub async fn run(&self, id: &str) -> Result<Run> {
        match self.store.get_run(&self.tenant, id).await {
            Ok(r) => return Ok(r),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if id.len() >= 6 {
            let mut matches = Vec::new();
            for page in 0..10 {
                let runs = self
                    .store
                    .list_runs(&self.tenant, None, Page::new(page, 100))
                    .await?;
                matches.extend(runs.items.into_iter().filter(|r| r.id.starts_with(id)));
                if !runs.has_more {
                    break;
                }
            }
            match matches.len() {
                1 => return Ok(matches.remove(0)),
                0 => {}
                n => bail!("`{id}` matches {n} runs; give more of the id"),
            }
        }
        bail!("no run with id `{id}`\n  hint: `assay runs list` shows the runs")
    }

    /// A `--target` / `--scorer` value as a registered plugin: a `.wasm`
    /// file is registered first (idempotent for the same bytes); an id
    /// unknown to the store is looked up as `<id>.wasm` in the plugin
    /// directories.
    pub async fn plugin(&self, spec: &str) -> Result<PluginRecord> {
        if looks_like_path(spec) {
            return self.register_file(Path::new(spec)).await;
        }
        match self.catalog()?.visible_plugin(&self.tenant, spec).await {
            Ok(record) => return Ok(record),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        for dir in &self.config.plugin_dirs {
            for name in [spec.to_string(), spec.replace('-', "_")] {
                let candidate = dir.join(format!("{name}.wasm"));
                if candidate.is_file() {
                    let record = self.register_file(&candidate).await?;
                    if record.id != spec {
                        tracing::warn!(
                            file = %candidate.display(),
                            id = record.id,
                            "plugin file registers under a different id"
                        );
                    }
                    return Ok(record);
                }
            }
        }
        let known = self.plugin_ids().await.unwrap_or_default();
        let known = if known.is_empty() {
            "no plugins are registered yet".to_string()
        } else {
            format!("registered: {}", known.join(", "))
        };
        bail!(
            "unknown plugin `{spec}` ({known})\n  hint: pass the component file instead (e.g. --target path/to/{}.wasm), register it with `assay plugin add <file.wasm>`, or point --plugins-dir at the directory holding it; {BUILD_PLUGINS_HINT}",
            spec.replace('-', "_")
        )
    }

    /// Registers a component file for the app's tenant, with errors that
    /// name the file. A file whose plugin is already registered as shared
    /// with the same bytes resolves to the shared plugin.
    pub async fn register_file(&self, path: &Path) -> Result<PluginRecord> {
        match self.register_file_in(&self.tenant, path).await {
            Err(e) if is_shared_conflict(&e) => {
                let bytes = std::fs::read(path)?;
                let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
                let shared = self
                    .store
                    .list_visible_plugins(SHARED_TENANT, Page::new(0, 100));
                let shared = shared.await?;
                match shared.items.into_iter().find(|r| r.digest == digest) {
                    Some(record) => Ok(record),
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    /// Registers a component file in `namespace` (a tenant, or
    /// [`SHARED_TENANT`] for `assay plugin add --shared`).
    pub async fn register_file_in(&self, namespace: &str, path: &Path) -> Result<PluginRecord> {
        if !path.exists() {
            bail!(
                "plugin file {} does not exist\n  hint: {BUILD_PLUGINS_HINT}",
                path.display()
            );
        }
        if path.is_dir() {
            bail!(
                "{} is a directory; pass a .wasm file (or use --plugins-dir for a directory)",
                path.display()
            );
        }
        let catalog = self.catalog()?;
        catalog
            .register_file(namespace, path)
            .await
            .map_err(|e| match e {
                RunError::PluginLoad { message, .. } => anyhow!(
                    "{} is not a usable assay plugin: {message}\n  hint: `assay plugin check {}` explains what is wrong; plugins are WASI 0.2 components built for wasm32-wasip2 with assay-plugin-sdk",
                    path.display(),
                    path.display()
                ),
                other => anyhow!(other),
            })
    }

    async fn plugin_ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for page in 0..10 {
            let p = self
                .store
                .list_visible_plugins(&self.tenant, Page::new(page, 100))
                .await?;
            ids.extend(p.items.into_iter().map(|r| r.id));
            if !p.has_more {
                break;
            }
        }
        Ok(ids)
    }
}

/// Whether `e` is the conflict of registering a plugin whose id a shared
/// plugin has.
fn is_shared_conflict(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<RunError>(),
        Some(RunError::Store(StoreError::Conflict(m))) if m.contains("shared plugin")
    )
}

/// True when a plugin spec names a file rather than an id.
pub fn looks_like_path(spec: &str) -> bool {
    spec.ends_with(".wasm")
        || spec.contains('/')
        || spec.contains(std::path::MAIN_SEPARATOR)
        || Path::new(spec).is_file()
}

pub use assay_store::redact;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_normalized() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("a b.db");
        let url = normalize_database_url(file.to_str().unwrap()).unwrap();
        assert_eq!(url, format!("sqlite://{}?mode=rwc", file.display()));
        assert!(file.parent().unwrap().is_dir());
        assert_eq!(
            normalize_database_url("sqlite::memory:").unwrap(),
            "sqlite::memory:"
        );
        let with_mode = format!("sqlite://{}?mode=ro", file.display());
        assert_eq!(normalize_database_url(&with_mode).unwrap(), with_mode);
        assert_eq!(
            normalize_database_url("postgres://u:p@h/db").unwrap(),
            "postgres://u:p@h/db"
        );
        assert!(normalize_database_url("mysql://x").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
