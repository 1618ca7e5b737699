//! Errors of the store.

/// What can go wrong in a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing does not exist, or belongs to another tenant (which looks
    /// exactly the same to the caller).
    #[error("{what} not found: {id}")]
    NotFound { what: &'static str, id: String },
    /// The caller's data is invalid; `field` names where (`input.question`,
    /// `items[3].expectedOutput`, `inputSchema`).
    #[error("invalid {field}: {message}")]
    Validation { field: String, message: String },
    /// The request conflicts with the current state (a run still running,
    /// a duplicate id or name, a finished run).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A tenant limit would be exceeded; nothing was changed. `key` names
    /// the limit as `assay tenant limits --set` takes it, `limit` is its
    /// value, `what` says how it would be exceeded.
    #[error("limit `{key}` ({limit}) exceeded: {what}")]
    LimitExceeded {
        key: &'static str,
        what: String,
        limit: i64,
    },
    /// The caller no longer holds the run's lease (another process took the
    /// run, or it was finished): nothing was written.
    #[error("lease lost: another owner holds this run, or it is finished")]
    LeaseLost,
    /// The database URL is not one we can use.
    #[error("unsupported database URL: {0}")]
    Config(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Stored data that cannot be decoded (e.g. JSON text edited by hand).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A [`StoreError::NotFound`].
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        StoreError::NotFound {
            what,
            id: id.into(),
        }
    }

    /// A [`StoreError::Validation`].
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        StoreError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// True for [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Maps a unique-constraint violation to [`StoreError::Conflict`] with
/// `message`; any other error passes through.
pub(crate) fn conflict_on_unique(e: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message()),
        _ => StoreError::Database(e),
    }
}
