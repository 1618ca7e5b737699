//! What the executor calls: a [`Target`] and its [`Scorer`]s.
//!
//! Runs normally use WebAssembly plugins ([`WasmTarget`], [`WasmScorer`],
//! [`ScorerAsTarget`]); the traits let tests and embedders plug in native
//! implementations too.

use std::sync::Arc;

use assay_plugin_host::{CallFailure, Limits, Plugin, PluginItem, ScoreOutcome, TargetOutcome};
use async_trait::async_trait;
use serde_json::{Value, json};

/// The thing under test.
#[async_trait]
pub trait Target: Send + Sync {
    /// The target's id (stored as the run's `targetId`).
    fn id(&self) -> &str;
    /// Whether a call only computes (no waiting on the network or a
    /// service), so that it passes the process's small gate of concurrent
    /// calls (see `executor::default_call_slots`). A target that waits must
    /// say `false`, or it would hold a CPU's worth of calls while idle.
    fn cpu_bound(&self) -> bool {
        false
    }
    /// Runs the target on one item. Dropping the future cancels the call.
    async fn run(&self, item: &PluginItem) -> Result<TargetOutcome, CallFailure>;
}

/// Grades a target's output for one item.
#[async_trait]
pub trait Scorer: Send + Sync {
    /// The scorer's id (`scorerId` in results).
    fn id(&self) -> &str;
    /// The scorer's human-readable name (`scorerName` in results).
    fn name(&self) -> &str;
    /// As [`Target::cpu_bound`].
    fn cpu_bound(&self) -> bool {
        false
    }
    /// Scores `output` for `item`. Dropping the future cancels the call.
    async fn score(
        &self,
        item: &PluginItem,
        output: Option<&Value>,
    ) -> Result<ScoreOutcome, CallFailure>;
}

/// A target plugin with the run's config and limits bound to it.
pub struct WasmTarget {
    plugin: Arc<Plugin>,
    config: Option<Value>,
    limits: Limits,
}

impl WasmTarget {
    /// Binds `config` and `limits` to a loaded target plugin.
    pub fn new(plugin: Arc<Plugin>, config: Option<Value>, limits: Limits) -> Self {
        Self {
            plugin,
            config,
            limits,
        }
    }
}

#[async_trait]
impl Target for WasmTarget {
    fn id(&self) -> &str {
        &self.plugin.info().id
    }

    /// The sandbox grants no network, so a wasm call only computes.
    fn cpu_bound(&self) -> bool {
        true
    }

    async fn run(&self, item: &PluginItem) -> Result<TargetOutcome, CallFailure> {
        self.plugin
            .run_target(item, self.config.as_ref(), &self.limits)
            .await
    }
}

/// A scorer plugin with the run's config and limits bound to it.
pub struct WasmScorer {
    plugin: Arc<Plugin>,
    config: Option<Value>,
    limits: Limits,
}

impl WasmScorer {
    /// Binds `config` and `limits` to a loaded scorer plugin.
    pub fn new(plugin: Arc<Plugin>, config: Option<Value>, limits: Limits) -> Self {
        Self {
            plugin,
            config,
            limits,
        }
    }
}

#[async_trait]
impl Scorer for WasmScorer {
    fn id(&self) -> &str {
        &self.plugin.info().id
    }

    fn name(&self) -> &str {
        &self.plugin.info().name
    }

    /// The sandbox grants no network, so a wasm call only computes.
    fn cpu_bound(&self) -> bool {
        true
    }

    async fn score(
        &self,
        item: &PluginItem,
        output: Option<&Value>,
    ) -> Result<ScoreOutcome, CallFailure> {
        self.plugin
            .score(item, output, self.config.as_ref(), &self.limits)
            .await
    }
}

/// Runs a scorer as the target: calibration of a scorer against items shaped
/// `{input, output, groundTruth}` (Mastra's `targetType: "scorer"`). The
/// output is `{score, reason}`.
pub struct ScorerAsTarget {
    scorer: Arc<dyn Scorer>,
}

impl ScorerAsTarget {
    /// Wraps a scorer so it can be a run's target.
    pub fn new(scorer: Arc<dyn Scorer>) -> Self {
        Self { scorer }
    }
}

#[async_trait]
impl Target for ScorerAsTarget {
    fn id(&self) -> &str {
        self.scorer.id()
    }

    fn cpu_bound(&self) -> bool {
        self.scorer.cpu_bound()
    }

    async fn run(&self, item: &PluginItem) -> Result<TargetOutcome, CallFailure> {
        // The item's input holds what the scorer is to grade.
        let field = |name: &str| item.input.get(name).cloned();
        let inner = PluginItem {
            id: item.id.clone(),
            input: field("input").unwrap_or_else(|| item.input.clone()),
            ground_truth: field("groundTruth")
                .or_else(|| field("ground_truth"))
                .or_else(|| item.ground_truth.clone()),
            metadata: item.metadata.clone(),
        };
        let output = field("output");
        let outcome = self.scorer.score(&inner, output.as_ref()).await?;
        Ok(TargetOutcome {
            output: json!({ "score": outcome.value, "reason": outcome.reason }),
            trace_id: None,
            metadata: None,
            logs: outcome.logs,
        })
    }
}
