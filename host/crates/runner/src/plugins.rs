//! What the executor calls: a [`Target`] and its [`Scorer`]s.
//!
//! Runs normally use WebAssembly plugins ([`WasmTarget`], [`WasmScorer`],
//! [`ScorerAsTarget`]); the traits let tests and embedders plug in native
//! implementations too.

use std::sync::Arc;

use assay_plugin_host::{
    CallFailure, Limits, NetworkAccess, Plugin, PluginItem, ScoreOutcome, TargetOutcome,
};
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

/// A target plugin with the run's config, limits and network bound to it.
pub struct WasmTarget {
    plugin: Arc<Plugin>,
    config: Option<Value>,
    limits: Limits,
    network: NetworkAccess,
}

impl WasmTarget {
    /// Binds `config` and `limits` to a loaded target plugin, with no
    /// network.
    pub fn new(plugin: Arc<Plugin>, config: Option<Value>, limits: Limits) -> Self {
        Self {
            plugin,
            config,
            limits,
            network: NetworkAccess::none(),
        }
    }

    /// The outbound HTTP its calls may make (the plugin's grant, narrowed
    /// by the run, and the tenant's secrets).
    pub fn with_network(mut self, network: NetworkAccess) -> Self {
        self.network = network;
        self
    }
}

#[async_trait]
impl Target for WasmTarget {
    fn id(&self) -> &str {
        &self.plugin.info().id
    }

    /// Without network a wasm call only computes; with a grant it may
    /// wait on a server, and must not hold a call slot meanwhile.
    fn cpu_bound(&self) -> bool {
        self.network.grant.is_empty()
    }

    async fn run(&self, item: &PluginItem) -> Result<TargetOutcome, CallFailure> {
        self.plugin
            .run_target_with_network(item, self.config.as_ref(), &self.limits, &self.network)
            .await
    }
}

/// A scorer plugin with the run's config, limits and network bound to it.
pub struct WasmScorer {
    plugin: Arc<Plugin>,
    config: Option<Value>,
    limits: Limits,
    network: NetworkAccess,
}

impl WasmScorer {
    /// Binds `config` and `limits` to a loaded scorer plugin, with no
    /// network.
    pub fn new(plugin: Arc<Plugin>, config: Option<Value>, limits: Limits) -> Self {
        Self {
            plugin,
            config,
            limits,
            network: NetworkAccess::none(),
        }
    }

    /// As [`WasmTarget::with_network`].
    pub fn with_network(mut self, network: NetworkAccess) -> Self {
        self.network = network;
        self
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

    /// As [`WasmTarget`]'s.
    fn cpu_bound(&self) -> bool {
        self.network.grant.is_empty()
    }

    async fn score(
        &self,
        item: &PluginItem,
        output: Option<&Value>,
    ) -> Result<ScoreOutcome, CallFailure> {
        self.plugin
            .score_with_network(
                item,
                output,
                self.config.as_ref(),
                &self.limits,
                &self.network,
            )
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
            network: outcome.network,
        })
    }
}
