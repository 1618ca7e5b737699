//! On-disk cache of compiled components.
//!
//! A compiled component is stored as `<sha256 of the .wasm>-<engine hash>.cwasm`,
//! so a changed component or a changed engine (wasmtime version, compiler
//! flags, memory settings) misses and recompiles. Files are written to a
//! temporary name and renamed, so a reader never sees half a file.
//!
//! Loading a `.cwasm` runs its native code unchecked, so the host only
//! loads files from its own cache directory, which it creates with mode
//! 0700. Files that fail to load (corrupt, other engine) are replaced.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Counters of the compiled-code cache of one [`PluginHost`](crate::PluginHost).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Components loaded from the disk cache.
    pub hits: u64,
    /// Components compiled (no usable cache entry).
    pub misses: u64,
    /// Cache entries written.
    pub writes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct CacheCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    writes: AtomicU64,
}

impl CacheCounters {
    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

/// The cache directory of one engine.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    engine_hash: String,
}

impl DiskCache {
    /// Opens (creating if needed) the cache directory.
    pub(crate) fn open(dir: &Path, engine_hash: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mut perms = std::fs::metadata(dir)?.permissions();
            if perms.mode() & 0o077 != 0 {
                perms.set_mode(0o700);
                std::fs::set_permissions(dir, perms)?;
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_hash: engine_hash.to_string(),
        })
    }

    /// The cache file for a component with this SHA-256 (hex).
    pub(crate) fn entry_path(&self, sha256_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256_hex}-{}.cwasm", self.engine_hash))
    }
}

/// Loads the component from the cache or compiles it (and stores it).
/// Returns the component and whether it came from the cache.
pub(crate) fn load_or_compile(
    engine: &Engine,
    cache: Option<&DiskCache>,
    counters: &CacheCounters,
    sha256_hex: &str,
    bytes: &[u8],
) -> wasmtime::Result<(Component, bool)> {
    let Some(cache) = cache else {
        counters.misses.fetch_add(1, Ordering::Relaxed);
        return Ok((Component::from_binary(engine, bytes)?, false));
    };
    let path = cache.entry_path(sha256_hex);
    if path.is_file() {
        // SAFETY: the file is in the host's private cache directory and was
        // written by `store` below from `Component::serialize` of this
        // engine; wasmtime still checks its header and engine compatibility.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                counters.hits.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(path = %path.display(), "component loaded from cache");
                return Ok((component, true));
            }
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "unusable cache entry, recompiling");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    counters.misses.fetch_add(1, Ordering::Relaxed);
    let component = Component::from_binary(engine, bytes)?;
    match store(&path, &component) {
        Ok(()) => {
            counters.writes.fetch_add(1, Ordering::Relaxed);
        }
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "cannot write compiled component to cache");
        }
    }
    Ok((component, false))
}

fn store(path: &Path, component: &Component) -> anyhow::Result<()> {
    let bytes = component.serialize()?;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&tmp, &bytes)?;
    if let Err(err) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err.into());
    }
    Ok(())
}
