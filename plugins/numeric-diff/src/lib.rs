//! `numeric-diff`: how close the output is to the ground truth as numbers.
//!
//! Both sides must be JSON numbers or strings holding a number (surrounding
//! whitespace allowed, e.g. `" 3.5 "`); anything else is invalid input. With
//! `o` the output, `g` the ground truth and `t` the config `tolerance`
//! (absolute, default 0):
//!
//! ```text
//! score = 1                                       if |o - g| <= t
//!       = max(0, 1 - |o - g| / max(|g|, 1e-9))    otherwise
//! ```
//!
//! so an output off by 10% of the truth scores 0.9 and one off by 100% or
//! more scores 0. With a ground truth of 0 any difference beyond the
//! tolerance scores 0: set a tolerance for such items. A missing output
//! scores 0.

use assay_plugin_sdk::prelude::*;
use serde::Deserialize;

/// The numeric-diff scorer.
pub struct NumericDiff;

/// Config of [`NumericDiff`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Absolute difference within which the score is 1.
    pub tolerance: f64,
}

/// Smallest denominator, so that a ground truth of 0 does not divide by zero.
const EPSILON: f64 = 1e-9;

fn number(what: &str, value: &Value) -> Result<f64, PluginError> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(n) if n.is_finite() => Ok(n),
        _ => Err(PluginError::invalid_input(format!(
            "{what} is not a number: {}",
            truncate(&json_text(value))
        ))),
    }
}

fn truncate(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The score for output `o`, ground truth `g` and tolerance `t` (see the crate docs).
pub fn numeric_score(o: f64, g: f64, t: f64) -> f64 {
    let diff = (o - g).abs();
    if diff <= t {
        1.0
    } else {
        (1.0 - diff / g.abs().max(EPSILON)).max(0.0)
    }
}

impl Scorer for NumericDiff {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "numeric-diff",
            "Numeric difference",
            "max(0, 1 - |output - truth| / max(|truth|, 1e-9)), or 1 within the absolute `tolerance`; numbers or numeric strings.",
        )
    }

    fn score(input: ScoreInput) -> Result<Score, PluginError> {
        let config: Config = input.config()?;
        if !(config.tolerance >= 0.0 && config.tolerance.is_finite()) {
            return Err(PluginError::invalid_input(
                "invalid config at `tolerance`: must be a number >= 0",
            ));
        }
        let g = number("ground truth", input.item.require_ground_truth()?)?;
        let Some(output) = &input.output else {
            return Ok(Score::new(0.0).with_reason("the target produced no output"));
        };
        let o = number("output", output)?;
        let diff = (o - g).abs();
        Ok(Score::new(numeric_score(o, g, config.tolerance))
            .with_reason(format!("output {o}, expected {g}, difference {diff}"))
            .with_metadata(json!({ "output": o, "expected": g, "absoluteDiff": diff })))
    }
}

export_scorer!(NumericDiff);

#[cfg(test)]
mod tests {
    use super::*;
    use assay_plugin_sdk::testing;

    fn score(output: Value, truth: Value, config: Value) -> Result<Score, PluginError> {
        let item = Item::new("1", json!("q")).with_ground_truth(truth);
        testing::score::<NumericDiff>(
            &ScoreInput::new(item)
                .with_output(output)
                .with_config(config),
        )
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn relative_difference() {
        assert_eq!(
            score(json!(100), json!(100), Value::Null).unwrap().value,
            1.0
        );
        assert!(close(
            score(json!(90), json!(100), Value::Null).unwrap().value,
            0.9
        ));
        assert!(close(
            score(json!(110), json!(100), Value::Null).unwrap().value,
            0.9
        ));
        assert!(close(
            score(json!(-5), json!(-10), Value::Null).unwrap().value,
            0.5
        ));
        assert_eq!(
            score(json!(300), json!(100), Value::Null).unwrap().value,
            0.0
        );
    }

    #[test]
    fn numeric_strings() {
        assert!(close(
            score(json!(" 4.5 "), json!("5"), Value::Null)
                .unwrap()
                .value,
            0.9
        ));
        assert_eq!(
            score(json!("1e3"), json!(1000), Value::Null).unwrap().value,
            1.0
        );
    }

    #[test]
    fn tolerance_is_absolute() {
        let cfg = json!({"tolerance": 0.5});
        assert_eq!(
            score(json!(10.4), json!(10), cfg.clone()).unwrap().value,
            1.0
        );
        assert!(close(score(json!(11), json!(10), cfg).unwrap().value, 0.9));
        let err = score(json!(1), json!(1), json!({"tolerance": -1})).unwrap_err();
        assert!(err.message().contains("tolerance"));
    }

    #[test]
    fn zero_ground_truth() {
        assert_eq!(score(json!(0), json!(0), Value::Null).unwrap().value, 1.0);
        assert_eq!(
            score(json!(0.001), json!(0), Value::Null).unwrap().value,
            0.0
        );
        assert_eq!(
            score(json!(0.001), json!(0), json!({"tolerance": 0.01}))
                .unwrap()
                .value,
            1.0
        );
    }

    #[test]
    fn non_numbers_are_invalid_input() {
        for (output, truth) in [
            (json!("about five"), json!(5)),
            (json!(5), json!("five")),
            (json!([5]), json!(5)),
            (json!("NaN"), json!(5)),
            (json!("inf"), json!(5)),
        ] {
            let err = score(output.clone(), truth.clone(), Value::Null).unwrap_err();
            assert!(
                matches!(err, PluginError::InvalidInput(_)),
                "{output} vs {truth}: {err:?}"
            );
        }
        let err = score(json!("x"), json!(1), Value::Null).unwrap_err();
        assert!(err.message().starts_with("output"), "{err}");
    }
}
