//! The chunks of a run this execution holds, and when each is done.
//!
//! A chunk is done once every item in it has its result stored (or refused
//! by the store for good, counted as a persistence failure): the feed and
//! each item task started for the chunk hold a [`ChunkPart`], and the last
//! part to finish marks the chunk done in storage. A part that ends without
//! its result (the run stopping: cancel, shutdown, lost lease, a database
//! outage outlasting the lease, the execution dropped) leaves the chunk
//! unfinished, for the next claim to run its missing items. A panicking
//! item counts as settled: it is skipped, as in a run of one process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use std::time::Duration;

use assay_store::{ChunkDone, Claim, Store, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, warn};

use super::STORAGE_RETRY_DELAY;
use crate::retry::backoff;

/// The longest wait between two attempts to mark a chunk done while the
/// database fails.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(2);

/// The chunks of one execution of a run.
pub(super) struct ChunkBook {
    store: Arc<dyn Store>,
    run_id: String,
    claim: Claim,
    /// Wakes a lead waiting for its chunks to be done.
    done: Notify,
    /// The run stops: storage retries end.
    give_up: CancellationToken,
    /// Marking a chunk done said every chunk of the run is done.
    all_done: AtomicBool,
}

impl ChunkBook {
    pub(super) fn new(
        store: Arc<dyn Store>,
        run_id: String,
        claim: Claim,
        give_up: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            run_id,
            claim,
            done: Notify::new(),
            give_up,
            all_done: AtomicBool::new(false),
        })
    }

    /// Starts tracking the chunk at `first`: the returned part is the
    /// feed's own, finished once every item of the chunk has started.
    pub(super) fn open(self: &Arc<Self>, first: i64) -> ChunkPart {
        ChunkPart {
            track: Some(Arc::new(ChunkTrack {
                book: self.clone(),
                first,
                parts: AtomicUsize::new(1),
                complete: AtomicBool::new(true),
            })),
        }
    }

    /// Resolves when one of this execution's chunks is done (or given up).
    pub(super) async fn chunk_done(&self) {
        self.done.notified().await
    }

    /// Whether marking one of this execution's chunks done said the whole
    /// run is done: the claim that would say so is not needed.
    pub(super) fn run_done(&self) -> bool {
        self.all_done.load(Ordering::Acquire)
    }
}

struct ChunkTrack {
    book: Arc<ChunkBook>,
    first: i64,
    /// Parts not finished yet (the feed's and one per started item).
    parts: AtomicUsize,
    /// False once a part ended without its item's result settled.
    complete: AtomicBool,
}

impl ChunkTrack {
    /// The last part ended: mark the chunk done if every part settled.
    async fn close(&self) {
        if self.complete.load(Ordering::Acquire) {
            self.mark_done().await;
        }
        self.book.done.notify_one();
    }

    /// Marks the chunk done, retried for as long as the database fails
    /// (like a result write) until the run stops. A chunk left unfinished
    /// is claimed again later; its items all have results, so the next
    /// claim marks it done at once.
    async fn mark_done(&self) {
        let ChunkBook {
            store,
            run_id,
            claim,
            give_up,
            ..
        } = &*self.book;
        let mut attempt = 0u32;
        loop {
            match store.finish_chunk(run_id, claim, self.first).await {
                Ok(ChunkDone::AllDone) => {
                    self.book.all_done.store(true, Ordering::Release);
                    return;
                }
                Ok(ChunkDone::RunOpen) => return,
                Err(StoreError::LeaseLost) => {
                    debug!(
                        run_id,
                        first = self.first,
                        "chunk taken over before it was done"
                    );
                    return;
                }
                Err(e) if !give_up.is_cancelled() => {
                    warn!(run_id, error = %e, attempt, "marking a chunk done failed; retrying");
                    let wait = backoff(STORAGE_RETRY_DELAY, attempt).min(MAX_RETRY_WAIT);
                    tokio::select! {
                        _ = give_up.cancelled() => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                    attempt = attempt.saturating_add(1);
                }
                Err(e) => {
                    warn!(run_id, error = %e, "marking a chunk done failed; it will run again");
                    return;
                }
            }
        }
    }
}

/// One holder's share of a chunk: the feed's, or one started item's.
pub(super) struct ChunkPart {
    track: Option<Arc<ChunkTrack>>,
}

impl ChunkPart {
    /// A part for one more item of the chunk.
    pub(super) fn join(&self) -> ChunkPart {
        let track = self
            .track
            .as_ref()
            .expect("a part joins before it finishes");
        track.parts.fetch_add(1, Ordering::AcqRel);
        ChunkPart {
            track: Some(track.clone()),
        }
    }

    /// Ends this part: `settled` when its item's result is stored (or its
    /// feed started every item). The last part marks the chunk done.
    pub(super) async fn finish(mut self, settled: bool) {
        let Some(track) = self.track.take() else {
            return;
        };
        if !settled {
            track.complete.store(false, Ordering::Release);
        }
        if track.parts.fetch_sub(1, Ordering::AcqRel) == 1 {
            track.close().await;
        }
    }
}

impl Drop for ChunkPart {
    /// A part dropped without [`ChunkPart::finish`]: a panicking item, which
    /// is skipped (it would panic again), or an item task dropped unfinished
    /// (the run's execution itself dropped), which leaves the chunk
    /// unfinished. If it was the last part, the chunk is closed from a task
    /// of its own.
    fn drop(&mut self) {
        let Some(track) = self.track.take() else {
            return;
        };
        if !std::thread::panicking() {
            track.complete.store(false, Ordering::Release);
        }
        if track.parts.fetch_sub(1, Ordering::AcqRel) == 1
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { track.close().await }.in_current_span());
        }
    }
}
