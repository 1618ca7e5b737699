//! The assay run layer: creating runs, executing them on a bounded pool,
//! scheduling them in the background, comparing them.
//!
//! * [`Assembly`] builds a process's store, plugin host, catalog and
//!   executor from one [`AssemblySettings`] (the CLI and the server both
//!   use it); [`Assembly::start_scheduler`] starts the scheduler of a node
//!   that executes runs (`assay serve`, `assay worker`, see [`node`]).
//! * [`trigger::create_run`] validates a request and stores a `pending` run
//!   without touching any item.
//! * [`Executor::execute`] streams one run's items through its target and
//!   scorers (retries, deadlines, cancellation, batched writes, streaming
//!   callbacks) — the equivalent of Mastra's `runDataset`.
//! * [`Scheduler`] claims pending and orphaned runs from storage and
//!   executes them in the background; it also resumes runs interrupted by a
//!   crash or a shutdown. Runs are claimed, and the process's item slots
//!   ([`ItemSlots`]) shared, fairly between tenants (`docs/fair-share.md`).
//! * [`stats`] computes a run's statistics (per scorer, latency, failures);
//!   [`compare::compare_runs`] compares two runs with the same tallies;
//!   [`significance`] gives means their uncertainty (runs with repeats)
//!   and tests the differences between two runs.

pub mod adaptive;
pub mod assembly;
pub mod cache;
pub mod catalog;
pub mod ceilings;
pub mod compare;
pub mod config;
pub mod error;
pub mod executor;
pub mod item;
pub mod loaded;
pub mod metrics;
mod network;
pub mod node;
pub mod plugins;
pub mod rerun;
pub mod rescore;
pub mod retry;
pub mod scheduler;
pub mod secrets;
pub mod significance;
pub mod slots;
pub mod stats;
pub mod summary;
pub mod trigger;
pub mod writer;

pub use assembly::{Assembly, AssemblySettings};
pub use cache::OutputCache;
pub use catalog::Catalog;
pub use ceilings::Ceilings;
pub use config::RunOptions;
pub use error::RunError;
pub use executor::{CallbackError, Executor, ItemCallback, RunHooks, RunPlan, on_item_complete};
pub use item::ItemWithScores;
pub use node::SharedPluginsError;
pub use plugins::{Scorer, ScorerAsTarget, Target, WasmScorer, WasmTarget};
pub use rerun::{Rerun, changed_pins, rerun_of};
pub use rescore::{RescoreRequest, TargetSource, create_rescore};
pub use scheduler::{DEFAULT_MAX_TAKEOVERS, Scheduler, SchedulerConfig};
pub use secrets::{KeySource, ResolvedSecrets, SecretError, SecretKey, SecretVault};
pub use slots::ItemSlots;
pub use stats::{RunStats, StatsBuilder};
pub use summary::RunSummary;
pub use trigger::{RunRequest, StoredRunConfig, TargetType, create_run, plan_run};
pub use writer::{QueuedWrite, ResultSink, ResultWriter, WriteAck};
