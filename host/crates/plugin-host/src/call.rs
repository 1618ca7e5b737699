//! One sandboxed call: take an instance slot, build a fresh store, run the
//! request under the call's deadline, and turn a failure into a
//! [`CallError`] with the guest's logs.

use std::time::Duration;

use crate::bindings::{InfoReply, Pre, Request, Response};
use crate::config::Limits;
use crate::error::{CallError, CallFailure, LoadError};
use crate::host::PluginHost;
use crate::logs::CapturedLogs;
use crate::sandbox::{classify, new_store};

/// Runs one request in a fresh store, under `limits`.
pub(crate) async fn execute(
    host: &PluginHost,
    pre: &Pre,
    request: Request,
    limits: &Limits,
) -> Result<(Response, CapturedLogs), CallFailure> {
    let _slot = host.inner.slots.acquire().await.map_err(|_| CallFailure {
        error: CallError::Host("plugin host is shutting down".into()),
        logs: CapturedLogs::default(),
    })?;
    let mut store = new_store(&host.inner.engine, limits, &host.inner.config);
    let outcome = tokio::time::timeout(limits.timeout, pre.invoke(&mut store, request)).await;
    let logs = store.data().logs();
    match outcome {
        Ok(Ok(response)) => Ok((response, logs)),
        Ok(Err(err)) => {
            let error = classify(&err, store.data(), &logs, limits.timeout);
            tracing::debug!(error = %error, detail = ?err, "plugin call failed");
            Err(CallFailure { error, logs })
        }
        Err(_elapsed) => Err(CallFailure {
            error: CallError::Timeout {
                after: limits.timeout,
            },
            logs,
        }),
    }
}

/// Limits of the `info` call made when loading.
fn info_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// Calls `info` from synchronous code: on a short-lived thread with its own
/// single-threaded runtime, so it works whether or not the caller is inside
/// a tokio runtime.
pub(crate) fn call_info_blocking(host: &PluginHost, pre: &Pre) -> Result<InfoReply, LoadError> {
    let limits = info_limits();
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| LoadError::Engine(format!("cannot start a runtime: {e}")))?;
                runtime
                    .block_on(execute(host, pre, Request::Info, &limits))
                    .map_err(|failure| {
                        LoadError::Instantiate(format!("its `info` call failed: {failure}"))
                    })
            })
            .join()
    });
    let (response, _logs) = match result {
        Ok(r) => r?,
        Err(_) => return Err(LoadError::Engine("the `info` call thread panicked".into())),
    };
    match response {
        Response::Info(info) => Ok(info),
        _ => Err(LoadError::Engine("unexpected response to `info`".into())),
    }
}
