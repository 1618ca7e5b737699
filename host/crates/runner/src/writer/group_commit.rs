//! Group commit: how long a run's writer waits for more results before it
//! writes a batch.
//!
//! A run has a bounded number of results on their way to the writer (its
//! items completing: `maxConcurrency` or 64, whichever is more), and with
//! one write at a time each commit carries those that arrived while the
//! last one was written; on PostgreSQL each commit has a cost of its own
//! (planning the statement, the commit record, the WAL flush). Waiting a
//! little for the results still on their way makes fewer, fuller commits.
//!
//! The wait is bounded twice, so that it never costs more than it saves:
//!
//! * it happens only while fewer results are queued than the run was seen
//!   to have in flight (the most results the writer held at once lately,
//!   queued plus being written; the estimate decays when the run slows
//!   down), so a lone item of a slow run is written at once;
//! * the oldest queued result waits at most as long as the last write took
//!   (and never more than [`MAX_LINGER`]): about one commit.
//!
//! The writer waits only where its sink says commits are costly
//! (`ResultSink::group_commit`: PostgreSQL, not SQLite).
//!
//! See `docs/runs.md` ("Group commit").

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

/// The longest a queued result waits for others to share its commit.
pub const MAX_LINGER: Duration = Duration::from_millis(5);

/// What the writer has seen of its run: how long a write takes, and how many
/// results the run has in flight.
#[derive(Debug, Default)]
pub struct GroupCommit {
    /// How long the last batch write took.
    last_write: Duration,
    /// Estimate of the run's results in flight: the most the writer held at
    /// once (being written plus queued), decaying by an eighth per batch.
    in_flight: usize,
}

/// How many results to gather before writing, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub until: Instant,
    pub results: usize,
}

impl GroupCommit {
    /// Whether to wait for more results before writing `queued` (the oldest
    /// of which was queued at `oldest`) with room for `limit` in the batch:
    /// `None` to write now.
    pub fn wait(&self, queued: usize, oldest: Instant, limit: usize) -> Option<Wait> {
        let results = self.in_flight.min(limit);
        (queued < results && !self.last_write.is_zero()).then(|| Wait {
            until: oldest + self.last_write.min(MAX_LINGER),
            results,
        })
    }

    /// Records a batch write that took `took`, after which the writer held
    /// `held` results (the batch plus those queued meanwhile).
    pub fn written(&mut self, held: usize, took: Duration) {
        self.last_write = took;
        let decayed = self.in_flight - self.in_flight.div_ceil(8);
        self.in_flight = held.max(decayed);
    }
}

/// Receives into `jobs` until it holds `wait.results` or `wait.until`
/// passes (or every sender is gone).
pub async fn gather<T>(rx: &mut mpsc::Receiver<T>, jobs: &mut Vec<T>, wait: Wait) {
    while jobs.len() < wait.results {
        let room = wait.results - jobs.len();
        match tokio::time::timeout_at(wait.until, rx.recv_many(jobs, room)).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn no_wait_before_anything_was_written() {
        let group = GroupCommit::default();
        assert_eq!(group.wait(1, Instant::now(), 64), None);
    }

    #[test]
    fn a_lone_result_is_written_at_once() {
        let mut group = GroupCommit::default();
        for _ in 0..3 {
            group.written(1, 2 * MS);
        }
        assert_eq!(group.wait(1, Instant::now(), 64), None);
    }

    #[test]
    fn waits_for_the_results_in_flight_at_most_one_write() {
        let mut group = GroupCommit::default();
        group.written(16, 2 * MS);
        let oldest = Instant::now();
        assert_eq!(
            group.wait(8, oldest, 64),
            Some(Wait {
                until: oldest + 2 * MS,
                results: 16
            })
        );
        assert_eq!(group.wait(16, oldest, 64), None, "all there: no wait");
        assert_eq!(
            group.wait(4, oldest, 8).map(|w| w.results),
            Some(8),
            "never more than the batch limit"
        );
    }

    #[test]
    fn the_wait_is_capped() {
        let mut group = GroupCommit::default();
        group.written(16, 900 * MS);
        let oldest = Instant::now();
        assert_eq!(
            group.wait(1, oldest, 64).unwrap().until,
            oldest + MAX_LINGER
        );
    }

    #[test]
    fn the_estimate_follows_a_run_that_slows_down() {
        let mut group = GroupCommit::default();
        group.written(16, MS);
        for _ in 0..40 {
            group.written(1, MS);
        }
        assert_eq!(group.wait(1, Instant::now(), 64), None);
    }

    fn wait_until(after: Duration, results: usize) -> Wait {
        Wait {
            until: Instant::now() + after,
            results,
        }
    }

    #[tokio::test]
    async fn gather_returns_once_the_results_are_there() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut jobs = vec![0];
        let sender = tokio::spawn(async move {
            for n in 1..3 {
                tx.send(n).await.unwrap();
                tokio::task::yield_now().await;
            }
            tx
        });
        // The deadline is an hour away: only the third result ends the wait.
        let wait = wait_until(Duration::from_secs(3600), 3);
        tokio::time::timeout(Duration::from_secs(60), gather(&mut rx, &mut jobs, wait))
            .await
            .expect("gather waited past the third result");
        assert_eq!(jobs, vec![0, 1, 2]);
        drop(sender.await.unwrap());
    }

    #[tokio::test]
    async fn gather_stops_at_the_deadline_or_when_senders_are_gone() {
        let (tx, mut rx) = mpsc::channel::<i32>(8);
        let mut jobs = vec![0];
        gather(&mut rx, &mut jobs, wait_until(Duration::from_millis(5), 16)).await;
        assert_eq!(jobs, vec![0], "nothing came before the deadline");
        tx.send(1).await.unwrap();
        drop(tx);
        gather(
            &mut rx,
            &mut jobs,
            wait_until(Duration::from_secs(3600), 16),
        )
        .await;
        assert_eq!(jobs, vec![0, 1], "the channel closed");
    }
}
