//! Errors of the run layer.

use assay_store::StoreError;

/// Why a run could not be set up, or why it stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run was taken over too often after its process stopped.
    #[error(
        "the run was taken over {takeovers} times after the process running it stopped without finishing it (limit {limit}, `assay serve --max-takeovers`); it may be what stops the process, so it is failed instead of resumed again"
    )]
    TooManyTakeovers {
        /// Takeovers so far.
        takeovers: i64,
        /// The limit.
        limit: i64,
    },
    /// A run option is out of range.
    #[error("invalid `{field}`: {message}")]
    InvalidOptions {
        /// The JSON field name.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A plugin named by the run does not exist or cannot be loaded.
    #[error("unknown {kind} plugin `{id}`{hint}")]
    UnknownPlugin {
        /// `target` or `scorer`.
        kind: &'static str,
        /// The id that did not resolve.
        id: String,
        /// Extra advice for the user (may be empty).
        hint: String,
    },
    /// A plugin exists but cannot serve in the role asked of it.
    #[error("plugin `{id}` is a {actual} plugin, not a {expected}")]
    WrongPluginKind {
        /// The plugin id.
        id: String,
        /// What the run needs.
        expected: &'static str,
        /// What the plugin is.
        actual: String,
    },
    /// The plugin could not be loaded into the sandbox.
    #[error("plugin `{id}` cannot be loaded: {message}")]
    PluginLoad {
        /// The plugin id.
        id: String,
        /// The loader's message.
        message: String,
    },
    /// The dataset has no items at the pinned version.
    #[error("No items in dataset {dataset_id} at version {version}")]
    EmptyDataset {
        /// The dataset id.
        dataset_id: String,
        /// The pinned version.
        version: i64,
    },
    /// A run option asks for more than the tenant's limits or the
    /// operator's ceilings allow.
    #[error("`{field}` {asked} is above the {scope} `{limit}` ({value})")]
    OverLimit {
        /// The JSON field name of the option.
        field: String,
        /// What was asked.
        asked: u64,
        /// `tenant limit` or `operator ceiling`.
        scope: &'static str,
        /// The limit's name (`items-in-flight`, `max-target-timeout`, ...).
        limit: &'static str,
        /// The limit's value (milliseconds for durations, bytes for sizes).
        value: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
