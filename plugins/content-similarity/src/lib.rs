//! `content-similarity`: Sørensen–Dice coefficient over character bigrams
//! between the reference and the output, as string-similarity's
//! `compareTwoStrings` (the function Mastra's content-similarity scorer uses).
//!
//! With the defaults the score equals `compareTwoStrings`: whitespace is
//! removed from both texts, identical texts (including two empty ones) score
//! 1, a text shorter than 2 chars scores 0, else the score is
//! `2 * |common bigrams| / (bigrams(a) + bigrams(b))`, bigrams counted with
//! multiplicity. Texts are compared in chars (string-similarity counts UTF-16
//! units; the two agree outside the astral planes).
//!
//! Options: `ignoreCase` (default true) lowercases both texts;
//! `ignoreWhitespace` (default true) removes whitespace before forming
//! bigrams, `false` keeps it, so that spacing differences count. The
//! reference is the ground truth when the item has one, else the item's
//! input (Mastra compares input and output); `against: "ground-truth" |
//! "input"` forces one. A missing output scores 0.

use std::collections::HashMap;

use assay_plugin_sdk::prelude::*;
use serde::Deserialize;

/// The content-similarity scorer.
pub struct ContentSimilarity;

/// Config of [`ContentSimilarity`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// The reference; by default the ground truth when present, else the input.
    pub against: Option<Against>,
    /// Lowercase both texts first (default true).
    pub ignore_case: bool,
    /// Remove whitespace before forming bigrams (default true).
    pub ignore_whitespace: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            against: None,
            ignore_case: true,
            ignore_whitespace: true,
        }
    }
}

/// Dice's coefficient over char bigrams of two already-normalized texts,
/// with `compareTwoStrings`'s rules for equal and very short texts.
pub fn dice(a: &[char], b: &[char]) -> f64 {
    if a == b {
        return 1.0;
    }
    if a.len() < 2 || b.len() < 2 {
        return 0.0;
    }
    let mut first: HashMap<(char, char), usize> = HashMap::new();
    for w in a.windows(2) {
        *first.entry((w[0], w[1])).or_default() += 1;
    }
    let mut common = 0;
    for w in b.windows(2) {
        if let Some(count) = first.get_mut(&(w[0], w[1])).filter(|c| **c > 0) {
            *count -= 1;
            common += 1;
        }
    }
    2.0 * common as f64 / (a.len() + b.len() - 2) as f64
}

impl Config {
    fn normalize(&self, text: &str) -> Vec<char> {
        let text = if self.ignore_case {
            text.to_lowercase()
        } else {
            text.to_owned()
        };
        text.chars()
            .filter(|c| !(self.ignore_whitespace && c.is_whitespace()))
            .collect()
    }
}

impl Scorer for ContentSimilarity {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "content-similarity",
            "Content similarity",
            "Dice coefficient over character bigrams between the output and the ground truth (else the input); options ignoreCase, ignoreWhitespace (both default true).",
        )
    }

    fn score(input: ScoreInput) -> Result<Score, PluginError> {
        let config: Config = input.config()?;
        let reference = config.normalize(&input.reference_text(config.against)?);
        let Some(output) = input.output_text() else {
            return Ok(Score::new(0.0).with_reason("the target produced no output"));
        };
        let similarity = dice(&reference, &config.normalize(&output));
        Ok(Score::new(similarity).with_reason(format!("bigram similarity {similarity:.3}")))
    }
}

export_scorer!(ContentSimilarity);

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
        testing::score::<ContentSimilarity>(
            &ScoreInput::new(item)
                .with_output(output)
                .with_config(config),
        )
    }

    fn sim(a: &str, b: &str) -> f64 {
        score(
            json!(""),
            Some(json!(a)),
            json!(b),
            json!({"ignoreCase": false}),
        )
        .unwrap()
        .value
    }

    /// Values from string-similarity's README and tests.
    #[test]
    fn matches_compare_two_strings() {
        assert_eq!(sim("french", "quebec"), 0.0);
        assert_eq!(sim("france", "france"), 1.0);
        assert!((sim("fRaNce", "france") - 0.2).abs() < 1e-12);
        assert!((sim("healed", "sealed") - 0.8).abs() < 1e-12);
        assert!(
            (sim("web applications", "applications of the web") - 0.7878787878787878).abs() < 1e-12
        );
        assert!(
            (sim(
                "this will have a typo somewhere",
                "this will huve a typo somewhere"
            ) - 0.92)
                .abs()
                < 1e-12
        );
        assert_eq!(sim("", ""), 1.0);
        assert_eq!(sim("a", "a"), 1.0);
        assert_eq!(sim("a", "b"), 0.0);
        assert_eq!(sim("", "a"), 0.0);
        // Whitespace is removed, so these are identical.
        assert_eq!(sim("a b c", "abc"), 1.0);
    }

    #[test]
    fn options() {
        let out = json!("Hello World");
        assert_eq!(
            score(
                json!(""),
                Some(json!("hello world")),
                out.clone(),
                Value::Null
            )
            .unwrap()
            .value,
            1.0
        );
        let kept = json!({"ignoreWhitespace": false});
        assert!(
            score(json!(""), Some(json!("helloworld")), out, kept)
                .unwrap()
                .value
                < 1.0
        );
    }

    #[test]
    fn reference_selection() {
        // No ground truth: compares with the input, as Mastra does.
        assert_eq!(
            score(json!("same text"), None, json!("same text"), Value::Null)
                .unwrap()
                .value,
            1.0
        );
        // Ground truth wins over the input unless `against` says otherwise.
        let s = score(
            json!("same text"),
            Some(json!("zzz")),
            json!("same text"),
            Value::Null,
        )
        .unwrap();
        assert_eq!(s.value, 0.0);
        let s = score(
            json!("same text"),
            Some(json!("zzz")),
            json!("same text"),
            json!({"against": "input"}),
        );
        assert_eq!(s.unwrap().value, 1.0);
        let err = score(
            json!("x"),
            None,
            json!("x"),
            json!({"against": "ground-truth"}),
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(_)));
    }
}
