//! The background scheduler: takes pending runs (and runs whose owner died)
//! from storage and executes them on this process's bounded pool.
//!
//! Runs wait as `pending` until the scheduler has room: `max_active_runs`
//! runs execute in this process at once, and the executor caps items in
//! flight across all of them, shared fairly between tenants
//! ([`crate::slots::ItemSlots`]). Which run comes next is fair too: the
//! store hands out the oldest pending run of the tenant with the fewest runs
//! running per unit of weight, so runs of one tenant keep their order.
//!
//! When all `max_active_runs` are busy, a tenant that has no run running
//! anywhere may still start one here (up to `max_active_runs` such extra
//! runs): a tenant with new work gets its share of the item slots at once
//! instead of waiting for another tenant's runs to finish. See
//! `docs/fair-share.md`.
//!
//! Several processes sharing a PostgreSQL database each run a scheduler;
//! the store's leases make sure one process holds a run (and finalizes it),
//! and the claim order counts the runs of every process. A scheduler with
//! room and no run to take helps execute a run another process holds: it
//! claims chunks of the run's items ([`Executor::help`]) until none is left
//! to hand out, so every process with free slots works on the same run. A scheduler never
//! claims a run it executes already (its lease may lapse while its plugins
//! load, say), and it renews a run's lease while the run's plugins load;
//! each claim carries its own number, so even a second claim of one run by
//! this process would fence the first one out (see `docs/runs.md`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assay_store::{Claim, Run, Store, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::catalog::Catalog;
use crate::error::RunError;
use crate::executor::{Executor, RunHooks};
use crate::trigger::plan_run;

/// How often the scheduler looks for work when nobody wakes it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How long a scheduler passes over a run it failed to help.
const HELP_BACKOFF: Duration = Duration::from_secs(30);

/// How long a scheduler passes over a run it just helped (so that a helper
/// that left, or could not go on, does not join again in a tight loop; a
/// chunk lapsing later is taken by the run's lease holder meanwhile).
const HELP_PAUSE: Duration = Duration::from_secs(2);

/// Takeovers after which a run is failed rather than resumed again (see
/// [`SchedulerConfig::max_takeovers`]).
pub const DEFAULT_MAX_TAKEOVERS: i64 = 3;

/// How the scheduler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Runs this process executes at once.
    pub max_active_runs: usize,
    /// A run taken over more often than this after its process stopped
    /// without finishing it (a crash, a kill, an out-of-memory) is failed
    /// instead of resumed: it may be what kills the process, and resuming
    /// it on every restart would crash-loop the server.
    pub max_takeovers: i64,
}

/// Handle to the background scheduler. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    executor: Executor,
    catalog: Arc<Catalog>,
    wake: Notify,
    max_active_runs: usize,
    max_takeovers: i64,
    active: Mutex<HashMap<String, RunHooks>>,
    /// Runs this process failed to help (their plugins would not load
    /// here, say) or just helped, and until when it passes over them.
    unhelpable: Mutex<HashMap<String, Instant>>,
    /// The runs in `active` this process only helps execute: they do not
    /// count against `max_active_runs` when claiming a run.
    helping: Mutex<std::collections::HashSet<String>>,
    drain: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
}

impl Scheduler {
    /// Starts the scheduler loop on the current tokio runtime, with the
    /// default takeover limit.
    pub fn start(executor: Executor, catalog: Arc<Catalog>, max_active_runs: usize) -> Self {
        let config = SchedulerConfig {
            max_active_runs,
            max_takeovers: DEFAULT_MAX_TAKEOVERS,
        };
        Self::start_with(executor, catalog, config)
    }

    /// Starts the scheduler loop on the current tokio runtime.
    pub fn start_with(executor: Executor, catalog: Arc<Catalog>, config: SchedulerConfig) -> Self {
        let inner = Arc::new(Inner {
            executor,
            catalog,
            wake: Notify::new(),
            max_active_runs: config.max_active_runs.max(1),
            max_takeovers: config.max_takeovers.max(0),
            active: Mutex::new(HashMap::new()),
            unhelpable: Mutex::new(HashMap::new()),
            helping: Mutex::new(std::collections::HashSet::new()),
            drain: CancellationToken::new(),
            abort: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        let looper = inner.clone();
        inner.tracker.spawn(async move { looper.run_loop().await });
        Self { inner }
    }

    /// Tells the scheduler there may be new work (a run was just created).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The executor (owner id, store).
    pub fn executor(&self) -> &Executor {
        &self.inner.executor
    }

    /// The plugin catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.inner.catalog
    }

    /// Runs executing in this process now.
    pub fn active_runs(&self) -> usize {
        self.inner.active.lock().expect("scheduler lock").len()
    }

    /// Cancels a run: records the request (so whichever process executes it
    /// sees it on its next heartbeat) and, if it runs here, cancels it at
    /// once. A pending run becomes `cancelled` immediately.
    pub async fn cancel(&self, tenant: &str, run_id: &str) -> Result<Run, RunError> {
        let run = self
            .inner
            .executor
            .store()
            .request_cancel(tenant, run_id)
            .await?;
        if let Some(hooks) = self
            .inner
            .active
            .lock()
            .expect("scheduler lock")
            .get(run_id)
        {
            hooks.cancel.cancel();
        }
        Ok(run)
    }

    /// Graceful shutdown: start no new runs or items, give in-flight items
    /// `grace` to finish, then cancel the rest. Unfinished runs keep their
    /// state and are resumed by the next process that starts.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        inner.drain.cancel();
        for hooks in inner.active.lock().expect("scheduler lock").values() {
            hooks.drain.cancel();
        }
        inner.tracker.close();
        if tokio::time::timeout(grace, inner.tracker.wait())
            .await
            .is_err()
        {
            warn!(?grace, "grace period over; cancelling in-flight items");
            inner.abort.cancel();
            for hooks in inner.active.lock().expect("scheduler lock").values() {
                hooks.abort.cancel();
            }
            inner.tracker.wait().await;
        }
        info!("scheduler stopped");
    }
}

impl Inner {
    async fn run_loop(self: Arc<Self>) {
        loop {
            self.claim_available().await;
            tokio::select! {
                _ = self.drain.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }

    async fn claim_available(self: &Arc<Self>) {
        let store = self.executor.store().clone();
        let (owner, lease) = (self.executor.owner(), self.executor.lease());
        while !self.drain.is_cancelled() {
            // The runs executing here are never claimed again, even when
            // their lease lapsed: that would start a second execution.
            let executing: Vec<String> = self
                .active
                .lock()
                .expect("scheduler lock")
                .keys()
                .cloned()
                .collect();
            let active = executing.len();
            // Runs this process leads; the ones it helps do not hold back
            // a claim (a helper leaves once its run has nothing to hand out).
            let helping = self.helping.lock().expect("scheduler lock").len();
            let leading = active.saturating_sub(helping);
            let claimed = if leading < self.max_active_runs {
                store.claim_next_run(owner, lease, &executing).await
            } else if leading < self.max_active_runs * 2 {
                store
                    .claim_next_run_of_idle_tenant(owner, lease, &executing)
                    .await
            } else {
                return;
            };
            match claimed {
                Ok(Some((tenant, run))) => self.spawn_run(tenant, run),
                Ok(None) if active < self.max_active_runs => {
                    // No run to take: help execute one another process
                    // holds, if one has work nobody holds.
                    let mut passed_over = executing;
                    passed_over.extend(self.unhelpable_runs());
                    match store.run_to_help(owner, &passed_over).await {
                        Ok(Some((tenant, run))) => self.spawn_helper(tenant, run),
                        Ok(None) => return,
                        Err(e) => {
                            warn!(error = %e, "looking for a run to help failed");
                            return;
                        }
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    warn!(error = %e, "claiming a run failed");
                    return;
                }
            }
        }
    }

    /// The runs this process failed to help recently (see
    /// [`HELP_BACKOFF`]); expired entries are dropped.
    fn unhelpable_runs(&self) -> Vec<String> {
        let mut unhelpable = self.unhelpable.lock().expect("scheduler lock");
        let now = Instant::now();
        unhelpable.retain(|_, until| *until > now);
        unhelpable.keys().cloned().collect()
    }

    /// The hooks of a run this process starts executing (leading or
    /// helping), recorded in `active` so that cancel and shutdown reach it.
    fn track(&self, run_id: &str) -> RunHooks {
        let hooks = RunHooks {
            retain_results: Some(false),
            drain: self.drain.child_token(),
            abort: self.abort.child_token(),
            ..Default::default()
        };
        self.active
            .lock()
            .expect("scheduler lock")
            .insert(run_id.to_string(), hooks.clone());
        hooks
    }

    /// Helps execute `run`, which another process holds: joins it, loads
    /// its plugins and executes chunks of it until none is left to hand
    /// out. Cancel and shutdown reach it like a run of its own.
    fn spawn_helper(self: &Arc<Self>, tenant: String, run: Run) {
        let hooks = self.track(&run.id);
        self.helping
            .lock()
            .expect("scheduler lock")
            .insert(run.id.clone());
        let this = self.clone();
        self.tracker.spawn(async move {
            let run_id = run.id.clone();
            let executor = &this.executor;
            let outcome = match executor
                .store()
                .join_run(&tenant, &run_id, executor.owner())
                .await
            {
                Ok(claim) => match plan_run(&this.catalog, &tenant, run, true).await {
                    Ok(plan) => executor.help(plan, claim, hooks).await.map(|_| ()),
                    Err(e) => Err(e),
                },
                Err(e) => Err(RunError::from(e)),
            };
            // A helper leaves when the run has nothing left to hand out, or
            // when it could not go on (items unreadable here, say): either
            // way it does not join the run again at once. After a failure
            // (the run's lease holder loads the same plugins and fails the
            // run if they cannot load) it stays away longer.
            let pause = match outcome {
                Ok(()) => HELP_PAUSE,
                Err(e) => {
                    warn!(run_id, error = %e, "helping with the run failed");
                    HELP_BACKOFF
                }
            };
            this.unhelpable
                .lock()
                .expect("scheduler lock")
                .insert(run_id.clone(), Instant::now() + pause);
            this.helping.lock().expect("scheduler lock").remove(&run_id);
            this.active.lock().expect("scheduler lock").remove(&run_id);
            this.wake.notify_one();
        });
    }

    fn spawn_run(self: &Arc<Self>, tenant: String, run: Run) {
        let hooks = self.track(&run.id);
        let this = self.clone();
        self.tracker.spawn(async move {
            let run_id = run.id.clone();
            let claim = Claim::of(this.executor.owner(), &run);
            let planned = match takeovers_exceeded(&run, this.max_takeovers) {
                Some(refusal) => Err(refusal),
                None => {
                    // Loading plugins may take longer than the lease (a
                    // compile, lock contention): keep the lease meanwhile.
                    let store = this.executor.store();
                    let loading = plan_run(&this.catalog, &tenant, run, true);
                    match renewing(store, &run_id, &claim, this.executor.lease(), loading).await {
                        Some(planned) => planned,
                        None => {
                            warn!(run_id, "lease lost while the run's plugins loaded; leaving the run to its new holder");
                            this.active.lock().expect("scheduler lock").remove(&run_id);
                            this.wake.notify_one();
                            return;
                        }
                    }
                }
            };
            let outcome = match planned {
                Ok(plan) => this.executor.execute(plan, hooks).await.map(|_| ()),
                Err(e) => {
                    warn!(run_id, error = %e, "run cannot start");
                    // Loading plugins can be slow, and another process may
                    // have taken the run over meanwhile: fail it in one
                    // statement fenced by this process's lease, so a run
                    // someone else now executes is left alone.
                    match this
                        .executor
                        .store()
                        .finish_run(
                            &run_id,
                            &claim,
                            assay_store::RunStatus::Failed,
                            Some(e.to_string()),
                        )
                        .await
                    {
                        Ok(_) | Err(assay_store::StoreError::LeaseLost) => Ok(()),
                        Err(e) => Err(RunError::from(e)),
                    }
                }
            };
            if let Err(e) = outcome {
                warn!(run_id, error = %e, "run ended with an error");
            }
            this.active.lock().expect("scheduler lock").remove(&run_id);
            this.wake.notify_one();
        });
    }
}

/// Runs `work` while renewing `claim`'s lease every third of `lease`.
/// `None` when the store says another claim took the run meanwhile (the
/// work is dropped). A failed renewal (a database error) is retried on the
/// next tick.
async fn renewing<T>(
    store: &Arc<dyn Store>,
    run_id: &str,
    claim: &Claim,
    lease: Duration,
    work: impl Future<Output = T>,
) -> Option<T> {
    let period = (lease / 3).max(Duration::from_millis(50));
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            _ = tick.tick() => match store.renew_lease(run_id, claim, lease).await {
                Ok(_) => {}
                Err(StoreError::LeaseLost) => return None,
                Err(e) => warn!(run_id, error = %e, "lease renewal failed while loading plugins"),
            },
        }
    }
}

/// The error failing a run that was taken over more than `limit` times.
fn takeovers_exceeded(run: &Run, limit: i64) -> Option<RunError> {
    (run.takeovers > limit).then(|| RunError::TooManyTakeovers {
        takeovers: run.takeovers,
        limit,
    })
}
