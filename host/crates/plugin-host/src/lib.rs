//! The sandboxed plugin runtime of assay.
//!
//! Plugins are WASI 0.2 components exporting the `assay:plugin/scorer` or
//! `assay:plugin/target` interface of a contract version the host supports
//! (one WIT folder per version, `plugin-sdk/wit/vX.Y/`; see
//! [`supported_contract_versions`] and `docs/plugin-contract.md`). A
//! [`PluginHost`] compiles each component once (caching the native code on
//! disk), and every call runs in a fresh, pre-instantiated sandbox:
//!
//! * WASI with nothing granted: no files, no environment, no arguments, no
//!   sockets; stdout and stderr captured up to a cap;
//! * outbound HTTP (wasi:http) only as a call's [`NetworkAccess`] grants it,
//!   checked on every request (see `docs/network.md`);
//! * per-call [`Limits`]: wall-clock deadline (epoch interruption), linear
//!   memory cap, output size cap;
//! * every failure a typed [`CallError`] / [`LoadError`] with a message meant
//!   for users;
//! * calls are `async`: a guest yields to tokio every epoch tick, so it never
//!   blocks a worker thread, and dropping the call future stops it.
//!
//! Calls must run inside a tokio runtime with its time driver enabled
//! (`enable_all`). Loading is blocking (compilation): from async code, load
//! inside `spawn_blocking`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use assay_plugin_host::{HostConfig, Limits, PluginHost, PluginItem};
//! let host = PluginHost::new(HostConfig::default())?;
//! let scorer = host.load_file("exact_match.wasm".as_ref())?;
//! let item = PluginItem {
//!     id: "1".into(),
//!     input: "2+2".into(),
//!     ground_truth: Some("4".into()),
//!     metadata: None,
//! };
//! let score = scorer
//!     .score(&item, Some(&"4".into()), None, &Limits::scorer_default())
//!     .await?;
//! assert_eq!(score.value, 1.0);
//! # Ok(()) }
//! ```

mod bindings;
mod cache;
mod call;
mod checks;
mod config;
mod contract;
mod error;
mod grant;
mod host;
mod inspect;
mod loader;
mod logs;
mod net_access;
mod net_pool;
mod net_rate;
mod net_report;
mod net_send;
mod plugin;
mod resident;
mod sandbox;
mod secrets;
mod types;

pub use cache::CacheStats;
pub use config::{HostConfig, Limits, RECOMMENDED_KEEP_RESIDENT_BYTES};
pub use contract::{CONTRACT_VERSION, supported_contract_versions};
pub use error::{CallError, CallFailure, ContractMismatch, LoadError};
pub use grant::{
    Denial, HostPattern, HostPatternError, NarrowError, NetworkGrant, NetworkLimits, RateLimit,
    RequestRate, Scheme, is_internal_address,
};
pub use host::PluginHost;
pub use inspect::{PluginReport, inspect};
pub use logs::CapturedLogs;
pub use net_access::{NetworkAccess, Resolver, StaticResolver, SystemResolver};
pub use net_pool::ConnectionPool;
pub use net_rate::{RateLimiterPool, RateLimiters, USAGE_SCAN_BYTES};
pub use net_report::{HttpExchange, NetworkReport};
pub use plugin::Plugin;
pub use resident::KeepResident;
pub use secrets::{SecretValue, Secrets, UnknownSecret};
pub use types::{PluginInfo, PluginItem, PluginKind, PluginNeeds, ScoreOutcome, TargetOutcome};
