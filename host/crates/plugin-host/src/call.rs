//! One sandboxed call: take an instance slot, build a fresh store, run the
//! request under the call's deadline, and turn a failure into a
//! [`CallError`] with the guest's logs.

use std::time::Duration;

use crate::bindings::{InfoReply, Pre, Request, Response};
use crate::config::Limits;
use crate::error::{CallError, CallFailure, LoadError};
use crate::host::PluginHost;
use crate::logs::CapturedLogs;
use crate::net_access::NetworkAccess;
use crate::net_report::{NetLog, NetworkReport};
use crate::sandbox::{classify, new_store};
use crate::secrets::Secrets;

/// What a call that returned gives back: the guest's response, its logs
/// and its outbound requests (logs and report already redacted).
pub(crate) struct Returned {
    pub(crate) response: Response,
    pub(crate) logs: CapturedLogs,
    pub(crate) network: NetworkReport,
}

/// Runs one request in a fresh store, under `limits`, with the network
/// `access` grants.
///
/// The store (and with it every in-flight request and connection) is
/// dropped when this returns or its future is dropped.
pub(crate) async fn execute(
    host: &PluginHost,
    pre: &Pre,
    request: Request,
    limits: &Limits,
    access: &NetworkAccess,
) -> Result<Returned, CallFailure> {
    let _slot = host.inner.slots.acquire().await.map_err(|_| {
        CallFailure::new(
            CallError::Host("plugin host is shutting down".into()),
            CapturedLogs::default(),
        )
    })?;
    let net_log = NetLog::default();
    let mut store = new_store(
        &host.inner.engine,
        limits,
        &host.inner.config,
        access,
        &net_log,
    );
    let outcome = tokio::time::timeout(limits.timeout, pre.invoke(&mut store, request)).await;
    let secrets = &access.secrets;
    let mut logs = store.data().logs();
    redact_logs(&mut logs, secrets);
    let network = redact_report(net_log.report(), secrets);
    match outcome {
        Ok(Ok(response)) => Ok(Returned {
            response,
            logs,
            network,
        }),
        Ok(Err(err)) => {
            let error = classify(&err, store.data(), &logs, limits.timeout);
            tracing::debug!(error = %secrets.redact(&error.to_string()), "plugin call failed");
            Err(failure(error, logs, network, secrets))
        }
        Err(_elapsed) => Err(failure(
            CallError::Timeout {
                after: limits.timeout,
            },
            logs,
            network,
            secrets,
        )),
    }
}

/// A failed call: the error names what the network refused, if anything,
/// and carries no secret value.
pub(crate) fn failure(
    error: CallError,
    logs: CapturedLogs,
    network: NetworkReport,
    secrets: &Secrets,
) -> CallFailure {
    let error = match network.note() {
        Some(note) => error.with_note(&note),
        None => error,
    };
    CallFailure {
        error: error.redacted(secrets),
        logs,
        network,
    }
}

fn redact_logs(logs: &mut CapturedLogs, secrets: &Secrets) {
    if secrets.is_empty() {
        return;
    }
    secrets.redact_in_place(&mut logs.stdout);
    secrets.redact_in_place(&mut logs.stderr);
}

fn redact_report(mut report: NetworkReport, secrets: &Secrets) -> NetworkReport {
    if secrets.is_empty() {
        return report;
    }
    for text in report.refusals.iter_mut() {
        secrets.redact_in_place(text);
    }
    for exchange in report.exchanges.iter_mut() {
        if let Some(error) = exchange.error.as_mut() {
            secrets.redact_in_place(error);
        }
    }
    report
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
                    .block_on(execute(
                        host,
                        pre,
                        Request::Info,
                        &limits,
                        &NetworkAccess::none(),
                    ))
                    .map_err(|failure| {
                        LoadError::Instantiate(format!("its `info` call failed: {failure}"))
                    })
            })
            .join()
    });
    let returned = match result {
        Ok(r) => r?,
        Err(_) => return Err(LoadError::Engine("the `info` call thread panicked".into())),
    };
    match returned.response {
        Response::Info(info) => Ok(info),
        _ => Err(LoadError::Engine("unexpected response to `info`".into())),
    }
}
