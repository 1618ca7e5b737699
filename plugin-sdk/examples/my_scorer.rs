use assay_plugin_sdk::prelude::*;
use serde::Deserialize;

/// 1 when the output fits in `maxChars` characters, less the longer it gets.
pub struct MaxLength;

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    max_chars: Option<usize>,
}

impl Scorer for MaxLength {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "my-scorer",
            "Max length",
            "Penalizes outputs over maxChars chars",
        )
    }

    fn score(input: ScoreInput) -> Result<Score, PluginError> {
        let max = input.config::<Config>()?.max_chars.unwrap_or(280);
        let len = input.output_text().unwrap_or_default().chars().count();
        let value = if len <= max {
            1.0
        } else {
            max as f64 / len as f64
        };
        Ok(Score::new(value).with_reason(format!("{len} chars, limit {max}")))
    }
}

export_scorer!(MaxLength);

#[cfg(test)]
mod tests {
    use super::*;
    use assay_plugin_sdk::testing;

    fn score(output: &str, config: Value) -> Result<Score, PluginError> {
        let item = Item::new("item-1", json!("Summarize the report"));
        let input = ScoreInput::new(item)
            .with_output(json!(output))
            .with_config(config);
        testing::score::<MaxLength>(&input)
    }

    #[test]
    fn short_outputs_score_one() {
        assert_eq!(score("A short summary.", Value::Null).unwrap().value, 1.0);
    }

    #[test]
    fn long_outputs_score_less() {
        let s = score("0123456789", json!({"maxChars": 5})).unwrap();
        assert_eq!(s.value, 0.5);
        assert_eq!(s.reason.as_deref(), Some("10 chars, limit 5"));
    }

    #[test]
    fn bad_config_is_invalid_input() {
        let err = score("x", json!({"maxChars": "five"})).unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(_)));
        assert!(err.message().contains("maxChars"));
    }
}
