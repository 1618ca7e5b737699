//! What one finished item produced, as the executor hands it to callbacks
//! and keeps in a run summary.

use assay_store::NewResult;
use serde::Serialize;

/// One finished item: its result with scores, its dataset index, and whether
/// storing it failed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemWithScores {
    /// The item's position in the dataset (dataset order; stable across
    /// versions, with gaps where items were deleted).
    pub index: i64,
    /// The result as it was (or was meant to be) stored.
    #[serde(flatten)]
    pub result: NewResult,
    /// Set when the result could not be written to storage; the run goes on
    /// and the failure is counted in the summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence_error: Option<String>,
}

impl ItemWithScores {
    /// True when the target failed for this item.
    pub fn is_failure(&self) -> bool {
        self.result.error.is_some()
    }
}
