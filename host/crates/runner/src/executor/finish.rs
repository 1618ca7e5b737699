//! Finalizing a run once its items are joined: either leave it resumable
//! (shutdown, lost lease, items unreadable) or store its final status.

use assay_store::RunStatus;
use tracing::{info, warn};

use super::start::Joined;
use super::{Executor, RunHooks};
use crate::error::RunError;
use crate::summary::RunSummary;

impl Executor {
    /// Ends the run: `feed` is how reading its items ended.
    pub(super) async fn finalize(
        &self,
        joined: Joined,
        feed: Result<(), RunError>,
        hooks: &RunHooks,
    ) -> Result<RunSummary, RunError> {
        let Joined {
            tenant,
            run_id,
            lease_lost,
            results,
            executed_ok,
            persistence_failures,
        } = joined;
        let read_failed = match feed {
            Ok(()) => false,
            Err(e) => {
                // Items could not be read even after retries: leave the run
                // resumable rather than finalizing it with items unexecuted.
                warn!(run_id, error = %e, "reading the run's items failed; releasing the run");
                true
            }
        };

        let interrupted = read_failed
            || lease_lost.is_cancelled()
            || (!hooks.cancel.is_cancelled()
                && (hooks.drain.is_cancelled() || hooks.abort.is_cancelled()));
        if interrupted {
            if !lease_lost.is_cancelled() {
                self.store.release_run(&run_id, &self.owner).await?;
            }
            info!(run_id, "run interrupted; it will resume on the next start");
            let run = self.store.get_run(&tenant, &run_id).await?;
            let mut summary = RunSummary::from_run(run, persistence_failures, results);
            summary.interrupted = true;
            return Ok(summary);
        }

        let status = if hooks.cancel.is_cancelled() {
            RunStatus::Cancelled
        } else {
            let current = self.store.get_run(&tenant, &run_id).await?;
            // Items whose result could not be stored still ran: count them.
            let ok = current.succeeded_count as u64 + persistence_failures.min(executed_ok);
            if ok == 0 && current.total_items > 0 {
                RunStatus::Failed
            } else {
                RunStatus::Completed
            }
        };
        let run = self
            .store
            .finish_run(&run_id, &self.owner, status, None)
            .await?;
        info!(run_id, status = %run.status, succeeded = run.succeeded_count, failed = run.failed_count, "run finished");
        crate::metrics::run_finished(&tenant, &run.status.to_string());
        Ok(RunSummary::from_run(run, persistence_failures, results))
    }
}
