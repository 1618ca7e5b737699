//! The plugin's data as the rest of assay sees it: kind, info, items and
//! call outcomes. Independent of the contract version.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
