//! Finalizing a run once its items are joined: either leave it resumable
//! (shutdown, lost or lapsed lease, items unreadable, results left
//! unwritten by a database outage) or store its final status.

use assay_store::{Run, RunStatus, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use std::time::Duration;

use super::start::{Joined, Role};
use super::{Executor, RunHooks, STORAGE_RETRY_DELAY};
use crate::error::RunError;
use crate::retry::backoff;
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
            claim,
            role,
            lease_lost,
            results,
            executed_ok,
            persistence_failures,
            unwritten,
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

        // Results the database could not take before the run stopped: a
        // finalized run would skip their items forever, a resumed one runs
        // them again.
        if unwritten > 0 {
            warn!(
                run_id,
                unwritten, "results left unwritten by a database failure; releasing the run"
            );
        }
        if role == Role::Helper {
            // The lead finalizes the run. Chunks left unfinished (the run
            // stopping) go back at once rather than when their lease lapses.
            if let Err(e) = self.store.release_chunks(&run_id, &claim).await {
                warn!(run_id, error = %e, "releasing the chunks failed; their leases will lapse");
            }
            info!(run_id, executed_ok, "left the run");
            let run = self
                .read_run_patiently(&tenant, &run_id, &hooks.abort)
                .await?;
            let mut summary = RunSummary::from_run(run, persistence_failures, results);
            summary.interrupted = !summary.status.is_terminal();
            return Ok(summary);
        }
        let interrupted = read_failed
            || lease_lost.is_cancelled()
            || (!hooks.cancel.is_cancelled()
                && (unwritten > 0 || hooks.drain.is_cancelled() || hooks.abort.is_cancelled()));
        if interrupted {
            // Fenced by this claim: a no-op when another claim took the run.
            // A failure (the database is still out) leaves the lease to
            // lapse, which frees the run just the same.
            if let Err(e) = self.store.release_run(&run_id, &claim).await {
                warn!(run_id, error = %e, "releasing the run failed; its lease will lapse");
            }
            if let Err(e) = self.store.release_chunks(&run_id, &claim).await {
                warn!(run_id, error = %e, "releasing the chunks failed; their leases will lapse");
            }
            info!(run_id, "run interrupted; it will resume on the next start");
            let run = self
                .read_run_patiently(&tenant, &run_id, &hooks.abort)
                .await?;
            let mut summary = RunSummary::from_run(run, persistence_failures, results);
            summary.interrupted = true;
            return Ok(summary);
        }

        let status = if hooks.cancel.is_cancelled() {
            RunStatus::Cancelled
        } else if executed_ok > 0 {
            // A success of this process is stored, or was refused for good
            // (a persistence failure, which the formula below counts as a
            // success too): the run completed, whatever the other
            // processes did, with no need to read it.
            RunStatus::Completed
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
        let run = self.store.finish_run(&run_id, &claim, status, None).await?;
        info!(run_id, status = %run.status, succeeded = run.succeeded_count, failed = run.failed_count, "run finished");
        crate::metrics::run_finished(&tenant, &run.status.to_string());
        Ok(RunSummary::from_run(run, persistence_failures, results))
    }

    /// The run row for the summary of an interrupted run, retried while the
    /// database fails (an outage may be what interrupted it) until `stop`
    /// (the process shutting down) fires.
    async fn read_run_patiently(
        &self,
        tenant: &str,
        run_id: &str,
        stop: &CancellationToken,
    ) -> Result<Run, RunError> {
        let mut attempt = 0u32;
        loop {
            match self.store.get_run(tenant, run_id).await {
                Err(StoreError::Database(e)) if !stop.is_cancelled() => {
                    warn!(run_id, error = %e, attempt, "reading the run failed; retrying");
                    let wait = backoff(STORAGE_RETRY_DELAY, attempt).min(Duration::from_secs(2));
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                    attempt = attempt.saturating_add(1);
                }
                other => return Ok(other?),
            }
        }
    }
}
