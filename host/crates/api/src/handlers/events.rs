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
//! one. The stream polls the store (results by sequence number, then the
//! run row), so it works the same whichever process executes the run.

use std::convert::Infallible;

use assay_store::{Run, RunStatus};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery, TenantId};
use crate::handlers::runs::run_of;
use crate::state::AppState;

/// Results read from the store per query.
const BATCH: i64 = 256;

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
    let (tx, rx) = mpsc::channel(64);
    let keep_alive = s.options().sse_keep_alive;
    tokio::spawn(pump(s, tenant.0, run, after.max(0), tx));
    Ok(Sse::new(ReceiverStream::new(rx).map(Ok)).keep_alive(KeepAlive::new().interval(keep_alive)))
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

/// Feeds `tx` until the run is finished, the client goes away or the
/// server shuts down.
async fn pump(s: AppState, tenant: String, run: Run, mut after: i64, tx: mpsc::Sender<Event>) {
    let run_id = run.id.clone();
    let mut seen = progress(&run);
    if tx.send(run_event("run", &run)).await.is_err() {
        return;
    }
    let poll = s.options().sse_poll_interval;
    let shutdown = s.shutdown_token().clone();
    loop {
        // The run row first: once it is finished, every result is stored,
        // so draining the results afterwards sends all of them.
        let run = match s.store().get_run(&tenant, &run_id).await {
            Ok(run) => run,
            Err(e) => {
                let _ = tx.send(error_event(e.into())).await;
                return;
            }
        };
        loop {
            let batch = match s
                .store()
                .results_after_seq(&tenant, &run_id, after, BATCH)
                .await
            {
                Ok(batch) => batch,
                Err(e) => {
                    let _ = tx.send(error_event(e.into())).await;
                    return;
                }
            };
            let full = batch.len() as i64 >= BATCH;
            for (seq, result) in batch {
                let event = match Event::default()
                    .event("result")
                    .id(seq.to_string())
                    .json_data(&result)
                {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(run_id, seq, error = %e, "result does not serialize");
                        continue;
                    }
                };
                if tx.send(event).await.is_err() {
                    return;
                }
                after = seq;
            }
            if !full {
                break;
            }
        }
        if run.status.is_terminal() {
            let _ = tx.send(run_event("end", &run)).await;
            return;
        }
        let now = progress(&run);
        if now != seen {
            seen = now;
            if tx.send(run_event("run", &run)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = tx.closed() => return,
            _ = shutdown.cancelled() => return,
        }
    }
}

fn progress(run: &Run) -> (RunStatus, i64, i64, i64) {
    (
        run.status,
        run.succeeded_count,
        run.failed_count,
        run.skipped_count,
    )
}
