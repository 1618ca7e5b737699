//! The summary a finished (or interrupted) run returns.

use assay_store::{Run, RunStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::item::ItemWithScores;

/// What `execute` returns: the run's final state and, when results are
/// retained, every result in dataset order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// The run id.
    pub run_id: String,
    /// Final status (`running` when the run was interrupted by a shutdown).
    pub status: RunStatus,
    /// Items in the pinned dataset version.
    pub total_items: i64,
    /// Items whose target succeeded.
    pub succeeded_count: i64,
    /// Items whose target failed.
    pub failed_count: i64,
    /// Items never finished (cancelled or not reached).
    pub skipped_count: i64,
    /// `completed` with at least one failed item.
    pub completed_with_errors: bool,
    /// Results that could not be written to storage.
    pub persistence_failures: u64,
    /// When the run started executing.
    pub started_at: Option<DateTime<Utc>>,
    /// When the run was finalized.
    pub completed_at: Option<DateTime<Utc>>,
    /// True when the process stopped before the run ended; it resumes on the
    /// next start.
    pub interrupted: bool,
    /// Every result, in dataset order, when `retain_results` is on.
    pub results: Vec<ItemWithScores>,
}

impl RunSummary {
    /// Builds a summary from the stored run row.
    pub fn from_run(run: Run, persistence_failures: u64, results: Vec<ItemWithScores>) -> Self {
        Self {
            completed_with_errors: run.status == RunStatus::Completed && run.failed_count > 0,
            run_id: run.id,
            status: run.status,
            total_items: run.total_items,
            succeeded_count: run.succeeded_count,
            failed_count: run.failed_count,
            skipped_count: run.skipped_count,
            persistence_failures,
            started_at: run.started_at,
            completed_at: run.completed_at,
            interrupted: false,
            results,
        }
    }
}
