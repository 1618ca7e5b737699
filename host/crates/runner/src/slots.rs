//! The process's item slots, shared fairly between tenants and then between
//! each tenant's runs.
//!
//! A process executes a bounded number of items at once across all its
//! runs. A plain FIFO semaphore hands freed slots to whoever asked first,
//! so a tenant with many busy runs keeps almost every slot and a tenant
//! arriving later gets a trickle. [`ItemSlots`] instead hands each freed
//! slot to the waiting tenant that holds the fewest slots for its weight
//! (weighted max-min fairness on slots held), and within that tenant to its
//! waiting run holding the fewest slots (oldest run first on a tie). It is
//! work-conserving: a slot is never left free while any run waits for one,
//! so one tenant alone still gets every slot. See `docs/fair-share.md`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Weight of a tenant whose weight is unknown.
pub const DEFAULT_WEIGHT: u32 = 1;

/// Process-wide item slots. Cheap to clone (shared).
#[derive(Clone)]
pub struct ItemSlots {
    shared: Arc<Shared>,
}

struct Shared {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    free: usize,
    tenants: HashMap<Arc<str>, TenantState>,
    /// Registered runs by id, that is in registration order.
    runs: BTreeMap<u64, RunState>,
    /// Ids of run shares and of waiters, and the grant clock (one counter:
    /// all that matters is that each is unique and increasing).
    clock: u64,
}

struct TenantState {
    weight: u32,
    in_use: usize,
    /// Run shares of this tenant that are registered.
    runs: usize,
    /// Clock of the last slot granted to a waiter of this tenant: on a tie
    /// the tenant served least recently goes first.
    last_grant: u64,
}

struct RunState {
    tenant: Arc<str>,
    in_use: usize,
    waiters: VecDeque<(u64, oneshot::Sender<()>)>,
}

impl ItemSlots {
    /// `capacity` slots (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            shared: Arc::new(Shared {
                capacity,
                state: Mutex::new(State {
                    free: capacity,
                    ..State::default()
                }),
            }),
        }
    }

    /// Total slots.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Slots held now by `tenant`'s items.
    pub fn in_use_by(&self, tenant: &str) -> usize {
        self.shared
            .lock()
            .tenants
            .get(tenant)
            .map_or(0, |t| t.in_use)
    }

    /// Registers one run of `tenant`. The run asks for slots through the
    /// returned share; dropping the share unregisters the run (slots it
    /// still holds stay held until their [`Slot`]s drop). The tenant's
    /// weight is the one given by its most recent registration.
    pub fn share(&self, tenant: &str, weight: u32) -> RunShare {
        let mut state = self.shared.lock();
        let id = state.tick();
        let tenant: Arc<str> = match state.tenants.get_key_value(tenant) {
            Some((name, _)) => name.clone(),
            None => Arc::from(tenant),
        };
        let entry = state.tenants.entry(tenant.clone()).or_insert(TenantState {
            weight: DEFAULT_WEIGHT,
            in_use: 0,
            runs: 0,
            last_grant: 0,
        });
        entry.weight = weight.max(1);
        entry.runs += 1;
        state.runs.insert(
            id,
            RunState {
                tenant,
                in_use: 0,
                waiters: VecDeque::new(),
            },
        );
        RunShare {
            shared: self.shared.clone(),
            id,
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the counters consistent
        // (every update is a single step), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn take(&mut self, run: u64) {
        self.free -= 1;
        let r = self.runs.get_mut(&run).expect("run registered");
        r.in_use += 1;
        let t = self.tenants.get_mut(&r.tenant).expect("tenant registered");
        t.in_use += 1;
    }

    /// Returns a slot held by `run`'s tenant and hands free slots to waiters.
    fn give_back(&mut self, tenant: &Arc<str>, run: u64) {
        self.free += 1;
        if let Some(r) = self.runs.get_mut(&run) {
            r.in_use -= 1;
        }
        if let Some(t) = self.tenants.get_mut(tenant) {
            t.in_use -= 1;
            if t.in_use == 0 && t.runs == 0 {
                self.tenants.remove(tenant);
            }
        }
        self.dispatch();
    }

    /// While a slot is free and someone waits: grant it to the waiting
    /// tenant holding the fewest slots per unit of weight, then to that
    /// tenant's waiting run holding the fewest slots.
    fn dispatch(&mut self) {
        while self.free > 0 {
            let Some(run) = self.next_waiting_run() else {
                return;
            };
            let (_, tx) = self
                .runs
                .get_mut(&run)
                .and_then(|r| r.waiters.pop_front())
                .expect("chosen run has a waiter");
            // A waiter's receiver is alive while it is queued (its drop
            // removes it under this lock first), so the send succeeds.
            if tx.send(()).is_ok() {
                self.take(run);
                let now = self.tick();
                let tenant = &self.runs[&run].tenant;
                if let Some(t) = self.tenants.get_mut(tenant) {
                    t.last_grant = now;
                }
            }
        }
    }

    fn next_waiting_run(&self) -> Option<u64> {
        // (tenant, its state) with the lowest in_use / weight; ties go to the
        // tenant granted least recently.
        let mut best_tenant: Option<(&Arc<str>, &TenantState)> = None;
        for r in self.runs.values().filter(|r| !r.waiters.is_empty()) {
            let t = &self.tenants[&r.tenant];
            let better = match best_tenant {
                None => true,
                Some((name, b)) => {
                    *name != r.tenant && {
                        let lhs = t.in_use as u128 * b.weight as u128;
                        let rhs = b.in_use as u128 * t.weight as u128;
                        lhs < rhs || (lhs == rhs && t.last_grant < b.last_grant)
                    }
                }
            };
            if better {
                best_tenant = Some((&r.tenant, t));
            }
        }
        let (tenant, _) = best_tenant?;
        // Within the tenant: the waiting run holding the fewest slots, the
        // oldest registration on a tie (`min_by_key` keeps the first).
        self.runs
            .iter()
            .filter(|(_, r)| r.tenant == *tenant && !r.waiters.is_empty())
            .min_by_key(|(_, r)| r.in_use)
            .map(|(id, _)| *id)
    }
}

/// One run's claim on the process's item slots.
pub struct RunShare {
    shared: Arc<Shared>,
    id: u64,
}

impl RunShare {
    /// Waits for a slot. Cancel-safe: dropping the future before it
    /// completes gives back a slot it was granted meanwhile.
    pub async fn acquire(&self) -> Slot {
        loop {
            let (waiter, rx) = {
                let mut state = self.shared.lock();
                if state.free > 0 {
                    // A free slot means nobody waits (dispatch leaves no
                    // waiter while a slot is free).
                    state.take(self.id);
                    return self.slot(&state);
                }
                let (tx, rx) = oneshot::channel();
                let waiter = state.tick();
                state
                    .runs
                    .get_mut(&self.id)
                    .expect("share registered")
                    .waiters
                    .push_back((waiter, tx));
                (waiter, rx)
            };
            let mut pending = PendingGrant {
                share: self,
                waiter,
                done: false,
            };
            let granted = rx.await.is_ok();
            pending.done = granted;
            drop(pending);
            if granted {
                let state = self.shared.lock();
                return self.slot(&state);
            }
            // Never happens (a queued waiter leaves the queue only through
            // a grant or its own drop); asking again is the safe answer.
        }
    }

    /// Whether another tenant has a run registered on these slots now, so
    /// that holding a slot long delays someone else's work.
    pub fn other_tenants_present(&self) -> bool {
        let state = self.shared.lock();
        let Some(mine) = state.runs.get(&self.id) else {
            return false;
        };
        state
            .tenants
            .iter()
            .any(|(name, t)| *name != mine.tenant && t.runs > 0)
    }

    fn slot(&self, state: &State) -> Slot {
        Slot {
            shared: self.shared.clone(),
            tenant: state.runs[&self.id].tenant.clone(),
            run: self.id,
        }
    }
}

impl Drop for RunShare {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let Some(run) = state.runs.get(&self.id) else {
            return;
        };
        // Slots may outlive the share: their drop then finds the run gone
        // and only gives back to the tenant and the pool.
        let tenant = run.tenant.clone();
        state.runs.remove(&self.id);
        if let Some(t) = state.tenants.get_mut(&tenant) {
            t.runs -= 1;
            if t.runs == 0 && t.in_use == 0 {
                state.tenants.remove(&tenant);
            }
        }
    }
}

/// Guards a waiting `acquire`: if it is dropped unfinished, withdraws the
/// request, or returns the slot granted in the meantime.
struct PendingGrant<'a> {
    share: &'a RunShare,
    waiter: u64,
    done: bool,
}

impl Drop for PendingGrant<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.share.shared.lock();
        let Some(run) = state.runs.get_mut(&self.share.id) else {
            return;
        };
        if let Some(pos) = run.waiters.iter().position(|(w, _)| *w == self.waiter) {
            run.waiters.remove(pos);
        } else {
            // Granted but never taken: give it back.
            let tenant = run.tenant.clone();
            state.give_back(&tenant, self.share.id);
        }
    }
}

/// One item slot; given back (to the next waiter) when dropped.
pub struct Slot {
    shared: Arc<Shared>,
    tenant: Arc<str>,
    run: u64,
}

impl Slot {
    /// Whether the fair policy would hand this slot straight back to its
    /// own run if it were given back now with the run asking for another:
    /// no other tenant waits while holding as few slots per unit of weight
    /// (ties go to the other tenant), and no other run of the same tenant
    /// waits while holding fewer. A run's feeder asks for one slot at a
    /// time, so items of a run that finish together use this to keep their
    /// slots for the run's next items instead of giving all but one away.
    pub fn fair_to_keep(&self) -> bool {
        let state = self.shared.lock();
        let (Some(run), Some(tenant)) =
            (state.runs.get(&self.run), state.tenants.get(&self.tenant))
        else {
            return false;
        };
        let mine_after = tenant.in_use.saturating_sub(1) as u128;
        let run_after = run.in_use.saturating_sub(1);
        !state.runs.iter().any(|(id, other)| {
            if *id == self.run || other.waiters.is_empty() {
                return false;
            }
            if other.tenant == self.tenant {
                return other.in_use < run_after;
            }
            let u = &state.tenants[&other.tenant];
            u.in_use as u128 * tenant.weight as u128 <= mine_after * u.weight as u128
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.lock().give_back(&self.tenant, self.run);
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;

    use futures::poll;

    use super::*;

    type Acquire<'a> = Pin<Box<dyn Future<Output = Slot> + Send + 'a>>;

    fn waiting(share: &RunShare) -> Acquire<'_> {
        Box::pin(share.acquire())
    }

    /// Polls once. Unconstrained: these tests poll in a loop without ever
    /// yielding, and tokio's cooperative budget would otherwise turn a
    /// granted slot into `Pending` after a hundred-odd polls.
    async fn ready(fut: &mut Acquire<'_>) -> Option<Slot> {
        match poll!(tokio::task::unconstrained(fut.as_mut())) {
            Poll::Ready(slot) => Some(slot),
            Poll::Pending => None,
        }
    }

    async fn take(share: &RunShare, n: usize) -> Vec<Slot> {
        let mut slots = Vec::new();
        for _ in 0..n {
            slots.push(waiting(share).await);
        }
        slots
    }

    #[tokio::test]
    async fn one_run_alone_gets_every_slot() {
        let slots = ItemSlots::new(4);
        let a = slots.share("a", 1);
        let held = take(&a, 4).await;
        assert_eq!(slots.in_use_by("a"), 4);
        let mut fifth = waiting(&a);
        assert!(ready(&mut fifth).await.is_none(), "only four slots exist");
        drop(held);
        assert!(ready(&mut fifth).await.is_some());
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_tenant_holding_fewer_not_to_the_first_waiter() {
        let slots = ItemSlots::new(4);
        let a = slots.share("a", 1);
        let b = slots.share("b", 1);
        let mut held_a = take(&a, 4).await;
        // A asks first, B second: a FIFO semaphore would serve A.
        let mut a_next = waiting(&a);
        assert!(ready(&mut a_next).await.is_none());
        let mut b_next = waiting(&b);
        assert!(ready(&mut b_next).await.is_none());

        held_a.pop();
        let b1 = ready(&mut b_next).await.expect("B holds none: B is served");
        assert!(ready(&mut a_next).await.is_none());

        // A 3, B 1: B, asking again, gets the next one too.
        let mut b_again = waiting(&b);
        assert!(ready(&mut b_again).await.is_none(), "nothing free");
        held_a.pop();
        let b2 = ready(&mut b_again).await.expect("B still holds fewer");
        assert!(ready(&mut a_next).await.is_none());
        assert_eq!((slots.in_use_by("a"), slots.in_use_by("b")), (2, 2));

        // Even: a slot B frees goes back to A, who is waiting.
        drop(b1);
        let a3 = ready(&mut a_next)
            .await
            .expect("A holds more but is the only waiter");
        assert_eq!((slots.in_use_by("a"), slots.in_use_by("b")), (3, 1));
        drop((a3, b2));
    }

    /// Every share always has a request waiting (a new one is made, and
    /// queued, as soon as the last one is granted); each round the oldest
    /// slot is given back. Returns the slots each share holds at the end.
    async fn steady_state(slots: &ItemSlots, shares: &[&RunShare], rounds: usize) -> Vec<usize> {
        let mut held: VecDeque<(usize, Slot)> = VecDeque::new();
        let mut pending: Vec<Acquire<'_>> = shares.iter().map(|s| waiting(s)).collect();
        for _ in 0..rounds {
            if held.len() == slots.capacity() {
                held.pop_front();
            }
            for (i, fut) in pending.iter_mut().enumerate() {
                while let Some(slot) = ready(fut).await {
                    held.push_back((i, slot));
                    *fut = waiting(shares[i]);
                }
            }
        }
        assert_eq!(held.len(), slots.capacity(), "work-conserving");
        (0..shares.len())
            .map(|i| held.iter().filter(|(s, _)| *s == i).count())
            .collect()
    }

    #[tokio::test]
    async fn weights_divide_the_slots_in_proportion() {
        let slots = ItemSlots::new(8);
        let a = slots.share("a", 3);
        let b = slots.share("b", 1);
        assert_eq!(steady_state(&slots, &[&a, &b], 200).await, vec![6, 2]);
    }

    #[tokio::test]
    async fn a_tenant_with_more_runs_gets_no_more_slots_and_its_runs_split_its_share() {
        let slots = ItemSlots::new(8);
        let a1 = slots.share("a", 1);
        let a2 = slots.share("a", 1);
        let a3 = slots.share("a", 1);
        let b = slots.share("b", 1);
        let held = steady_state(&slots, &[&a1, &a2, &a3, &b], 400).await;
        assert_eq!(held[3], 4, "B gets half: {held:?}");
        assert_eq!(held[..3].iter().sum::<usize>(), 4, "{held:?}");
        assert!(
            held[..3].iter().all(|n| (1..=2).contains(n)),
            "A's four slots are spread over its three runs: {held:?}"
        );
    }

    #[tokio::test]
    async fn an_abandoned_request_leaks_no_slot() {
        let slots = ItemSlots::new(1);
        let a = slots.share("a", 1);
        let b = slots.share("b", 1);
        let held = waiting(&a).await;

        // Withdrawn while queued.
        let mut gone = waiting(&b);
        assert!(ready(&mut gone).await.is_none());
        drop(gone);

        // Granted, but dropped before it was polled again.
        let mut granted_unpolled = waiting(&b);
        assert!(ready(&mut granted_unpolled).await.is_none());
        drop(held);
        assert_eq!(slots.in_use_by("b"), 1, "granted on release");
        drop(granted_unpolled);
        assert_eq!(slots.in_use_by("b"), 0);

        // The one slot is free again.
        let again = waiting(&a).await;
        drop(again);
        drop((a, b));
        assert!(slots.shared.lock().tenants.is_empty());
        assert_eq!(slots.shared.lock().free, 1);
    }

    #[tokio::test]
    async fn slots_outliving_their_run_share_are_still_given_back() {
        let slots = ItemSlots::new(2);
        let a = slots.share("a", 1);
        let held = take(&a, 2).await;
        drop(a);
        assert_eq!(slots.in_use_by("a"), 2);
        drop(held);
        assert_eq!(slots.in_use_by("a"), 0);
        assert_eq!(slots.shared.lock().free, 2);
    }
    #[tokio::test]
    async fn a_run_keeps_its_slot_unless_someone_with_fewer_waits() {
        let slots = ItemSlots::new(6);
        let a = slots.share("a", 1);
        let b = slots.share("b", 1);
        let held_a = take(&a, 4).await;
        let held_b = take(&b, 2).await;
        // Nobody waits: every run may keep what it holds.
        assert!(held_a[0].fair_to_keep());
        assert!(held_b[0].fair_to_keep());

        // B (2 held) waits: A (4 held, 3 after giving one back) must give
        // its slot back, the policy would hand it to B.
        let mut b_next = waiting(&b);
        assert!(ready(&mut b_next).await.is_none());
        assert!(!held_a[0].fair_to_keep());
        // A waits instead of B: B's item (1 held after) keeps its slot.
        drop(b_next);
        let mut a_next = waiting(&a);
        assert!(ready(&mut a_next).await.is_none());
        assert!(held_b[0].fair_to_keep());

        drop((held_a, held_b));
    }

    #[tokio::test]
    async fn on_a_tie_the_slot_goes_to_the_waiting_tenant() {
        let slots = ItemSlots::new(5);
        let a = slots.share("a", 1);
        let b = slots.share("b", 1);
        let held_a = take(&a, 3).await;
        let held_b = take(&b, 2).await;
        let mut b_next = waiting(&b);
        assert!(ready(&mut b_next).await.is_none());
        assert!(
            !held_a[0].fair_to_keep(),
            "A 2 after giving back, B waits with 2"
        );
        // Weights count: with weight 2, A may hold twice B's slots.
        let heavy = slots.share("a", 2);
        assert!(
            held_a[0].fair_to_keep(),
            "A 2 of weight 2 against B 2 of weight 1"
        );
        drop((b_next, held_a, held_b, heavy));
    }

    #[tokio::test]
    async fn within_a_tenant_a_slot_goes_to_the_run_holding_fewer() {
        let slots = ItemSlots::new(4);
        let a1 = slots.share("a", 1);
        let a2 = slots.share("a", 1);
        let held1 = take(&a1, 3).await;
        let held2 = take(&a2, 1).await;
        let mut a2_next = waiting(&a2);
        assert!(ready(&mut a2_next).await.is_none());
        assert!(
            !held1[0].fair_to_keep(),
            "a2 holds 1, a1 2 after: a2 is served"
        );
        drop(a2_next);
        let mut a1_next = waiting(&a1);
        assert!(ready(&mut a1_next).await.is_none());
        assert!(held2[0].fair_to_keep(), "a1 holds 3: a2 keeps its slot");
        drop((a1_next, held1, held2));
    }

    #[tokio::test]
    async fn a_slot_of_a_run_that_is_gone_is_not_kept() {
        let slots = ItemSlots::new(2);
        let a = slots.share("a", 1);
        let held = take(&a, 1).await;
        drop(a);
        assert!(!held[0].fair_to_keep());
    }

    #[tokio::test]
    async fn a_share_knows_whether_another_tenant_has_runs_here() {
        let slots = ItemSlots::new(2);
        let a1 = slots.share("a", 1);
        let a2 = slots.share("a", 1);
        assert!(
            !a1.other_tenants_present(),
            "a second run of the same tenant"
        );
        let b = slots.share("b", 1);
        assert!(a1.other_tenants_present());
        assert!(b.other_tenants_present());
        drop(b);
        assert!(!a2.other_tenants_present());
    }
}
