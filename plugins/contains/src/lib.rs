//! `contains`: whether the output's text contains the expected text.
//!
//! The expected text comes from config `value` (a string, or an array of
//! strings), or else from the item's ground truth (a string, an array of
//! strings, or any other value compared as its compact JSON). With several
//! expected strings the score is the fraction of them that the output
//! contains. Option `ignoreCase` (default false). No expected text (no
//! `value`, no ground truth, or an empty array) is invalid input; a missing
//! output scores 0.

use assay_plugin_sdk::prelude::*;
use serde::Deserialize;

/// The contains scorer.
pub struct Contains;

/// Config of [`Contains`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// The expected text: a string or an array of strings. Defaults to the
    /// item's ground truth.
    pub value: Option<Expected>,
    /// Compare case-insensitively.
    pub ignore_case: bool,
}

/// One or several expected strings.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
pub enum Expected {
    /// One string.
    One(String),
    /// Several strings; the score is the fraction contained.
    Many(Vec<String>),
}

fn expected_from_ground_truth(truth: &Value) -> Vec<String> {
    match truth {
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().map(json_text).collect()
        }
        other => vec![json_text(other)],
    }
}

impl Scorer for Contains {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "contains",
            "Contains",
            "Fraction of the expected strings (config `value`, else the ground truth) that the output contains (option: ignoreCase).",
        )
    }

    fn score(input: ScoreInput) -> Result<Score, PluginError> {
        let config: Config = input.config()?;
        let expected = match config.value {
            Some(Expected::One(s)) => vec![s],
            Some(Expected::Many(v)) => v,
            None => expected_from_ground_truth(input.item.require_ground_truth()?),
        };
        if expected.is_empty() {
            return Err(PluginError::invalid_input(
                "no expected text: the list of values is empty",
            ));
        }
        let Some(output) = input.output_text() else {
            return Ok(Score::new(0.0).with_reason("the target produced no output"));
        };
        let fold = |s: &str| {
            if config.ignore_case {
                s.to_lowercase()
            } else {
                s.to_owned()
            }
        };
        let output = fold(&output);
        let missing: Vec<&String> = expected
            .iter()
            .filter(|e| !output.contains(&fold(e)))
            .collect();
        let found = expected.len() - missing.len();
        let reason = if missing.is_empty() {
            "output contains every expected text".to_owned()
        } else {
            let list: Vec<String> = missing.iter().take(5).map(|m| format!("{m:?}")).collect();
            format!(
                "output contains {found} of {}; missing: {}",
                expected.len(),
                list.join(", ")
            )
        };
        Ok(Score::new(found as f64 / expected.len() as f64).with_reason(reason))
    }
}

export_scorer!(Contains);

#[cfg(test)]
mod tests {
    use super::*;
    use assay_plugin_sdk::testing;

    fn score(output: Value, truth: Option<Value>, config: Value) -> Result<Score, PluginError> {
        let mut item = Item::new("q1", json!("question"));
        item.ground_truth = truth;
        testing::score::<Contains>(
            &ScoreInput::new(item)
                .with_output(output)
                .with_config(config),
        )
    }

    #[test]
    fn ground_truth_is_the_default_expected_text() {
        let out = json!("The capital of France is Paris.");
        assert_eq!(
            score(out.clone(), Some(json!("Paris")), Value::Null)
                .unwrap()
                .value,
            1.0
        );
        assert_eq!(
            score(out.clone(), Some(json!("paris")), Value::Null)
                .unwrap()
                .value,
            0.0
        );
        assert_eq!(
            score(out, Some(json!("paris")), json!({"ignoreCase": true}))
                .unwrap()
                .value,
            1.0
        );
    }

    #[test]
    fn config_value_overrides_ground_truth() {
        let out = json!("red green blue");
        assert_eq!(
            score(
                out.clone(),
                Some(json!("purple")),
                json!({"value": "green"})
            )
            .unwrap()
            .value,
            1.0
        );
        let s = score(
            out,
            None,
            json!({"value": ["red", "blue", "pink", "black"]}),
        )
        .unwrap();
        assert_eq!(s.value, 0.5);
        assert!(s.reason.unwrap().contains("\"pink\""));
    }

    #[test]
    fn array_ground_truth_scores_the_fraction() {
        let s = score(
            json!("alpha beta"),
            Some(json!(["alpha", "beta", "gamma"])),
            Value::Null,
        )
        .unwrap();
        assert!((s.value - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn non_string_values_use_compact_json() {
        assert_eq!(
            score(
                json!({"answer": 42, "ok": true}),
                Some(json!(42)),
                Value::Null
            )
            .unwrap()
            .value,
            1.0
        );
        assert_eq!(
            score(json!("the answer is 42"), Some(json!(42)), Value::Null)
                .unwrap()
                .value,
            1.0
        );
    }

    #[test]
    fn nothing_expected_is_invalid_input() {
        let err = score(json!("x"), None, Value::Null).unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(_)));
        let err = score(json!("x"), None, json!({"value": []})).unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(_)));
        let err = score(json!("x"), None, json!({"value": 3})).unwrap_err();
        assert!(err.message().contains("`value`"), "{err}");
    }
}
