//! A local stand-in for an OpenAI-compatible server (OpenAI, vLLM, Ollama,
//! llama.cpp all speak `POST /v1/chat/completions`), for tests and
//! benchmarks of network targets and judges. It runs on loopback, answers
//! after an injectable latency, and can misbehave the way providers do: 429
//! with `Retry-After` for the first N requests or above an in-flight cap,
//! 5xx, a wrong API key. It counts what it saw so a test can assert on it.
//!
//! Routes:
//! * `POST /v1/chat/completions`: the reply is the last user message,
//!   verbatim; a message starting with `STUB_REPLY:` gets the rest as the
//!   reply instead (so a dataset can script a judge's verdict). Usage counts
//!   whitespace-separated words.
//! * `GET /v1/models`: one model, `stub-model`.
//! * `POST /agent`: an "agent endpoint": answers `{"answer": {"text": ..}}`
//!   with the body's `question` (or the whole body as text).
//! * `ANY /echo`: the request's method, headers and body as JSON (what a
//!   hostile upstream would send back).
//! * `GET /stub/stats`: the counters as JSON.
//!
//! All but `/stub/stats` obey the latency and the fault settings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How the stub behaves.
#[derive(Debug, Clone, Default)]
pub struct StubConfig {
    /// Time before each answer.
    pub latency: Duration,
    /// Requests above this many in flight get a 429 at once.
    pub max_in_flight: Option<usize>,
    /// `Retry-After` (seconds) on the 429s it sends.
    pub retry_after_secs: Option<u64>,
    /// The first this-many requests fail with `fail_status`.
    pub fail_first: u64,
    /// The status of those failures (429 by default).
    pub fail_status: Option<u16>,
    /// When set, requests must carry `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
}

/// What the stub has seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StubStats {
    /// Requests received (all routes but `/stub/stats`).
    pub requests: u64,
    /// Requests answered 200.
    pub ok: u64,
    /// Requests answered 429.
    pub throttled: u64,
    /// Requests answered with another error status.
    pub errors: u64,
    /// Requests whose client went away before the answer.
    pub abandoned: u64,
    /// The most requests in flight at once.
    pub max_in_flight: u64,
    /// Every distinct `Authorization` header value seen.
    pub authorizations: Vec<String>,
    /// Completion requests by model name.
    pub models: BTreeMap<String, u64>,
    /// The token usage the completions answered (200) reported, summed by
    /// model name: what a client that counts usage should have counted.
    pub usage: BTreeMap<String, StubUsage>,
}

/// Token counts the stub reported, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StubUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Answers that reported usage.
    pub answers: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    ok: AtomicU64,
    throttled: AtomicU64,
    errors: AtomicU64,
    abandoned: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    authorizations: Vec<String>,
    models: BTreeMap<String, u64>,
    usage: BTreeMap<String, StubUsage>,
}

struct Shared {
    config: StubConfig,
    counters: Counters,
}

/// A running stub; stops when dropped.
pub struct Stub {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: oneshot::Sender<()>,
}

impl Stub {
    /// Starts a stub on `127.0.0.1`, on a free port.
    pub async fn start(config: StubConfig) -> std::io::Result<Stub> {
        Self::start_on("127.0.0.1:0".parse().expect("an address"), config).await
    }

    /// Starts a stub on `addr`.
    pub async fn start_on(addr: SocketAddr, config: StubConfig) -> std::io::Result<Stub> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            counters: Counters::default(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Stub {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it has seen so far.
    pub fn stats(&self) -> StubStats {
        snapshot(&self.shared.counters)
    }
}

/// A [`Stub`] on its own runtime, for tests whose HTTP client blocks the
/// calling thread (a plugin's native tests, a child process under test).
/// Derefs to the stub; dropping it stops the server.
pub struct BackgroundStub {
    stub: Stub,
    _runtime: tokio::runtime::Runtime,
}

impl BackgroundStub {
    /// Starts a stub on a one-thread runtime of its own.
    pub fn start(config: StubConfig) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let stub = runtime.block_on(Stub::start(config))?;
        Ok(Self {
            stub,
            _runtime: runtime,
        })
    }
}

impl std::ops::Deref for BackgroundStub {
    type Target = Stub;

    fn deref(&self) -> &Stub {
        &self.stub
    }
}

fn snapshot(c: &Counters) -> StubStats {
    let seen = c.seen.lock().expect("stats lock");
    StubStats {
        requests: c.requests.load(Ordering::Relaxed),
        ok: c.ok.load(Ordering::Relaxed),
        throttled: c.throttled.load(Ordering::Relaxed),
        errors: c.errors.load(Ordering::Relaxed),
        abandoned: c.abandoned.load(Ordering::Relaxed),
        max_in_flight: c.max_in_flight.load(Ordering::Relaxed) as u64,
        authorizations: seen.authorizations.clone(),
        models: seen.models.clone(),
        usage: seen.usage.clone(),
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/agent", post(agent))
        .route("/echo", any(echo))
        .route(
            "/stub/stats",
            get(|State(s): State<Arc<Shared>>| async move { Json(snapshot(&s.counters)) }),
        )
        .with_state(shared)
}

/// Counts a request in flight; counts it abandoned if dropped before
/// [`InFlight::finish`] (the client went away and hyper dropped the
/// handler).
struct InFlight<'a> {
    counters: &'a Counters,
    finished: bool,
}

impl<'a> InFlight<'a> {
    fn enter(counters: &'a Counters) -> (Self, usize) {
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let now = counters.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::Relaxed);
        (
            InFlight {
                counters,
                finished: false,
            },
            now,
        )
    }

    fn finish(mut self, status: StatusCode) {
        self.finished = true;
        let c = self.counters;
        match status.as_u16() {
            200 => &c.ok,
            429 => &c.throttled,
            _ => &c.errors,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.finished {
            self.counters.abandoned.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs `answer` under the stub's rules: counting, the in-flight cap, the
/// first-N failures, the API key check, then the latency.
async fn serve(
    shared: &Shared,
    headers: &HeaderMap,
    answer: impl FnOnce() -> (StatusCode, Value),
) -> Response {
    let c = &shared.counters;
    let cfg = &shared.config;
    let (guard, in_flight) = InFlight::enter(c);
    let ordinal = c.requests.load(Ordering::Relaxed);
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut seen = c.seen.lock().expect("stats lock");
        if !seen.authorizations.iter().any(|a| a == auth) {
            seen.authorizations.push(auth.to_string());
        }
    }
    let refusal = if cfg.max_in_flight.is_some_and(|max| in_flight > max) {
        Some(StatusCode::TOO_MANY_REQUESTS)
    } else if ordinal <= cfg.fail_first {
        Some(
            cfg.fail_status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::TOO_MANY_REQUESTS),
        )
    } else {
        None
    };
    if let Some(status) = refusal {
        guard.finish(status);
        return error_response(status, cfg.retry_after_secs);
    }
    if !cfg.latency.is_zero() {
        tokio::time::sleep(cfg.latency).await;
    }
    if let Some(key) = &cfg.api_key {
        let expected = format!("Bearer {key}");
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            guard.finish(StatusCode::UNAUTHORIZED);
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})),
            )
                .into_response();
        }
    }
    let (status, body) = answer();
    guard.finish(status);
    (status, Json(body)).into_response()
}

fn error_response(status: StatusCode, retry_after: Option<u64>) -> Response {
    let message = if status == StatusCode::TOO_MANY_REQUESTS {
        "Rate limit reached, please retry later"
    } else {
        "The server had an error while processing your request"
    };
    let mut response = (
        status,
        Json(json!({"error": {"message": message, "type": "stub_error"}})),
    )
        .into_response();
    if let Some(secs) = retry_after.filter(|_| status == StatusCode::TOO_MANY_REQUESTS) {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&secs.to_string()).expect("digits"),
        );
    }
    response
}

async fn chat_completions(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&s, &headers, || {
        let request: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"error": {"message": format!("invalid JSON body: {e}")}}),
                );
            }
        };
        let Some(messages) = request["messages"].as_array().filter(|m| !m.is_empty()) else {
            return (
                StatusCode::BAD_REQUEST,
                json!({"error": {"message": "'messages' must be a non-empty array"}}),
            );
        };
        let model = request["model"]
            .as_str()
            .unwrap_or("stub-model")
            .to_string();
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or("");
        let reply = match last_user.find("STUB_REPLY:") {
            Some(at) => last_user[at + "STUB_REPLY:".len()..].trim().to_string(),
            None => last_user.to_string(),
        };
        let prompt_tokens: usize = messages
            .iter()
            .filter_map(|m| m["content"].as_str())
            .map(|t| t.split_whitespace().count())
            .sum();
        let completion_tokens = reply.split_whitespace().count();
        {
            let mut seen = s.counters.seen.lock().expect("stats lock");
            *seen.models.entry(model.clone()).or_default() += 1;
            let usage = seen.usage.entry(model.clone()).or_default();
            usage.prompt_tokens += prompt_tokens as u64;
            usage.completion_tokens += completion_tokens as u64;
            usage.total_tokens += (prompt_tokens + completion_tokens) as u64;
            usage.answers += 1;
        }
        (
            StatusCode::OK,
            json!({
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": "stop",
                }],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }),
        )
    })
    .await
}

async fn models(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    serve(&s, &headers, || {
        (
            StatusCode::OK,
            json!({"object": "list", "data": [{"id": "stub-model", "object": "model"}]}),
        )
    })
    .await
}

async fn agent(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&s, &headers, || {
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let text = match &request["question"] {
            Value::String(q) => q.clone(),
            _ => String::from_utf8_lossy(&body).into_owned(),
        };
        (StatusCode::OK, json!({"answer": {"text": text}}))
    })
    .await
}

async fn echo(
    State(s): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let listed: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    serve(&s, &headers, || {
        (
            StatusCode::OK,
            json!({
                "method": method.as_str(),
                "headers": listed,
                "body": String::from_utf8_lossy(&body),
            }),
        )
    })
    .await
}
