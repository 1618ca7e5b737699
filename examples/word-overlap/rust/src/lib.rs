//! Word overlap: the share of words the output and the ground truth have in
//! common (Jaccard index of their word sets). Words are runs of ASCII
//! letters and digits, compared case-insensitively; config `minWordLength`
//! (default 1) ignores shorter words. The Python and JavaScript versions
//! next to this folder give the same scores.

use std::collections::BTreeSet;

use assay_plugin_sdk::prelude::*;
use serde::Deserialize;

/// The word-overlap scorer.
pub struct WordOverlap;

/// Config of [`WordOverlap`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Words shorter than this (in characters) are ignored.
    pub min_word_length: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { min_word_length: 1 }
    }
}

fn words(text: &str, min_length: usize) -> BTreeSet<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && w.len() >= min_length)
        .map(str::to_ascii_lowercase)
        .collect()
}

impl Scorer for WordOverlap {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "word-overlap-rs",
            "Word overlap (Rust)",
            "Share of words the output and the ground truth have in common",
        )
    }

    fn score(input: ScoreInput) -> Result<Score, PluginError> {
        let config: Config = input.config()?;
        let truth = words(
            &json_text(input.item.require_ground_truth()?),
            config.min_word_length,
        );
        let Some(output) = input.output_text() else {
            return Ok(Score::new(0.0).with_reason("no output"));
        };
        let output = words(&output, config.min_word_length);
        let union = truth.union(&output).count();
        if union == 0 {
            return Ok(Score::new(1.0).with_reason("no words on either side"));
        }
        let shared = truth.intersection(&output).count();
        Ok(Score::new(shared as f64 / union as f64)
            .with_reason(format!("{shared} of {union} words shared")))
    }
}

export_scorer!(WordOverlap);

#[cfg(test)]
mod tests {
    use super::*;
    use assay_plugin_sdk::testing;

    fn score(
        output: Option<&str>,
        truth: Option<&str>,
        config: Value,
    ) -> Result<Score, PluginError> {
        let mut item = Item::new("item-1", json!(""));
        if let Some(t) = truth {
            item = item.with_ground_truth(json!(t));
        }
        let mut input = ScoreInput::new(item).with_config(config);
        if let Some(o) = output {
            input = input.with_output(json!(o));
        }
        testing::score::<WordOverlap>(&input)
    }

    #[test]
    fn identical_words_score_one() {
        let s = score(Some("Rome"), Some("rome"), Value::Null).unwrap();
        assert_eq!(s.value, 1.0);
        assert_eq!(s.reason.as_deref(), Some("1 of 1 words shared"));
    }

    #[test]
    fn partial_overlap_is_the_jaccard_index() {
        let s = score(
            Some("The capital of Italy is Rome."),
            Some("Rome"),
            Value::Null,
        )
        .unwrap();
        assert_eq!(s.value, 1.0 / 6.0);
    }

    #[test]
    fn min_word_length_ignores_short_words() {
        let s = score(
            Some("it is Rome"),
            Some("Rome"),
            json!({"minWordLength": 3}),
        )
        .unwrap();
        assert_eq!(s.value, 1.0);
    }

    #[test]
    fn no_ground_truth_is_invalid_input() {
        let err = score(Some("Rome"), None, Value::Null).unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(_)));
        assert!(
            err.message().contains("item `item-1` has no ground truth"),
            "{err}"
        );
    }

    #[test]
    fn unknown_config_field_is_invalid_input() {
        let err = score(Some("x"), Some("x"), json!({"minLength": 2})).unwrap_err();
        assert!(err.message().contains("minLength"), "{err}");
    }

    #[test]
    fn no_output_scores_zero() {
        assert_eq!(score(None, Some("Rome"), Value::Null).unwrap().value, 0.0);
    }
}
