//! A run's in-flight limit that finds an upstream's capacity: additive
//! increase, multiplicative decrease (AIMD), in the spirit of TCP's
//! congestion control.
//!
//! Providers rate-limit. A run with `maxConcurrency` 256 against a service
//! that accepts 32 requests at once would otherwise spend most of its calls
//! on 429s and backoff. Instead, each item reports how its target call went:
//!
//! * **throttled** (the target failed transiently: a 429, a 503, a timeout,
//!   which is what the contract's `transient` error means): the limit is
//!   halved, once per window: the attempts that were already in flight when
//!   it was cut saw the old limit, and their throttles do not cut again. The
//!   item then gives its place back and queues for a new one before it
//!   retries, so the limit bounds attempts, not just items;
//! * **ok**: the limit grows by `1 / limit`, so by about one per window of
//!   `limit` successes;
//! * anything else leaves the limit alone.
//!
//! The limit starts at the run's `maxConcurrency` (a user who asked for 256
//! against a service that takes them gets 256 at once) and never exceeds
//! it, nor goes below one.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tracing::debug;

/// How one item's target call went, for the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallSignal {
    /// Succeeded.
    Ok,
    /// Failed transiently at least once (rate limited, unavailable, timed
    /// out): the upstream is at capacity.
    Throttled,
    /// Anything else (failed for its own reasons, cancelled).
    Neutral,
}

/// An adaptive in-flight limit. Share it as `Arc<AdaptiveLimit>`.
pub struct AdaptiveLimit {
    max: usize,
    state: Mutex<State>,
    freed: Notify,
}

struct State {
    limit: f64,
    in_flight: usize,
    /// Bumped at every cut; a permit remembers the window it started in.
    window: u64,
}

/// One item's place under the limit; report how it went with
/// [`AdaptivePermit::finish`] (dropping it counts as neutral).
pub struct AdaptivePermit {
    owner: Arc<AdaptiveLimit>,
    window: u64,
    done: bool,
}

impl AdaptiveLimit {
    /// A limit starting at, and never above, `max` (at least 1).
    pub fn new(max: usize) -> Arc<Self> {
        let max = max.max(1);
        Arc::new(Self {
            max,
            state: Mutex::new(State {
                limit: max as f64,
                in_flight: 0,
                window: 0,
            }),
            freed: Notify::new(),
        })
    }

    /// The current limit (whole items).
    pub fn current(&self) -> usize {
        self.lock().allowed()
    }

    /// Items holding a permit now.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// Waits until an item may start under the current limit.
    pub async fn acquire(self: &Arc<Self>) -> AdaptivePermit {
        loop {
            let notified = self.freed.notified();
            {
                let mut state = self.lock();
                if state.in_flight < state.allowed() {
                    state.in_flight += 1;
                    return AdaptivePermit {
                        owner: self.clone(),
                        window: state.window,
                        done: false,
                    };
                }
            }
            notified.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(&self, window: u64, signal: CallSignal) {
        let mut state = self.lock();
        state.in_flight -= 1;
        match signal {
            CallSignal::Throttled if window == state.window => {
                let before = state.allowed();
                state.limit = (state.limit / 2.0).max(1.0);
                state.window += 1;
                debug!(
                    before,
                    after = state.allowed(),
                    "upstream throttled: in-flight limit halved"
                );
            }
            CallSignal::Ok => {
                state.limit = (state.limit + 1.0 / state.limit).min(self.max as f64);
            }
            CallSignal::Throttled | CallSignal::Neutral => {}
        }
        let room = state.allowed().saturating_sub(state.in_flight);
        drop(state);
        for _ in 0..room {
            self.freed.notify_one();
        }
    }
}

impl State {
    fn allowed(&self) -> usize {
        (self.limit.floor() as usize).max(1)
    }
}

impl AdaptivePermit {
    /// Releases the permit, telling the limit how the item's call went.
    pub fn finish(mut self, signal: CallSignal) {
        self.done = true;
        self.owner.release(self.window, signal);
    }

    /// Reports a throttled attempt and gives the place back; returns the
    /// limit, to [`AdaptiveLimit::acquire`] a new place before retrying.
    pub fn throttled(self) -> Arc<AdaptiveLimit> {
        let owner = self.owner.clone();
        self.finish(CallSignal::Throttled);
        owner
    }
}

impl Drop for AdaptivePermit {
    fn drop(&mut self) {
        if !self.done {
            self.owner.release(self.window, CallSignal::Neutral);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn starts_at_the_maximum_and_blocks_above_it() {
        let limit = AdaptiveLimit::new(3);
        let permits: Vec<_> = futures::future::join_all((0..3).map(|_| limit.acquire())).await;
        assert_eq!(limit.in_flight(), 3);
        let waiting = tokio::time::timeout(Duration::from_millis(50), limit.acquire()).await;
        assert!(waiting.is_err(), "a fourth item waits");
        drop(permits);
        assert_eq!(limit.in_flight(), 0);
        let _p = limit.acquire().await;
    }

    #[tokio::test]
    async fn a_throttle_halves_once_per_window() {
        let limit = AdaptiveLimit::new(64);
        let permits: Vec<_> = futures::future::join_all((0..64).map(|_| limit.acquire())).await;
        // All 64 started in the same window: the first throttle cuts, the
        // rest of that window's throttles do not cut again.
        for p in permits {
            p.finish(CallSignal::Throttled);
        }
        assert_eq!(limit.current(), 32);
        // A throttle in the new window cuts again.
        limit.acquire().await.finish(CallSignal::Throttled);
        assert_eq!(limit.current(), 16);
    }

    #[tokio::test]
    async fn successes_grow_it_back_by_about_one_per_window_up_to_the_maximum() {
        let limit = AdaptiveLimit::new(10);
        limit.acquire().await.finish(CallSignal::Throttled);
        assert_eq!(limit.current(), 5);
        for _ in 0..6 {
            limit.acquire().await.finish(CallSignal::Ok);
        }
        assert_eq!(limit.current(), 6, "a window's worth of successes adds one");
        for _ in 0..100 {
            limit.acquire().await.finish(CallSignal::Ok);
        }
        assert_eq!(limit.current(), 10, "never above the maximum");
    }

    #[tokio::test]
    async fn a_requeued_item_waits_for_room_under_the_cut_limit() {
        let limit = AdaptiveLimit::new(2);
        let a = limit.acquire().await;
        let b = limit.acquire().await;
        // `a` is throttled: the limit drops to 1 and `b` still holds it, so
        // `a`'s retry waits for `b`.
        let owner = a.throttled();
        let retry = tokio::spawn(async move { owner.acquire().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!retry.is_finished());
        assert_eq!(limit.current(), 1);
        b.finish(CallSignal::Ok);
        let again = tokio::time::timeout(Duration::from_secs(1), retry)
            .await
            .expect("admitted once b is done")
            .unwrap();
        assert_eq!(limit.in_flight(), 1);
        again.finish(CallSignal::Ok);
    }

    #[tokio::test]
    async fn never_below_one_and_neutral_changes_nothing() {
        let limit = AdaptiveLimit::new(4);
        for _ in 0..10 {
            limit.acquire().await.finish(CallSignal::Throttled);
        }
        assert_eq!(limit.current(), 1);
        limit.acquire().await.finish(CallSignal::Neutral);
        drop(limit.acquire().await);
        assert_eq!(limit.current(), 1);
    }

    #[tokio::test]
    async fn a_cut_holds_new_items_until_enough_finish() {
        let limit = AdaptiveLimit::new(4);
        let mut permits: Vec<_> = futures::future::join_all((0..4).map(|_| limit.acquire())).await;
        permits.pop().unwrap().finish(CallSignal::Throttled);
        assert_eq!(limit.current(), 2);
        // Three still in flight, the limit is two: a new item waits until
        // two of them finish.
        let next = tokio::spawn({
            let limit = limit.clone();
            async move { limit.acquire().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!next.is_finished());
        permits.pop().unwrap().finish(CallSignal::Neutral);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!next.is_finished(), "two in flight, limit two");
        permits.pop().unwrap().finish(CallSignal::Neutral);
        let _p = tokio::time::timeout(Duration::from_secs(1), next)
            .await
            .expect("admitted")
            .unwrap();
    }
}
