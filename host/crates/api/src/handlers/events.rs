//! `GET /api/datasets/{datasetId}/runs/{runId}/events`: a run's results as
//! Server-Sent Events, as they are written.
//!
//! Events, in order:
//! * `run` — the run row, first, and again whenever its status or counts
//!   change;
//! * `result` — one per stored result, `id` = the result's sequence number,
//!   `data` = the result JSON (with its scores);
//! * `end` — the finished run; the stream then closes.
//!
//! A client that reconnects with `Last-Event-ID: <seq>` (browsers do this
//! by themselves) or `?after=<seq>` gets only the results written after that
//! one. The results come from the store (results by sequence number, then
//! the run row), so it works the same whichever process executes the run;
//! every stream of a run shares one poller ([`crate::event_hub`]).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use assay_store::Run;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::error::{ApiError, ApiResult};
use crate::event_hub::{BATCH, FeedMsg, StreamPermit, progress};
use crate::extract::{ApiPath, ApiQuery, TenantId};
use crate::handlers::runs::run_of;
use crate::state::AppState;

/// Query of the event stream (`after` only).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Send only results after this sequence number (like `Last-Event-ID`).
    pub after: Option<i64>,
}

/// The handler.
pub async fn stream(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, run_id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let after = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request("`Last-Event-ID` must be a result sequence number")
            })?,
        None => q.after.unwrap_or(0),
    };
    let run = run_of(&s, &tenant, &dataset_id, &run_id).await?;
    let limits = &s.options().limits;
    let permit = s.events().open_stream(
        &tenant.0,
        limits.max_event_streams,
        limits.max_event_streams_per_tenant,
    )?;
    let keep_alive = s.options().sse_keep_alive;
    let follower = Follower::new(s, tenant.0, run, after.max(0), permit);
    let events = futures::stream::unfold(follower, |mut f| async move {
        f.next().await.map(|e| (Ok(e), f))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(keep_alive)))
}

fn run_event(name: &'static str, run: &Run) -> Event {
    Event::default()
        .event(name)
        .json_data(run)
        .unwrap_or_else(|_| Event::default().event(name))
}

fn error_event(e: ApiError) -> Event {
    Event::default()
        .event("error")
        .json_data(json!({ "message": e.message, "code": e.code }))
        .unwrap_or_else(|_| Event::default().event("error"))
}

fn result_event(seq: i64, json: &str) -> Event {
    Event::default()
        .event("result")
        .id(seq.to_string())
        .data(json)
}

/// Where a stream is.
enum Phase {
    /// Reading results from the store from its position (at the start,
    /// and after falling behind the broadcast).
    CatchUp,
    /// Following the run's broadcast.
    Live,
    /// The run finished: the last results from the store, then `end`.
    Finish(Box<Run>),
    /// Nothing more to send.
    Done,
}

/// One stream: its position, what it has sent, its receiver.
struct Follower {
    s: AppState,
    tenant: String,
    run_id: String,
    after: i64,
    seen: (assay_store::RunStatus, i64, i64, i64),
    rx: Option<broadcast::Receiver<Arc<FeedMsg>>>,
    queue: VecDeque<Event>,
    phase: Phase,
    _permit: StreamPermit,
}

impl Follower {
    fn new(s: AppState, tenant: String, run: Run, after: i64, permit: StreamPermit) -> Self {
        let mut queue = VecDeque::new();
        queue.push_back(run_event("run", &run));
        let (rx, phase) = if run.status.is_terminal() {
            (None, Phase::Finish(Box::new(run.clone())))
        } else {
            // Subscribed before the first read: nothing written from now
            // on is missed, and what was written before is in the store.
            let rx = s.events().subscribe(&s, &tenant, &run.id, after);
            (Some(rx), Phase::CatchUp)
        };
        Self {
            tenant,
            run_id: run.id.clone(),
            after,
            seen: progress(&run),
            rx,
            queue,
            phase,
            s,
            _permit: permit,
        }
    }

    /// The next event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        let shutdown = self.s.shutdown_token().clone();
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if shutdown.is_cancelled() {
                return None;
            }
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return None,
                Phase::CatchUp => {
                    self.phase = match self.read_store().await {
                        Ok(true) => Phase::CatchUp,
                        Ok(false) => Phase::Live,
                        Err(e) => {
                            self.queue.push_back(error_event(e));
                            Phase::Done
                        }
                    }
                }
                Phase::Finish(run) => match self.read_store().await {
                    Ok(true) => self.phase = Phase::Finish(run),
                    Ok(false) => self.queue.push_back(run_event("end", &run)),
                    Err(e) => self.queue.push_back(error_event(e)),
                },
                Phase::Live => {
                    let rx = self.rx.as_mut()?;
                    let msg = tokio::select! {
                        m = rx.recv() => m,
                        _ = shutdown.cancelled() => return None,
                    };
                    self.phase = Phase::Live;
                    match msg {
                        Ok(msg) => self.take(&msg),
                        Err(RecvError::Lagged(_)) => self.phase = Phase::CatchUp,
                        Err(RecvError::Closed) => self.feed_closed().await,
                    }
                }
            }
        }
    }

    /// Handles one broadcast message.
    fn take(&mut self, msg: &FeedMsg) {
        match msg {
            FeedMsg::Result { seq, json } => {
                if *seq > self.after {
                    self.queue.push_back(result_event(*seq, json));
                    self.after = *seq;
                }
            }
            FeedMsg::Run(run) => {
                let now = progress(run);
                if now != self.seen {
                    self.seen = now;
                    self.queue.push_back(run_event("run", run));
                }
            }
            FeedMsg::End(run) => self.phase = Phase::Finish(Box::new(run.clone())),
            FeedMsg::Error(e) => {
                self.queue.push_back(error_event(e.clone()));
                self.phase = Phase::Done;
            }
        }
    }

    /// The poller stopped without `end` (it found no follower for a
    /// moment, or the server is stopping): follow a new one.
    async fn feed_closed(&mut self) {
        match self.s.store().get_run(&self.tenant, &self.run_id).await {
            Ok(run) if run.status.is_terminal() => self.phase = Phase::Finish(Box::new(run)),
            Ok(_) => {
                let rx = self
                    .s
                    .events()
                    .subscribe(&self.s, &self.tenant, &self.run_id, self.after);
                self.rx = Some(rx);
                self.phase = Phase::CatchUp;
            }
            Err(e) => {
                self.queue.push_back(error_event(e.into()));
                self.phase = Phase::Done;
            }
        }
    }

    /// Queues the next batch of stored results after the stream's
    /// position; true when there may be more.
    async fn read_store(&mut self) -> Result<bool, ApiError> {
        let batch = self
            .s
            .store()
            .results_after_seq(&self.tenant, &self.run_id, self.after, BATCH)
            .await?;
        let full = batch.len() as i64 >= BATCH;
        for (seq, result) in batch {
            match serde_json::to_string(&result) {
                Ok(json) => self.queue.push_back(result_event(seq, &json)),
                Err(e) => {
                    tracing::warn!(run_id = self.run_id, seq, error = %e, "result does not serialize")
                }
            }
            self.after = seq;
        }
        Ok(full)
    }
}
