//! Scorers: the [`Scorer`] trait, its input [`ScoreInput`] and result [`Score`].

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::item::{from_value, json_text, parse_config};
use crate::{Item, PluginError, PluginInfo};

/// A scorer grades a target's output for one item with a score in [0, 1].
///
/// Implement it on a unit struct and export it with
/// [`export_scorer!`](crate::export_scorer). Every call runs in a fresh
/// sandbox, so there is no `self`: a scorer keeps no state between items.
pub trait Scorer {
    /// Describes this scorer (its `id` is the name runs use).
    fn info() -> PluginInfo;

    /// Scores one item's output.
    fn score(input: ScoreInput) -> Result<Score, PluginError>;
}

/// Which text of an item a scorer compares the output with (config field
/// `against`: `"ground-truth"` or `"input"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Against {
    /// The item's ground truth (invalid input when it has none).
    GroundTruth,
    /// The item's input.
    Input,
}

/// Everything a scorer gets for one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreInput {
    /// The dataset item.
    pub item: Item,
    /// The target's output; `None` when the target produced none (it failed).
    pub output: Option<Value>,
    /// The run's config for this scorer, if any.
    pub config: Option<Value>,
}

impl ScoreInput {
    /// An input for `item` with no output and no config.
    pub fn new(item: Item) -> Self {
        Self {
            item,
            output: None,
            config: None,
        }
    }

    /// Sets the output (builder style, handy in tests).
    pub fn with_output(mut self, output: Value) -> Self {
        self.output = Some(output);
        self
    }

    /// Sets the config (builder style, handy in tests).
    pub fn with_config(mut self, config: Value) -> Self {
        self.config = Some(config);
        self
    }

    /// The config as your own type; absent or `null` config gives
    /// `T::default()`. A config that does not fit is an invalid-input error
    /// naming the field, e.g. ``invalid config at `ignoreCase`: invalid type: ...``.
    pub fn config<T: DeserializeOwned + Default>(&self) -> Result<T, PluginError> {
        parse_config(self.config.as_ref())
    }

    /// The output as text: a JSON string is its text, any other value its
    /// compact JSON; `None` when there is no output.
    pub fn output_text(&self) -> Option<String> {
        self.output.as_ref().map(json_text)
    }

    /// The ground truth as text (like [`output_text`](Self::output_text)).
    pub fn ground_truth_text(&self) -> Option<String> {
        self.item.ground_truth_text()
    }

    /// The text an output is compared with: the ground truth when the item
    /// has one, else the item's input, unless `against` picks one (asking for
    /// a ground truth the item lacks is an invalid-input error).
    pub fn reference_text(&self, against: Option<Against>) -> Result<String, PluginError> {
        let truth = self.item.ground_truth.as_ref().filter(|v| !v.is_null());
        match (against, truth) {
            (Some(Against::GroundTruth), _) => Ok(json_text(self.item.require_ground_truth()?)),
            (None, Some(truth)) => Ok(json_text(truth)),
            (Some(Against::Input), _) | (None, None) => Ok(self.item.input_text()),
        }
    }

    /// The output deserialized into your own type; a missing output or one
    /// that does not fit is an invalid-input error.
    pub fn output_as<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        match &self.output {
            Some(output) => from_value("output", output),
            None => Err(PluginError::invalid_input("the target produced no output")),
        }
    }

    /// The ground truth deserialized into your own type; a missing ground
    /// truth or one that does not fit is an invalid-input error.
    pub fn ground_truth_as<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        from_value("ground truth", self.item.require_ground_truth()?)
    }
}

/// A score in [0, 1] (0 worst, 1 best) with an optional reason and metadata.
///
/// Construction never fails; a value that is NaN or outside [0, 1] is turned
/// into a `failed` error when the score leaves the plugin (see
/// [`Score::check`]), so a bug in a scorer is reported, never stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The score.
    pub value: f64,
    /// Why this score (shown next to it in results).
    pub reason: Option<String>,
    /// Extra structured detail.
    pub metadata: Option<Value>,
}

impl Score {
    /// A score of `value`, which must be in [0, 1].
    pub fn new(value: f64) -> Self {
        Self {
            value,
            reason: None,
            metadata: None,
        }
    }

    /// 1 for `true`, 0 for `false`.
    pub fn from_bool(pass: bool) -> Self {
        Self::new(if pass { 1.0 } else { 0.0 })
    }

    /// Adds a reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds structured metadata.
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Checks the value is a number in [0, 1]; the export shim runs this on
    /// every score, and [`testing::score`](crate::testing::score) does too.
    pub fn check(&self) -> Result<(), PluginError> {
        if (0.0..=1.0).contains(&self.value) {
            Ok(())
        } else {
            Err(PluginError::failed(format!(
                "score {} is outside [0, 1]",
                self.value
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn texts() {
        let input = ScoreInput::new(Item::new("1", json!("q")).with_ground_truth(json!(42)))
            .with_output(json!({"a": [1, 2]}));
        assert_eq!(input.output_text().as_deref(), Some(r#"{"a":[1,2]}"#));
        assert_eq!(input.ground_truth_text().as_deref(), Some("42"));
        assert_eq!(
            ScoreInput::new(Item::new("1", json!(null))).output_text(),
            None
        );
    }

    #[test]
    fn typed_output_and_ground_truth() {
        #[derive(Debug, serde::Deserialize)]
        struct Answer {
            city: String,
        }
        let input =
            ScoreInput::new(Item::new("1", json!("q"))).with_output(json!({"city": "Paris"}));
        assert_eq!(input.output_as::<Answer>().unwrap().city, "Paris");
        let err = input.ground_truth_as::<Answer>().unwrap_err();
        assert!(err.message().contains("no ground truth"), "{err}");
        let bad = input.clone().with_output(json!({"city": 3}));
        let err = bad.output_as::<Answer>().unwrap_err();
        assert!(err.message().contains("`city`"), "{err}");
    }

    #[test]
    fn score_range_is_checked() {
        assert!(Score::new(0.0).check().is_ok());
        assert!(Score::new(1.0).check().is_ok());
        assert!(
            Score::new(1.5)
                .check()
                .unwrap_err()
                .message()
                .contains("1.5")
        );
        assert!(Score::new(-0.1).check().is_err());
        assert!(
            Score::new(f64::NAN)
                .check()
                .unwrap_err()
                .message()
                .contains("NaN")
        );
        assert!(Score::new(f64::INFINITY).check().is_err());
    }

    #[test]
    fn builders() {
        let s = Score::from_bool(true)
            .with_reason("equal")
            .with_metadata(json!({"k": 1}));
        assert_eq!(s.value, 1.0);
        assert_eq!(s.reason.as_deref(), Some("equal"));
        assert_eq!(Score::from_bool(false).value, 0.0);
    }
}
