//! The plugin's data as the rest of assay sees it: kind, info, items and
//! call outcomes. Independent of the contract version.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::grant::HostPattern;
use crate::logs::CapturedLogs;
use crate::net_report::NetworkReport;

/// Which plugin interface a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Exports `assay:plugin/scorer`: grades outputs.
    Scorer,
    /// Exports `assay:plugin/target`: turns items into outputs.
    Target,
}

impl PluginKind {
    /// `scorer` or `target`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Scorer => "scorer",
            PluginKind::Target => "target",
        }
    }

    /// The WIT interface name without version, e.g. `assay:plugin/scorer`.
    pub fn interface(self) -> &'static str {
        match self {
            PluginKind::Scorer => "assay:plugin/scorer",
            PluginKind::Target => "assay:plugin/target",
        }
    }

    /// The WIT world name, e.g. `scorer-plugin`.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::Scorer => "scorer-plugin",
            PluginKind::Target => "target-plugin",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plugin says about itself (its `info` export).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Stable id, lowercase `[a-z0-9-]`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// One-paragraph description.
    pub description: String,
    /// What the plugin asks the operator for (contract 0.2; empty for 0.1
    /// plugins).
    #[serde(default)]
    pub needs: PluginNeeds,
}

/// Outside resources a plugin declares it needs, so an operator sees them
/// before granting anything. Declaring grants nothing: the operator's
/// [`NetworkGrant`](crate::NetworkGrant) decides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginNeeds {
    /// Hosts the plugin wants to reach, in the grant's own syntax
    /// (`api.openai.com`, `*.example.com:8443`).
    #[serde(default)]
    pub hosts: Vec<HostPattern>,
    /// Names of secrets its config may refer to as `{{secret.NAME}}`.
    #[serde(default)]
    pub secrets: Vec<String>,
}

impl PluginNeeds {
    /// Whether the plugin needs nothing.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.secrets.is_empty()
    }
}

/// One dataset item as handed to a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginItem {
    /// The item's id.
    pub id: String,
    /// The item's input.
    pub input: Value,
    /// The expected output, if any.
    pub ground_truth: Option<Value>,
    /// Free-form metadata / context.
    pub metadata: Option<Value>,
}

/// A target's successful result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetOutcome {
    /// The output JSON.
    pub output: Value,
    /// The plugin's trace id, if it gave one.
    pub trace_id: Option<String>,
    /// Structured detail the target reported about the call (token usage,
    /// model, latency; contract 0.2, always `None` for 0.1 plugins).
    pub metadata: Option<Value>,
    /// What the guest printed.
    pub logs: CapturedLogs,
    /// The outbound requests the call made.
    #[serde(skip_serializing_if = "NetworkReport::is_empty")]
    pub network: NetworkReport,
}

/// A scorer's successful result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreOutcome {
    /// The score, in `[0, 1]`.
    pub value: f64,
    /// Why this score.
    pub reason: Option<String>,
    /// Extra structured detail.
    pub metadata: Option<Value>,
    /// What the guest printed.
    pub logs: CapturedLogs,
    /// The outbound requests the call made.
    #[serde(skip_serializing_if = "NetworkReport::is_empty")]
    pub network: NetworkReport,
}
