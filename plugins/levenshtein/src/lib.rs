//! `levenshtein`: normalized Levenshtein similarity between the output and
//! the ground truth: `1 - distance / max(len(output), len(truth))`, lengths
//! and edits counted in Unicode scalar values (chars), not bytes. Two empty
//! texts score 1.
//!
//! Option `ignoreCase` (default false) lowercases both sides first. An item
//! without ground truth is invalid input; a missing output scores 0. The cost
//! is `len(output) * len(truth)` steps: the host's per-call deadline bounds
//! it for very long texts.

use assay_plugin_sdk::prelude::*;
use serde::Deserialize;

/// The levenshtein scorer.
pub struct Levenshtein;

/// Config of [`Levenshtein`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Compare case-insensitively.
    pub ignore_case: bool,
}

impl Scorer for Levenshtein {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "levenshtein",
            "Levenshtein similarity",
            "1 - edit distance / length of the longer text, between the output and the ground truth (option: ignoreCase).",
        )
    }

    fn score(input: ScoreInput) -> Result<Score, PluginError> {
        let config: Config = input.config()?;
        let mut truth = json_text(input.item.require_ground_truth()?);
        let Some(mut output) = input.output_text() else {
            return Ok(Score::new(0.0).with_reason("the target produced no output"));
        };
        if config.ignore_case {
            truth = truth.to_lowercase();
            output = output.to_lowercase();
        }
        let distance = strsim::levenshtein(&output, &truth);
        let similarity = strsim::normalized_levenshtein(&output, &truth);
        Ok(Score::new(similarity)
            .with_reason(format!(
                "{distance} edit(s) between output and ground truth"
            ))
            .with_metadata(json!({ "distance": distance })))
    }
}

export_scorer!(Levenshtein);

#[cfg(test)]
mod tests {
    use super::*;
    use assay_plugin_sdk::testing;

    fn score(output: &str, truth: &str, config: Value) -> Score {
        let item = Item::new("1", json!("q")).with_ground_truth(json!(truth));
        testing::score::<Levenshtein>(
            &ScoreInput::new(item)
                .with_output(json!(output))
                .with_config(config),
        )
        .unwrap()
    }

    #[test]
    fn known_distances() {
        // kitten -> sitting: 3 edits, longer length 7.
        let s = score("kitten", "sitting", Value::Null);
        assert!((s.value - (1.0 - 3.0 / 7.0)).abs() < 1e-12, "{}", s.value);
        assert_eq!(s.metadata, Some(json!({"distance": 3})));
        assert_eq!(score("same", "same", Value::Null).value, 1.0);
        assert_eq!(score("abc", "xyz", Value::Null).value, 0.0);
    }

    #[test]
    fn counts_chars_not_bytes() {
        // One substitution in a 4-char word, whatever the UTF-8 byte lengths.
        let s = score("café", "cafe", Value::Null);
        assert!((s.value - 0.75).abs() < 1e-12, "{}", s.value);
    }

    #[test]
    fn empty_texts() {
        assert_eq!(score("", "", Value::Null).value, 1.0);
        assert_eq!(score("abc", "", Value::Null).value, 0.0);
    }

    #[test]
    fn ignore_case() {
        assert_eq!(
            score("PARIS", "paris", json!({"ignoreCase": true})).value,
            1.0
        );
        assert_eq!(score("PARIS", "paris", Value::Null).value, 0.0);
    }

    #[test]
    fn missing_ground_truth_is_invalid_input() {
        let input = ScoreInput::new(Item::new("1", json!("q"))).with_output(json!("a"));
        assert!(matches!(
            testing::score::<Levenshtein>(&input),
            Err(PluginError::InvalidInput(_))
        ));
    }
}
