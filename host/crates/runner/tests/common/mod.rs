//! Shared fixtures for the executor tests: a temp SQLite store, datasets,
//! and native mock targets/scorers whose behaviour each item's input picks.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use assay_plugin_host::{
    CallError, CallFailure, CapturedLogs, PluginItem, ScoreOutcome, TargetOutcome,
};
use assay_runner::{RunOptions, RunPlan, Scorer, Target};
use assay_store::{NewItem, NewRun, Page, Run, RunResult, Store, TargetType};
use async_trait::async_trait;
use serde_json::{Value, json};

pub const TENANT: &str = "default";

/// A fresh SQLite store in a temp dir (kept alive by the returned guard).
pub async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = assay_store::connect(&url).await.unwrap();
    (store, dir)
}

/// A dataset whose items have the given inputs; returns a pending run over it.
pub async fn dataset_run(store: &Arc<dyn Store>, inputs: Vec<Value>) -> Run {
    dataset_run_repeated(store, inputs, 1).await
}

/// Like [`dataset_run`], with `repeats` trials per item.
pub async fn dataset_run_repeated(store: &Arc<dyn Store>, inputs: Vec<Value>, repeats: i64) -> Run {
    let ds = store
        .create_dataset(
            TENANT,
            assay_store::NewDataset {
                name: format!("ds-{}", uuid_like()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let items = inputs
        .into_iter()
        .map(|input| NewItem {
            expected_output: input.get("expected").cloned(),
            input,
            context: None,
        })
        .collect::<Vec<_>>();
    let n = items.len() as i64;
    store.add_items(TENANT, &ds.id, items).await.unwrap();
    let ds = store.get_dataset(TENANT, &ds.id).await.unwrap();
    store
        .create_run(
            TENANT,
            NewRun {
                id: None,
                dataset_id: ds.id,
                dataset_version: ds.version,
                target_type: TargetType::Plugin,
                target_id: "mock".into(),
                scorer_ids: vec![],
                config: json!({}),
                total_items: n * repeats,
                repeats,
                parent_run_id: None,
            },
        )
        .await
        .unwrap()
}

fn uuid_like() -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `n` plain items `{ "n": i }`.
pub fn plain(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({ "n": i })).collect()
}

pub fn plan(
    run: Run,
    target: Arc<dyn Target>,
    scorers: Vec<Arc<dyn Scorer>>,
    options: RunOptions,
) -> RunPlan {
    RunPlan {
        tenant: TENANT.into(),
        run,
        target: target.into(),
        scorers,
        options,
        claimed: false,
    }
}

fn failure(error: CallError) -> CallFailure {
    CallFailure {
        error,
        logs: CapturedLogs::default(),
        network: Default::default(),
    }
}

/// A target driven by each item's input:
/// `delayMs` sleeps first; `fail: "transient"|"failed"|"invalid"` fails;
/// `failTimes: k` fails transiently on the first k attempts of that item.
/// `cpu_bound` is what it tells the executor (a wasm plugin says true).
/// `capacity`: like a rate-limited upstream, a call beyond that many in
/// flight fails at once, transiently ("429").
#[derive(Default)]
pub struct MockTarget {
    pub cpu_bound: bool,
    pub capacity: Option<usize>,
    pub rejected: AtomicUsize,
    pub calls: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub attempts: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

#[async_trait]
impl Target for MockTarget {
    fn id(&self) -> &str {
        "mock"
    }

    fn cpu_bound(&self) -> bool {
        self.cpu_bound
    }

    async fn run(&self, item: &PluginItem) -> Result<TargetOutcome, CallFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let _guard = Decrement(&self.in_flight);
        if self.capacity.is_some_and(|cap| now > cap) {
            self.rejected.fetch_add(1, Ordering::SeqCst);
            return Err(failure(CallError::Transient(
                "429 Too Many Requests".into(),
            )));
        }
        let attempt = {
            let mut a = self.attempts.lock().unwrap();
            let e = a.entry(item.id.clone()).or_default();
            *e += 1;
            *e
        };
        if let Some(ms) = item.input.get("delayMs").and_then(Value::as_u64) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(k) = item.input.get("failTimes").and_then(Value::as_u64)
            && attempt as u64 <= k
        {
            return Err(failure(CallError::Transient(format!(
                "flaky attempt {attempt}"
            ))));
        }
        if let Some(ms) = item.input.get("retryAfterMs").and_then(Value::as_u64)
            && attempt == 1
        {
            // Like a 429 with `Retry-After`, as the sandbox reports it.
            let mut f = failure(CallError::Transient("429 Too Many Requests".into()));
            f.network.exchanges.push(assay_plugin_host::HttpExchange {
                host: "api.example.com".into(),
                status: Some(429),
                latency: Duration::from_millis(1),
                retry_after: Some(Duration::from_millis(ms)),
                error: None,
            });
            return Err(f);
        }
        match item.input.get("fail").and_then(Value::as_str) {
            Some("transient") => Err(failure(CallError::Transient("rate limited (429)".into()))),
            Some("invalid") => Err(failure(CallError::InvalidInput("bad item".into()))),
            Some(other) => Err(failure(CallError::Failed(format!(
                "target failed: {other}"
            )))),
            None if item.input.get("emitNul").is_some() => Ok(TargetOutcome {
                output: json!({"text": "a\u{0}b", "k\u{0}": ["\u{0}"]}),
                trace_id: None,
                metadata: Some(json!({"model": "m\u{0}"})),
                logs: CapturedLogs {
                    stdout: "nul \u{0} byte".into(),
                    ..Default::default()
                },
                network: Default::default(),
            }),
            None => Ok(TargetOutcome {
                output: item.input.clone(),
                trace_id: Some(format!("trace-{}", item.id)),
                metadata: Some(json!({"usage": {"totalTokens": item.id.len()}})),
                logs: CapturedLogs::default(),
                network: Default::default(),
            }),
        }
    }
}

struct Decrement<'a>(&'a AtomicUsize);
impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A scorer returning a fixed score, or failing, after an optional delay.
pub struct MockScorer {
    pub id: &'static str,
    pub score: Option<f64>,
    pub delay: Duration,
    pub calls: AtomicUsize,
}

impl MockScorer {
    pub fn ok(id: &'static str, score: f64) -> Arc<Self> {
        Arc::new(Self {
            id,
            score: Some(score),
            delay: Duration::ZERO,
            calls: AtomicUsize::new(0),
        })
    }
    pub fn failing(id: &'static str) -> Arc<Self> {
        Arc::new(Self {
            id,
            score: None,
            delay: Duration::ZERO,
            calls: AtomicUsize::new(0),
        })
    }
    pub fn slow(id: &'static str, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            id,
            score: Some(1.0),
            delay,
            calls: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl Scorer for MockScorer {
    fn id(&self) -> &str {
        self.id
    }
    fn name(&self) -> &str {
        self.id
    }
    async fn score(
        &self,
        _item: &PluginItem,
        _output: Option<&Value>,
    ) -> Result<ScoreOutcome, CallFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        match self.score {
            Some(value) => Ok(ScoreOutcome {
                value,
                reason: Some("mock".into()),
                metadata: None,
                logs: CapturedLogs::default(),
                network: Default::default(),
            }),
            None => Err(failure(CallError::Panic {
                message: "scorer exploded".into(),
            })),
        }
    }
}

/// Every stored result of `run_id`, page by page.
pub async fn all_results(store: &Arc<dyn Store>, run_id: &str) -> Vec<RunResult> {
    let mut out = Vec::new();
    for page in 0.. {
        let p = store
            .list_results(TENANT, run_id, Page::new(page, 100))
            .await
            .unwrap();
        out.extend(p.items);
        if !p.has_more {
            break;
        }
    }
    out
}
