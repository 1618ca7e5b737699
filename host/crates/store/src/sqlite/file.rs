//! Creating a database file private to the user running assay.
//!
//! The database holds API key hashes, plugin components and every tenant's
//! data, so a file assay creates is readable and writable by its owner only
//! (0600), inside directories assay creates with 0700. SQLite gives its
//! `-wal` and `-shm` files the mode of the database file, so they follow.
//! A file that already exists is left as the operator made it.

use std::fs::{DirBuilder, OpenOptions};
use std::io::ErrorKind;
use std::path::Path;

use crate::error::StoreError;

/// Creates `path` (and its missing parent directories) private to the
/// user, unless it exists. An empty file is a valid new SQLite database.
pub(super) fn create_private(path: &Path) -> Result<(), StoreError> {
    let fail = |what: &str, p: &Path, e: std::io::Error| {
        StoreError::Config(format!("cannot create the {what} {}: {e}", p.display()))
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        let mut dir = DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(parent)
            .map_err(|e| fail("directory", parent, e))?;
    }
    let mut file = OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    match file.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail("database file", path, e)),
    }
}

/// An exclusive lock on `<database>-migrate.lock`, held while migrations
/// run: sqlx takes no lock around SQLite migrations, so two processes
/// opening one new file at once would both apply the first migration (one
/// of them then fails on "table already exists"). The lock file is created
/// private like the database; it is released when the guard drops (or the
/// process dies: the kernel drops the lock).
pub(super) struct MigrationLock {
    _file: std::fs::File,
}

impl MigrationLock {
    /// Waits for the lock (blocking: call off the async threads).
    pub(super) fn acquire(database: &Path) -> Result<Self, StoreError> {
        let mut name = database.as_os_str().to_os_string();
        name.push("-migrate.lock");
        let path = Path::new(&name);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|e| {
            StoreError::Config(format!(
                "cannot open the migration lock {}: {e}",
                path.display()
            ))
        })?;
        file.lock()
            .map_err(|e| StoreError::Config(format!("cannot lock {}: {e}", path.display())))?;
        Ok(Self { _file: file })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_and_directories_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("a/b/assay.db");
        create_private(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
    }

    #[test]
    fn an_existing_file_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("assay.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
        create_private(&db).unwrap();
        assert_eq!(mode(&db), 0o640);
    }
}
