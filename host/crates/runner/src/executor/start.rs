//! Starting a run: claim its lease, turn the caller's hooks into the run's
//! stop signals, and start the tasks that live as long as the run (lease
//! heartbeat, stop watcher, cancel recorder, result writer).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use assay_store::{Claim, Store, StoreError};
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, info, warn};

use super::item::ItemContext;
use super::{Executor, RunHooks, RunPlan};
use crate::config::RunOptions;
use crate::error::RunError;
use crate::slots::DEFAULT_WEIGHT;
use crate::writer::ResultWriter;

/// A run this process holds, with its item context and helper tasks
/// running. [`Started::join`] stops the helpers once every item is joined.
pub(super) struct Started {
    pub(super) tenant: String,
    pub(super) run_id: String,
    /// This execution's claim of the run (every write is fenced by it).
    pub(super) claim: Claim,
    /// Whether this execution holds the run's lease or helps another
    /// process execute it.
    pub(super) role: Role,
    pub(super) options: RunOptions,
    /// Trials per item (1: no repeats).
    pub(super) repeats: i64,
    /// Start no new item.
    pub(super) stop: CancellationToken,
    /// Another claim took the run over, or the lease lapsed without being
    /// renewed (a database outage): stop without writing anything.
    pub(super) lease_lost: CancellationToken,
    /// What the item tasks share.
    pub(super) shared: Arc<ItemContext>,
    /// The tenant's fair-share weight, read once when the run starts.
    pub(super) weight: u32,
    helpers: Helpers,
}

/// How one process takes part in a run (see `docs/runs.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Holds the run's lease: executes chunks, waits for the chunks other
    /// processes hold, and finalizes the run.
    Lead,
    /// Executes chunks of a run another process holds, until none is left
    /// to hand out; never finalizes it.
    Helper,
}

/// Tasks that live as long as the run. Those that keep the run's claims
/// alive stop when dropped: an execution dropped midway (its task aborted)
/// must not keep renewing leases for work nobody does any more.
struct Helpers {
    watcher: AbortOnDropHandle<()>,
    cancel_recorder: AbortOnDropHandle<()>,
    heartbeat: AbortOnDropHandle<()>,
    writer: JoinHandle<()>,
}

/// What the run's items amounted to, once every item task was joined.
pub(super) struct Joined {
    pub(super) tenant: String,
    pub(super) run_id: String,
    pub(super) claim: Claim,
    pub(super) role: Role,
    pub(super) lease_lost: CancellationToken,
    /// Retained results, in dataset order.
    pub(super) results: Vec<crate::item::ItemWithScores>,
    /// Items executed here whose target succeeded.
    pub(super) executed_ok: u64,
    /// Results the store refused (not database failures: those are
    /// retried until the run stops).
    pub(super) persistence_failures: u64,
    /// Results left unwritten because the run stopped while the database
    /// was failing: their items run again when the run resumes.
    pub(super) unwritten: u64,
}

impl Executor {
    /// The tenant's fair-share weight, read when a run starts. A failed
    /// read costs the run its weight, never the run itself.
    async fn tenant_weight(&self, tenant: &str) -> u32 {
        match self.store.tenant_limits(tenant).await {
            Ok(limits) => u32::try_from(limits.weight).unwrap_or(DEFAULT_WEIGHT),
            Err(e) => {
                warn!(tenant, error = %e, "reading the tenant's weight failed; using the default");
                DEFAULT_WEIGHT
            }
        }
    }

    /// Claims the run (unless the plan says the caller holds it already) and
    /// starts its helper tasks. No item starts here.
    ///
    /// A helper (`joined`: the claim [`assay_store::RunStore::join_run`]
    /// gave it) takes no lease of the run: it only claims chunks.
    pub(super) async fn start(
        &self,
        plan: RunPlan,
        hooks: &RunHooks,
        joined: Option<Claim>,
    ) -> Result<Started, RunError> {
        let RunPlan {
            tenant,
            run,
            target,
            scorers,
            options,
            claimed,
        } = plan;
        let (run, claim, role) = match joined {
            Some(claim) => (run, claim, Role::Helper),
            None => {
                let run = if claimed {
                    run
                } else {
                    self.store
                        .claim_run(&tenant, &run.id, &self.owner, self.lease)
                        .await?
                };
                let claim = Claim::of(self.owner.clone(), &run);
                (run, claim, Role::Lead)
            }
        };
        let run_id = run.id.clone();
        // Shared or not is the lead's choice (a run taken over from `assay
        // run` may be helped from now on); written only when it changes (a
        // write on a busy database waits for its turn). Read with the
        // weight, at once: both are round trips before the first item.
        // Before any helper task starts, so that a failure here leaves
        // nothing running (a heartbeat would keep renewing a lease nobody
        // executes).
        let exclusive = async {
            match role {
                Role::Lead if run.exclusive == self.shared => {
                    self.store
                        .set_run_exclusive(&run_id, &claim, !self.shared)
                        .await
                }
                _ => Ok(()),
            }
        };
        let (exclusive, weight) = tokio::join!(exclusive, self.tenant_weight(&tenant));
        exclusive?;
        info!(
            run_id,
            total = run.total_items,
            claim = claim.number,
            ?role,
            "run started"
        );
        // A cancel requested while nobody held the run (or between the claim
        // and now) must stop it before any item starts.
        if run.cancel_requested {
            hooks.cancel.cancel();
        }

        let retain = hooks
            .retain_results
            .unwrap_or(hooks.on_item_complete.is_none());
        // `stop`: start no new item. `abort`: cancel the in-flight ones.
        let stop = CancellationToken::new();
        let abort = CancellationToken::new();
        let lease_lost = CancellationToken::new();
        // Apply hooks that already fired synchronously, so that no item
        // starts before the watcher task first runs.
        if hooks.cancel.is_cancelled() || hooks.abort.is_cancelled() {
            stop.cancel();
            abort.cancel();
        } else if hooks.drain.is_cancelled() {
            stop.cancel();
        }
        let watcher = spawn_stop_watcher(hooks, &stop, &abort, &lease_lost);
        let cancel_recorder = spawn_cancel_recorder(
            self.store.clone(),
            tenant.clone(),
            run_id.clone(),
            hooks.cancel.clone(),
        );
        let heartbeat = spawn_heartbeat(
            self.store.clone(),
            run_id.clone(),
            (claim.clone(), role),
            self.lease,
            hooks.cancel.clone(),
            lease_lost.clone(),
        );
        let (writer, writer_task) = ResultWriter::spawn(
            self.sink.clone(),
            run_id.clone(),
            claim.clone(),
            self.max_batch,
            self.write_slots.share(&tenant, weight),
            abort.clone(),
        );

        let shared = Arc::new(ItemContext {
            tenant: tenant.to_string(),
            target,
            scorers,
            options: options.clone(),
            writer,
            callback: hooks.on_item_complete.clone(),
            // A full batch may wait for its write while the next items
            // compute, however few the run has in flight.
            completing: Arc::new(Semaphore::new(
                options.max_concurrency.max(self.max_batch).max(1),
            )),
            retain,
            retained: Mutex::new(Vec::new()),
            abort,
            lease_lost: lease_lost.clone(),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            persistence_failures: AtomicU64::new(0),
            unwritten: AtomicU64::new(0),
        });
        Ok(Started {
            tenant,
            run_id,
            claim,
            role,
            options,
            repeats: run.repeats,
            stop,
            lease_lost,
            shared,
            weight,
            helpers: Helpers {
                watcher: AbortOnDropHandle::new(watcher),
                cancel_recorder: AbortOnDropHandle::new(cancel_recorder),
                heartbeat: AbortOnDropHandle::new(heartbeat),
                writer: writer_task,
            },
        })
    }
}

impl Started {
    /// Waits for the writer to flush everything queued, stops the helper
    /// tasks and collects the counters. Call it only after the feed returned
    /// (every item task joined): nothing is written after this.
    pub(super) async fn join(self) -> Joined {
        let Started {
            tenant,
            run_id,
            claim,
            role,
            lease_lost,
            shared,
            helpers,
            ..
        } = self;
        let shared = match Arc::try_unwrap(shared) {
            Ok(s) => s,
            Err(_) => unreachable!("all item tasks were joined"),
        };
        let ItemContext {
            writer,
            retained,
            succeeded,
            failed,
            persistence_failures,
            unwritten,
            ..
        } = shared;
        drop(writer);
        let _ = helpers.writer.await;
        helpers.heartbeat.abort();
        helpers.watcher.abort();
        helpers.cancel_recorder.abort();

        let persistence_failures = persistence_failures.into_inner();
        let mut results = retained.into_inner();
        results.sort_by_key(|r| (r.index, r.result.trial));
        let executed_ok = succeeded.into_inner();
        let executed_failed = failed.into_inner();
        debug!(run_id, executed_ok, executed_failed, "items joined");
        Joined {
            tenant,
            run_id,
            claim,
            role,
            lease_lost,
            results,
            executed_ok,
            persistence_failures,
            unwritten: unwritten.into_inner(),
        }
    }
}

/// When the caller cancels, records the request in storage too, so that the
/// run ends `cancelled` even if this process dies before finalizing it.
fn spawn_cancel_recorder(
    store: Arc<dyn Store>,
    tenant: String,
    run_id: String,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(tracing::Instrument::in_current_span(async move {
        cancel.cancelled().await;
        // In a task of its own: this recorder is aborted when the run ends,
        // and a store call dropped midway (inside `begin()`) can leave its
        // transaction open on the connection, holding the run's row lock.
        let _ = detached(async move {
            if let Err(e) = store.request_cancel(&tenant, &run_id).await {
                debug!(run_id, error = %e, "recording the cancel request failed");
            }
        })
        .await;
    }))
}

/// Runs `work` in a task of its own and waits for it: when the caller is
/// aborted (a helper task stopped with its run), `work` still runs to its
/// end. Store calls made from abortable tasks go through it, because a
/// database call dropped midway may leave a transaction open.
fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> JoinHandle<T> {
    tokio::spawn(tracing::Instrument::in_current_span(work))
}

fn spawn_stop_watcher(
    hooks: &RunHooks,
    stop: &CancellationToken,
    abort: &CancellationToken,
    lease_lost: &CancellationToken,
) -> JoinHandle<()> {
    let (cancel, drain, hard, lost) = (
        hooks.cancel.clone(),
        hooks.drain.clone(),
        hooks.abort.clone(),
        lease_lost.clone(),
    );
    let (stop, abort) = (stop.clone(), abort.clone());
    tokio::spawn(tracing::Instrument::in_current_span(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = hard.cancelled() => {}
            _ = lost.cancelled() => {}
            _ = drain.cancelled() => {
                stop.cancel();
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = hard.cancelled() => {}
                    _ = lost.cancelled() => {}
                }
            }
        }
        stop.cancel();
        abort.cancel();
    }))
}

/// Renews the lease every third of its length: the run's lease and the
/// chunks the claim holds (a lead), or only the chunks (a helper). Stops
/// the run (`lease_lost`) when the store says another claim holds it (for a
/// helper: the run is no longer running), or when no renewal passed for a
/// whole lease (a database outage, a renewal stuck behind a lock): from
/// then on another process may take the run or its chunks, so this
/// execution stops and leaves them resumable instead of racing the new one.
fn spawn_heartbeat(
    store: Arc<dyn Store>,
    run_id: String,
    (claim, role): (Claim, Role),
    lease: Duration,
    cancel: CancellationToken,
    lease_lost: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(tracing::Instrument::in_current_span(async move {
        let period = (lease / 3).max(Duration::from_millis(50));
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        // The claim itself set the lease.
        let mut renewed_at = Instant::now();
        loop {
            tick.tick().await;
            let lapses_at = renewed_at + lease;
            // The database counts the new lease from when it receives the
            // renewal: counted from before sending it, this side never
            // believes it holds a lease the database has let lapse.
            let sent_at = Instant::now();
            let renewing = {
                let (store, run_id, claim) = (store.clone(), run_id.clone(), claim.clone());
                detached(async move {
                    if role == Role::Lead {
                        store.renew_lease(&run_id, &claim, lease).await?;
                    }
                    store.renew_chunks(&run_id, &claim, lease).await
                })
            };
            let renewal = tokio::time::timeout_at(lapses_at, async {
                renewing.await.unwrap_or_else(|e| {
                    Err(StoreError::Corrupt(format!(
                        "lease renewal task failed: {e}"
                    )))
                })
            });
            match renewal.await {
                Ok(Ok(control)) => {
                    renewed_at = sent_at;
                    if control.cancel_requested && !cancel.is_cancelled() {
                        info!(run_id, "cancel requested");
                        cancel.cancel();
                    }
                }
                Ok(Err(StoreError::LeaseLost)) => {
                    warn!(run_id, "lease lost to another claim; stopping");
                    lease_lost.cancel();
                    return;
                }
                Ok(Err(e)) if Instant::now() < lapses_at => {
                    warn!(run_id, error = %e, "lease renewal failed")
                }
                Ok(Err(_)) | Err(_) => {
                    warn!(
                        run_id,
                        ?lease,
                        "lease not renewed for a whole lease; stopping, the run stays resumable"
                    );
                    lease_lost.cancel();
                    return;
                }
            }
        }
    }))
}
