//! What a call's outbound requests did: each exchange's host, status,
//! latency and `Retry-After`, and every refusal's message. The runner reads
//! it to honour `Retry-After` and to adapt its concurrency per host; the
//! refusals explain a failed call.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// One request a plugin made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpExchange {
    /// `host[:port]` as requested.
    pub host: String,
    /// The response status; `None` when no response came (refused,
    /// connection failed, timed out).
    pub status: Option<u16>,
    /// From the start of the request to its response headers (or failure).
    pub latency: Duration,
    /// The response's `Retry-After`, as a delay from when it was received.
    pub retry_after: Option<Duration>,
    /// Why the request failed, when it did.
    pub error: Option<String>,
}

impl HttpExchange {
    /// Whether the server said to slow down (429 or 503).
    pub fn throttled(&self) -> bool {
        matches!(self.status, Some(429 | 503))
    }
}

/// The outbound HTTP of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkReport {
    /// Requests in the order they were made.
    pub exchanges: Vec<HttpExchange>,
    /// Messages of requests the host refused or cut (not granted, internal
    /// address, a limit, an unknown secret), in order.
    pub refusals: Vec<String>,
}

impl NetworkReport {
    /// Whether any response was a 429 or 503.
    pub fn throttled(&self) -> bool {
        self.exchanges.iter().any(HttpExchange::throttled)
    }

    /// The longest `Retry-After` any response asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        self.exchanges.iter().filter_map(|e| e.retry_after).max()
    }

    /// True when the call made no request.
    pub fn is_empty(&self) -> bool {
        self.exchanges.is_empty() && self.refusals.is_empty()
    }

    /// `network: <refusals>`, for a failed call's message.
    pub(crate) fn note(&self) -> Option<String> {
        if self.refusals.is_empty() {
            return None;
        }
        let mut unique: Vec<&str> = Vec::new();
        for r in &self.refusals {
            if !unique.contains(&r.as_str()) {
                unique.push(r);
            }
        }
        Some(format!("network: {}", unique.join("; ")))
    }
}

/// The report being written while a call runs, shared by the call's store
/// and its in-flight requests.
#[derive(Clone, Default)]
pub(crate) struct NetLog {
    inner: Arc<Mutex<LogState>>,
}

#[derive(Default)]
struct LogState {
    report: NetworkReport,
    requests: u32,
}

impl NetLog {
    fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request; returns the count including it.
    pub(crate) fn count_request(&self) -> u32 {
        let mut state = self.state();
        state.requests += 1;
        state.requests
    }

    pub(crate) fn refuse(&self, message: String) {
        tracing::debug!(%message, "plugin request refused");
        self.state().report.refusals.push(message);
    }

    pub(crate) fn exchange(&self, exchange: HttpExchange) {
        self.state().report.exchanges.push(exchange);
    }

    pub(crate) fn report(&self) -> NetworkReport {
        self.state().report.clone()
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (a date in the past
/// is no delay).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn report_summarizes_throttling_and_refusals() {
        let exchange = |status, secs: Option<u64>| HttpExchange {
            host: "api.example.com".into(),
            status: Some(status),
            latency: Duration::from_millis(5),
            retry_after: secs.map(Duration::from_secs),
            error: None,
        };
        let report = NetworkReport {
            exchanges: vec![
                exchange(200, None),
                exchange(429, Some(3)),
                exchange(503, Some(7)),
            ],
            refusals: vec!["a".into(), "a".into(), "b".into()],
        };
        assert!(report.throttled());
        assert_eq!(report.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(report.note().as_deref(), Some("network: a; b"));
        assert!(!NetworkReport::default().throttled());
        assert_eq!(NetworkReport::default().note(), None);
    }
}
