//! Targets: the [`Target`] trait, its input [`TargetInput`] and result
//! [`TargetOutput`].

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::item::parse_config;
use crate::{Item, PluginError, PluginInfo};

/// A target is the thing under test: it turns an item into an output.
///
/// Implement it on a unit struct and export it with
/// [`export_target!`](crate::export_target). Every call runs in a fresh
/// sandbox, so there is no `self`: a target keeps no state between items.
pub trait Target {
    /// Describes this target (its `id` is the name runs use).
    fn info() -> PluginInfo;

    /// Produces the output for one item.
    fn run(input: TargetInput) -> Result<TargetOutput, PluginError>;
}

/// Everything a target gets for one item.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetInput {
    /// The dataset item.
    pub item: Item,
    /// The run's config for this target, if any.
    pub config: Option<Value>,
}

impl TargetInput {
    /// An input for `item` with no config.
    pub fn new(item: Item) -> Self {
        Self { item, config: None }
    }

    /// Sets the config (builder style, handy in tests).
    pub fn with_config(mut self, config: Value) -> Self {
        self.config = Some(config);
        self
    }

    /// The config as your own type; absent or `null` config gives
    /// `T::default()`. A config that does not fit is an invalid-input error
    /// naming the field.
    pub fn config<T: DeserializeOwned + Default>(&self) -> Result<T, PluginError> {
        parse_config(self.config.as_ref())
    }
}

/// A target's output for one item.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetOutput {
    /// The output.
    pub output: Value,
    /// An optional trace id for observability tools.
    pub trace_id: Option<String>,
    /// Optional detail about the call, stored with the item's result: token
    /// usage, the model that answered, latency. Counted with the output
    /// against the host's output cap.
    pub metadata: Option<Value>,
}

impl TargetOutput {
    /// An output with no trace id and no metadata.
    pub fn new(output: Value) -> Self {
        Self {
            output,
            trace_id: None,
            metadata: None,
        }
    }

    /// Adds metadata, e.g. token usage:
    ///
    /// ```
    /// use assay_plugin_sdk::{TargetOutput, serde_json::json};
    ///
    /// let out = TargetOutput::new(json!("Paris")).with_metadata(json!({
    ///     "usage": {"promptTokens": 12, "completionTokens": 3, "totalTokens": 15},
    ///     "model": "gpt-4o-mini",
    /// }));
    /// assert_eq!(out.metadata.unwrap()["usage"]["totalTokens"], 15);
    /// ```
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Adds a trace id.
    pub fn with_trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into());
        self
    }
}
