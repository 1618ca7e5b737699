//! `textual-difference`: Python difflib's `SequenceMatcher.ratio()` between
//! the reference and the output, over chars.
//!
//! The ratio is Ratcliff–Obershelp's `2 * M / T`, where `T` is the total
//! number of chars in both texts and `M` the chars in the matching blocks
//! found by repeatedly taking the longest common block and recursing on both
//! sides of it. Two empty texts score 1. The reference is the ground truth
//! when the item has one, else the item's input (as Mastra's scorer compares
//! input and output); config `against: "ground-truth" | "input"` forces one.
//! The reference is difflib's `a`, the output its `b`.
//!
//! **Junk heuristic.** Like difflib (`autojunk=True`, and the `difflib` npm
//! port that Mastra uses), when the output has 200 chars or more, every char
//! that appears in it more than `len / 100 + 1` times is "popular" and cannot
//! start a match (it can still extend one). On long texts this makes the
//! ratio much lower than the share of common text: two 275-char texts that
//! share most of their words can score 0.01. Config `autojunk: false` turns
//! the heuristic off (difflib's `autojunk=False`). The cost is up to
//! `len(a) * len(b)` steps.
//!
//! Metadata: `changes` (non-equal difflib opcodes) and `lengthDiff`
//! (`|len(a) - len(b)| / max(len(a), len(b))`).

mod difflib;

use assay_plugin_sdk::prelude::*;
use serde::Deserialize;

pub use difflib::{Match, SequenceMatcher};

/// The textual-difference scorer.
pub struct TextualDifference;

/// Config of [`TextualDifference`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// The reference; by default the ground truth when present, else the input.
    pub against: Option<Against>,
    /// difflib's popular-element heuristic for outputs of 200+ chars (default true).
    pub autojunk: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            against: None,
            autojunk: true,
        }
    }
}

impl Scorer for TextualDifference {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "textual-difference",
            "Textual difference",
            "difflib SequenceMatcher ratio (2*M/T) between the output and the ground truth (else the input).",
        )
    }

    fn score(input: ScoreInput) -> Result<Score, PluginError> {
        let config: Config = input.config()?;
        let reference: Vec<char> = input.reference_text(config.against)?.chars().collect();
        let Some(output) = input.output_text() else {
            return Ok(Score::new(0.0).with_reason("the target produced no output"));
        };
        let output: Vec<char> = output.chars().collect();
        let matcher = SequenceMatcher::new(&reference, &output, config.autojunk);
        let ratio = matcher.ratio();
        let changes = matcher.changes();
        let longer = reference.len().max(output.len());
        let length_diff = if longer == 0 {
            0.0
        } else {
            reference.len().abs_diff(output.len()) as f64 / longer as f64
        };
        Ok(Score::new(ratio)
            .with_reason(format!(
                "similarity ratio {ratio:.3} with {changes} change(s)"
            ))
            .with_metadata(json!({ "changes": changes, "lengthDiff": length_diff })))
    }
}

export_scorer!(TextualDifference);

#[cfg(test)]
mod tests {
    use super::*;
    use assay_plugin_sdk::testing;

    fn score(
        input: Value,
        truth: Option<Value>,
        output: Value,
        config: Value,
    ) -> Result<Score, PluginError> {
        let mut item = Item::new("1", input);
        item.ground_truth = truth;
        testing::score::<TextualDifference>(
            &ScoreInput::new(item)
                .with_output(output)
                .with_config(config),
        )
    }

    #[test]
    fn ratio_against_ground_truth() {
        let s = score(
            json!("ignored"),
            Some(json!("abcd")),
            json!("bcde"),
            Value::Null,
        )
        .unwrap();
        assert_eq!(s.value, 0.75);
        assert_eq!(s.metadata, Some(json!({"changes": 2, "lengthDiff": 0.0})));
    }

    #[test]
    fn falls_back_to_the_input_and_can_be_forced() {
        let s = score(
            json!("hello world"),
            None,
            json!("world hello"),
            Value::Null,
        )
        .unwrap();
        assert!((s.value - 0.45454545454545453).abs() < 1e-15);
        let s = score(
            json!("abcd"),
            Some(json!("zzzz")),
            json!("bcde"),
            json!({"against": "input"}),
        )
        .unwrap();
        assert_eq!(s.value, 0.75);
        let err = score(
            json!("abcd"),
            None,
            json!("x"),
            json!({"against": "ground-truth"}),
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(_)));
        let err = score(json!("abcd"), None, json!("x"), json!({"against": "both"})).unwrap_err();
        assert!(err.message().contains("`against`"), "{err}");
    }

    #[test]
    fn empty_texts_score_one() {
        assert_eq!(
            score(json!(""), None, json!(""), Value::Null)
                .unwrap()
                .value,
            1.0
        );
    }

    #[test]
    fn autojunk_can_be_turned_off() {
        let a = "ab".repeat(150) + "xyz";
        let b = "ba".repeat(150) + "xyz";
        let with = score(json!(a), None, json!(b), Value::Null).unwrap().value;
        let without = score(json!(a), None, json!(b), json!({"autojunk": false}))
            .unwrap()
            .value;
        // Values from Python's difflib.
        assert!((with - 0.009900990099009901).abs() < 1e-15, "{with}");
        assert!((without - 0.9966996699669967).abs() < 1e-15, "{without}");
    }
}
