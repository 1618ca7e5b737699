//! One source per run for its event streams, and the caps on streams.
//!
//! A run followed by any number of streams has one poller: a task that
//! reads the run row and its new results from the store every
//! `sse_poll_interval` and broadcasts them (a `tokio::sync::broadcast`
//! channel of fixed size). Each stream first catches up from the store
//! from its own position (`Last-Event-ID`), then follows the broadcast,
//! skipping what it already sent. A stream whose client reads slowly falls
//! behind the broadcast's window and catches up from the store again, so a
//! slow client costs neither memory nor the other streams anything: nothing
//! is queued per stream beyond what its connection is writing (and a write
//! that makes no progress closes the connection, see [`crate::conn`]).
//! The poller stops when its last stream goes away or the run finishes.
//!
//! Streams are capped process-wide and per tenant ([`StreamPermit`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use assay_store::{Run, RunStatus};
use axum::http::StatusCode;
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::state::AppState;

/// Results read from the store per query.
pub(crate) const BATCH: i64 = 256;

/// Messages a poller's broadcast keeps for streams that lag behind; a
/// stream further behind catches up from the store.
const FEED_CAPACITY: usize = 1024;

/// `Retry-After` (seconds) of a stream refused over a cap.
const STREAMS_RETRY_AFTER: u32 = 5;

/// What a poller broadcasts.
#[derive(Debug)]
pub(crate) enum FeedMsg {
    /// A stored result: its sequence number and JSON.
    Result { seq: i64, json: String },
    /// The run row, when its status or counts changed.
    Run(Run),
    /// The run finished (every result was broadcast before).
    End(Run),
    /// The store failed; the poller stopped.
    Error(ApiError),
}

type Feed = broadcast::Sender<Arc<FeedMsg>>;
type Key = (String, String);

/// The pollers of the runs being followed and the open streams' counts.
#[derive(Default)]
pub struct EventHub {
    feeds: Mutex<HashMap<Key, Feed>>,
    pollers: AtomicUsize,
    streams: Mutex<StreamCounts>,
}

#[derive(Default)]
struct StreamCounts {
    total: usize,
    per_tenant: HashMap<String, usize>,
}

impl EventHub {
    /// Pollers running now (one per run followed by at least one stream).
    pub fn pollers(&self) -> usize {
        self.pollers.load(Ordering::Acquire)
    }

    /// Event streams open now.
    pub fn streams(&self) -> usize {
        self.lock_streams().total
    }

    fn lock_feeds(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Feed>> {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_streams(&self) -> std::sync::MutexGuard<'_, StreamCounts> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more stream of `tenant`: 429 over the tenant's cap,
    /// 503 over the process's (both with `Retry-After`).
    pub(crate) fn open_stream(
        self: &Arc<Self>,
        tenant: &str,
        max_total: usize,
        max_per_tenant: usize,
    ) -> Result<StreamPermit, ApiError> {
        let mut counts = self.lock_streams();
        let of_tenant = counts.per_tenant.get(tenant).copied().unwrap_or(0);
        if of_tenant >= max_per_tenant {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "the tenant has {of_tenant} event streams open, the most allowed; close one or retry later"
                ),
            );
            e.retry_after = Some(STREAMS_RETRY_AFTER);
            return Err(e);
        }
        if counts.total >= max_total {
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                "the server has as many event streams open as it allows; retry later",
            );
            e.retry_after = Some(STREAMS_RETRY_AFTER);
            return Err(e);
        }
        counts.total += 1;
        *counts.per_tenant.entry(tenant.to_string()).or_default() += 1;
        ::metrics::gauge!("assay_event_streams_open").increment(1.0);
        Ok(StreamPermit {
            hub: self.clone(),
            tenant: tenant.to_string(),
        })
    }

    /// A receiver of `run`'s feed, starting its poller if none runs (the
    /// poller starts at `after`).
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        s: &AppState,
        tenant: &str,
        run_id: &str,
        after: i64,
    ) -> broadcast::Receiver<Arc<FeedMsg>> {
        let key = (tenant.to_string(), run_id.to_string());
        let mut feeds = self.lock_feeds();
        if let Some(feed) = feeds.get(&key) {
            return feed.subscribe();
        }
        let (tx, rx) = broadcast::channel(FEED_CAPACITY);
        feeds.insert(key.clone(), tx.clone());
        self.pollers.fetch_add(1, Ordering::AcqRel);
        ::metrics::gauge!("assay_event_pollers").increment(1.0);
        tokio::spawn(poll(s.clone(), self.clone(), key, after, tx));
        rx
    }

    /// Removes the feed of `key` if no stream follows it any more; false
    /// (and the poller goes on) otherwise. Under the lock `subscribe`
    /// takes, so that no stream subscribes to a feed whose poller left.
    fn leave_if_unfollowed(&self, key: &Key, tx: &Feed) -> bool {
        let mut feeds = self.lock_feeds();
        if tx.receiver_count() > 0 {
            return false;
        }
        self.remove(&mut feeds, key, tx);
        true
    }

    fn remove(&self, feeds: &mut HashMap<Key, Feed>, key: &Key, tx: &Feed) {
        if feeds.get(key).is_some_and(|f| f.same_channel(tx)) {
            feeds.remove(key);
        }
    }

    fn poller_stopped(&self, key: &Key, tx: &Feed) {
        let mut feeds = self.lock_feeds();
        self.remove(&mut feeds, key, tx);
        self.pollers.fetch_sub(1, Ordering::AcqRel);
        ::metrics::gauge!("assay_event_pollers").decrement(1.0);
    }
}

/// One open event stream's place under the caps; given back on drop.
pub(crate) struct StreamPermit {
    hub: Arc<EventHub>,
    tenant: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut counts = self.hub.lock_streams();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_tenant.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_tenant.remove(&self.tenant);
            }
        }
        ::metrics::gauge!("assay_event_streams_open").decrement(1.0);
    }
}

/// Whether two runs differ in what a `run` event shows.
pub(crate) fn progress(run: &Run) -> (RunStatus, i64, i64, i64) {
    (
        run.status,
        run.succeeded_count,
        run.failed_count,
        run.skipped_count,
    )
}

/// The poller of one run: broadcasts its new results and progress until
/// the run finishes, no stream follows it, or the server shuts down.
async fn poll(s: AppState, hub: Arc<EventHub>, key: Key, mut after: i64, tx: Feed) {
    let (tenant, run_id) = &key;
    let poll_every = s.options().sse_poll_interval;
    let shutdown = s.shutdown_token().clone();
    let mut seen = None;
    let send = |msg: FeedMsg| {
        let _ = tx.send(Arc::new(msg));
    };
    'feed: loop {
        if hub.leave_if_unfollowed(&key, &tx) {
            break;
        }
        // The run row first: once it is finished, every result is stored,
        // so draining the results afterwards broadcasts all of them.
        let run = match s.store().get_run(tenant, run_id).await {
            Ok(run) => run,
            Err(e) => {
                send(FeedMsg::Error(e.into()));
                break;
            }
        };
        loop {
            let batch = match s
                .store()
                .results_after_seq(tenant, run_id, after, BATCH)
                .await
            {
                Ok(batch) => batch,
                Err(e) => {
                    send(FeedMsg::Error(e.into()));
                    break 'feed;
                }
            };
            let full = batch.len() as i64 >= BATCH;
            for (seq, result) in batch {
                match serde_json::to_string(&result) {
                    Ok(json) => send(FeedMsg::Result { seq, json }),
                    Err(e) => tracing::warn!(run_id, seq, error = %e, "result does not serialize"),
                }
                after = seq;
            }
            if !full {
                break;
            }
        }
        if run.status.is_terminal() {
            send(FeedMsg::End(run));
            break;
        }
        let now = progress(&run);
        if seen != Some(now) {
            seen = Some(now);
            send(FeedMsg::Run(run));
        }
        tokio::select! {
            _ = tokio::time::sleep(poll_every) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    hub.poller_stopped(&key, &tx);
}
