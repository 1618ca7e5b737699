//! On-disk cache of compiled components.
//!
//! A compiled component is stored as `<sha256 of the .wasm>-<engine hash>.cwasm`,
//! so a changed component or a changed engine (wasmtime version, compiler
//! flags, memory settings) misses and recompiles. Files are written to a
//! temporary name and renamed, so a reader never sees half a file.
//!
//! Loading a `.cwasm` runs its native code unchecked, so an entry is only
//! loaded when the host can tell it wrote it:
//!
//! * the directory is created with mode 0700 and entries with mode 0600;
//!   an entry that is not a regular file, is owned by another user, or is
//!   readable or writable by group or others is refused (and removed);
//! * every entry ends with a SHA-256 over the component's digest, the
//!   engine hash and the compiled code, so an entry that was altered,
//!   truncated, or copied under another component's name is refused too.
//!
//! The SHA-256 is not keyed: it detects corruption and misfiled entries,
//! while the owner and mode checks keep other users out. Code running as
//! the host's own user is trusted (it could replace the host's binary).
//!
//! The directory has a size budget: after each write the oldest entries
//! (by modification time, refreshed on every hit) are removed until the
//! total is within it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Length of the integrity trailer at the end of each entry.
const TRAILER_LEN: usize = 32;
/// File extension of entries.
const EXTENSION: &str = "cwasm";

/// Counters of the compiled-code cache of one [`PluginHost`](crate::PluginHost).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Components loaded from the disk cache.
    pub hits: u64,
    /// Components compiled (no usable cache entry).
    pub misses: u64,
    /// Cache entries written.
    pub writes: u64,
    /// Entries refused because the host cannot tell it wrote them (wrong
    /// owner or mode, or a failed integrity check).
    pub rejected: u64,
    /// Entries removed to keep the directory within its size budget.
    pub trimmed: u64,
}

#[derive(Debug, Default)]
pub(crate) struct CacheCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    writes: AtomicU64,
    rejected: AtomicU64,
    trimmed: AtomicU64,
}

impl CacheCounters {
    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            trimmed: self.trimmed.load(Ordering::Relaxed),
        }
    }
}

/// The cache directory of one engine.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    engine_hash: String,
    max_bytes: u64,
}

impl DiskCache {
    /// Opens (creating if needed) the cache directory, private to the user.
    pub(crate) fn open(dir: &Path, engine_hash: &str, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let meta = std::fs::metadata(dir)?;
            if meta.uid() != effective_uid() {
                return Err(std::io::Error::other(format!(
                    "the plugin cache directory is owned by another user (uid {})",
                    meta.uid()
                )));
            }
            let mut perms = meta.permissions();
            if perms.mode() & 0o077 != 0 {
                perms.set_mode(0o700);
                std::fs::set_permissions(dir, perms)?;
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_hash: engine_hash.to_string(),
            max_bytes,
        })
    }

    /// The cache file for a component with this SHA-256 (hex).
    pub(crate) fn entry_path(&self, sha256_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256_hex}-{}.{EXTENSION}", self.engine_hash))
    }

    /// The trailer that authenticates `code` as the entry of `sha256_hex`.
    fn trailer(&self, sha256_hex: &str, code: &[u8]) -> [u8; TRAILER_LEN] {
        let mut hasher = Sha256::new();
        hasher.update(b"assay-cwasm\0");
        hasher.update(sha256_hex.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.engine_hash.as_bytes());
        hasher.update(b"\0");
        hasher.update(code);
        hasher.finalize().into()
    }

    /// The compiled code of an entry, if it exists and the host wrote it.
    fn read_trusted(&self, path: &Path, sha256_hex: &str) -> Result<Option<Vec<u8>>, String> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        if !meta.file_type().is_file() {
            return Err("not a regular file".into());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            if meta.uid() != effective_uid() {
                return Err(format!("owned by another user (uid {})", meta.uid()));
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(format!("mode {mode:o} lets other users read or write it"));
            }
        }
        let mut bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        if bytes.len() < TRAILER_LEN {
            return Err("too short".into());
        }
        let code_len = bytes.len() - TRAILER_LEN;
        if bytes[code_len..] != self.trailer(sha256_hex, &bytes[..code_len]) {
            return Err("integrity check failed".into());
        }
        bytes.truncate(code_len);
        Ok(Some(bytes))
    }

    /// Writes an entry (mode 0600, atomically) and trims the directory.
    fn write(
        &self,
        path: &Path,
        sha256_hex: &str,
        code: &[u8],
        counters: &CacheCounters,
    ) -> std::io::Result<()> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = path.with_extension(format!(
            "tmp-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp)?;
            file.write_all(code)?;
            file.write_all(&self.trailer(sha256_hex, code))?;
            file.sync_data()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
        self.trim(path, counters);
        Ok(())
    }

    /// Removes the least recently used entries until the directory is
    /// within its budget (the entry just written, `keep`, goes last).
    fn trim(&self, keep: &Path, counters: &CacheCounters) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = dir
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == EXTENSION))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                meta.is_file().then(|| {
                    (
                        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        meta.len(),
                        e.path(),
                    )
                })
            })
            .collect();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        if total <= self.max_bytes {
            return;
        }
        // Oldest first; the new entry last.
        entries.sort_by_key(|(modified, _, path)| (path == keep, *modified));
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                counters.trimmed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(path = %path.display(), "cache entry trimmed");
            }
        }
    }
}

/// The user the host runs as.
#[cfg(unix)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
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
    match cache.read_trusted(&path, sha256_hex) {
        Ok(Some(code)) => {
            // SAFETY: the host wrote this code with `Component::serialize`
            // (owner, mode and integrity trailer checked above); wasmtime
            // still checks its header and engine compatibility.
            match unsafe { Component::deserialize(engine, &code) } {
                Ok(component) => {
                    counters.hits.fetch_add(1, Ordering::Relaxed);
                    touch(&path);
                    tracing::debug!(path = %path.display(), "component loaded from cache");
                    return Ok((component, true));
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "unusable cache entry, recompiling");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok(None) => {}
        Err(why) => {
            counters.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(path = %path.display(), reason = %why, "cache entry not written by this host, recompiling");
            let _ = std::fs::remove_file(&path);
        }
    }
    counters.misses.fetch_add(1, Ordering::Relaxed);
    let component = Component::from_binary(engine, bytes)?;
    let stored = component
        .serialize()
        .map_err(std::io::Error::other)
        .and_then(|code| cache.write(&path, sha256_hex, &code, counters));
    match stored {
        Ok(()) => {
            counters.writes.fetch_add(1, Ordering::Relaxed);
        }
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "cannot write compiled component to cache");
        }
    }
    Ok((component, false))
}

/// Marks an entry as recently used (its modification time orders trimming).
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().write(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}
