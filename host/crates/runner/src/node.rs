//! Starting a node's share of the work on an [`Assembly`]: registering the
//! plugins it ships with, and starting the scheduler that executes runs.
//!
//! `assay serve` (an API node that also executes runs) and `assay worker`
//! (a node that only executes runs) both start here, so a run executed by
//! either gets the same scheduler, pool and ceilings; `assay serve
//! --no-execute` registers its plugins but starts no scheduler. See
//! `docs/operations.md`, "API nodes and workers".

use std::path::{Path, PathBuf};

use assay_plugin_host::LoadError;
use assay_store::SHARED_TENANT;
use tracing::{info, warn};

use crate::assembly::Assembly;
use crate::scheduler::{Scheduler, SchedulerConfig};

/// Why the shipped plugins could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum SharedPluginsError {
    /// The wasm engine could not be set up.
    #[error("cannot start the plugin host: {0}")]
    PluginHost(#[from] LoadError),
    /// A plugin directory could not be read.
    #[error("cannot read plugin directory {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Assembly {
    /// Registers the `*.wasm` plugins of `dirs` as shared plugins (every
    /// tenant sees them, none can replace them). A file that is not a
    /// usable plugin is logged and skipped; a directory that cannot be read
    /// is an error. Registering is by digest: plugins another node
    /// registered already are left as they are.
    pub async fn register_shared_plugins(
        &self,
        dirs: &[PathBuf],
    ) -> Result<(), SharedPluginsError> {
        if dirs.is_empty() {
            return Ok(());
        }
        let catalog = self.catalog()?;
        for dir in dirs {
            register_dir(&catalog, dir).await?;
        }
        Ok(())
    }

    /// Starts the scheduler: this process claims pending runs (and runs
    /// whose process stopped without finishing them) from the database and
    /// executes them, until [`Scheduler::shutdown`].
    pub fn start_scheduler(&self, config: SchedulerConfig) -> Result<Scheduler, LoadError> {
        Ok(Scheduler::start_with(
            self.executor(),
            self.catalog()?,
            config,
        ))
    }
}

async fn register_dir(catalog: &crate::Catalog, dir: &Path) -> Result<(), SharedPluginsError> {
    let (ok, failed) = catalog
        .register_dir(SHARED_TENANT, dir)
        .await
        .map_err(|source| SharedPluginsError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
    for record in &ok {
        info!(plugin = %record.id, kind = %record.kind, digest = %record.digest, "plugin registered");
    }
    for (file, error) in &failed {
        warn!(file, %error, "plugin skipped");
    }
    Ok(())
}
