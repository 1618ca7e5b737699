//! `exact-match`: 1 when the output's text equals the ground truth's text, else 0.
//!
//! Config (all optional): `{"ignoreCase": bool, "ignoreWhitespace": bool}`.
//! `ignoreWhitespace` trims both ends and collapses every run of whitespace
//! into one space. The text of a JSON value is the string itself for a
//! string, else its compact JSON. An item without ground truth is invalid
//! input; a missing output scores 0.

use assay_plugin_sdk::prelude::*;
use serde::Deserialize;

/// The exact-match scorer.
pub struct ExactMatch;

/// Config of [`ExactMatch`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Compare case-insensitively.
    pub ignore_case: bool,
    /// Trim, and collapse runs of whitespace into one space, before comparing.
    pub ignore_whitespace: bool,
}

impl Config {
    fn normalize(&self, text: &str) -> String {
        let text = if self.ignore_whitespace {
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        } else {
            text.to_owned()
        };
        if self.ignore_case {
            text.to_lowercase()
        } else {
            text
        }
    }
}

impl Scorer for ExactMatch {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "exact-match",
            "Exact match",
            "1 when the output equals the ground truth (options: ignoreCase, ignoreWhitespace), else 0.",
        )
    }

    fn score(input: ScoreInput) -> Result<Score, PluginError> {
        let config: Config = input.config()?;
        let expected = json_text(input.item.require_ground_truth()?);
        let Some(output) = input.output_text() else {
            return Ok(Score::new(0.0).with_reason("the target produced no output"));
        };
        let equal = config.normalize(&output) == config.normalize(&expected);
        let reason = if equal {
            "output equals the ground truth"
        } else {
            "output differs from the ground truth"
        };
        Ok(Score::from_bool(equal).with_reason(reason))
    }
}

export_scorer!(ExactMatch);

#[cfg(test)]
mod tests {
    use super::*;
    use assay_plugin_sdk::testing;

    fn score(output: Value, truth: Value, config: Value) -> Result<Score, PluginError> {
        let item = Item::new("q1", json!("question")).with_ground_truth(truth);
        testing::score::<ExactMatch>(
            &ScoreInput::new(item)
                .with_output(output)
                .with_config(config),
        )
    }

    #[test]
    fn equal_strings_score_one_and_different_zero() {
        assert_eq!(
            score(json!("Paris"), json!("Paris"), Value::Null)
                .unwrap()
                .value,
            1.0
        );
        assert_eq!(
            score(json!("paris"), json!("Paris"), Value::Null)
                .unwrap()
                .value,
            0.0
        );
        assert_eq!(
            score(json!(" Paris"), json!("Paris"), Value::Null)
                .unwrap()
                .value,
            0.0
        );
    }

    #[test]
    fn options() {
        let both = json!({"ignoreCase": true, "ignoreWhitespace": true});
        assert_eq!(
            score(
                json!("  the   CITY\tof paris "),
                json!("The city of Paris"),
                both
            )
            .unwrap()
            .value,
            1.0
        );
        let case = json!({"ignoreCase": true});
        assert_eq!(
            score(json!("PARIS"), json!("paris"), case.clone())
                .unwrap()
                .value,
            1.0
        );
        assert_eq!(
            score(json!("PARIS "), json!("paris"), case).unwrap().value,
            0.0
        );
        let ws = json!({"ignoreWhitespace": true});
        assert_eq!(
            score(json!("a  b\n"), json!("a b"), ws.clone())
                .unwrap()
                .value,
            1.0
        );
        assert_eq!(score(json!("ab"), json!("a b"), ws).unwrap().value, 0.0);
    }

    #[test]
    fn non_string_values_compare_as_compact_json() {
        assert_eq!(score(json!(42), json!(42), Value::Null).unwrap().value, 1.0);
        assert_eq!(
            score(json!("42"), json!(42), Value::Null).unwrap().value,
            1.0
        );
        assert_eq!(
            score(json!({"a": [1, 2]}), json!({"a": [1, 2]}), Value::Null)
                .unwrap()
                .value,
            1.0
        );
        assert_eq!(
            score(json!({"a": 1}), json!({"a": 2}), Value::Null)
                .unwrap()
                .value,
            0.0
        );
    }

    #[test]
    fn missing_ground_truth_is_invalid_input() {
        let input = ScoreInput::new(Item::new("q7", json!("x"))).with_output(json!("x"));
        let err = testing::score::<ExactMatch>(&input).unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(_)), "{err:?}");
        assert!(err.message().contains("q7"));
    }

    #[test]
    fn missing_output_scores_zero() {
        let item = Item::new("q1", json!("x")).with_ground_truth(json!("x"));
        let s = testing::score::<ExactMatch>(&ScoreInput::new(item)).unwrap();
        assert_eq!(s.value, 0.0);
    }

    #[test]
    fn bad_config_names_the_field() {
        let err = score(json!("a"), json!("a"), json!({"ignoreCase": "yes"})).unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(_)));
        assert!(err.message().contains("ignoreCase"), "{err}");
    }
}
