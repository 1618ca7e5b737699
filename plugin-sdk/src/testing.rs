//! Run a scorer or target natively exactly as the wasm export would: the
//! input goes through JSON text and back, and scores are range-checked.
//!
//! Calling `MyScorer::score(input)` directly tests your logic; these helpers
//! also test what the host will see (for example a score of `1.5` becomes a
//! `failed` error here, as it does in the sandbox).

use crate::export::{JsonItem, run_json, score_json};
use crate::{PluginError, Score, ScoreInput, Scorer, Target, TargetInput, TargetOutput};

/// Scores `input` with `S` the way the exported component does.
pub fn score<S: Scorer>(input: &ScoreInput) -> Result<Score, PluginError> {
    let item = &input.item;
    let text = |v: &serde_json::Value| v.to_string();
    let (in_text, gt, meta) = (
        text(&item.input),
        item.ground_truth.as_ref().map(text),
        item.metadata.as_ref().map(text),
    );
    let (output, config) = (
        input.output.as_ref().map(text),
        input.config.as_ref().map(text),
    );
    let json_item = JsonItem {
        id: &item.id,
        input: &in_text,
        ground_truth: gt.as_deref(),
        metadata: meta.as_deref(),
    };
    let mut score = score_json::<S>(json_item, output.as_deref(), config.as_deref())?;
    // Metadata crosses the boundary as JSON text too.
    if let Some(m) = score.metadata.take() {
        score.metadata = Some(serde_json::from_str(&m.to_string())?);
    }
    Ok(score)
}

/// Runs `input` through `T` the way the exported component does.
pub fn run<T: Target>(input: &TargetInput) -> Result<TargetOutput, PluginError> {
    let item = &input.item;
    let text = |v: &serde_json::Value| v.to_string();
    let (in_text, gt, meta) = (
        text(&item.input),
        item.ground_truth.as_ref().map(text),
        item.metadata.as_ref().map(text),
    );
    let config = input.config.as_ref().map(text);
    let json_item = JsonItem {
        id: &item.id,
        input: &in_text,
        ground_truth: gt.as_deref(),
        metadata: meta.as_deref(),
    };
    let mut out = run_json::<T>(json_item, config.as_deref())?;
    out.output = serde_json::from_str(&out.output.to_string())?;
    if let Some(m) = out.metadata.take() {
        out.metadata = Some(serde_json::from_str(&m.to_string())?);
    }
    Ok(out)
}
