//! `keyword-coverage`: the fraction of the reference's keywords that the
//! output contains.
//!
//! Keywords, as Mastra's keyword-coverage scorer extracts them (with the
//! `keyword-extractor` options `remove_digits`, `return_changed_case`,
//! `remove_duplicates`): the text is lowercased and split into words at
//! whitespace and punctuation (`-` and `'` inside a word are kept, so
//! `well-known` and `don't` are words); English stopwords
//! ([`STOPWORDS`]) and all-digit words are dropped; duplicates count once.
//! Score = matched reference keywords / reference keywords; a reference
//! without keywords scores 1.
//!
//! The reference is the ground truth when the item has one, else the item's
//! input (Mastra compares input and output); `against: "ground-truth" |
//! "input"` forces one. Metadata: `totalKeywords`, `matchedKeywords`, and
//! the reason lists up to 10 missing keywords. A missing output scores 0
//! unless the reference has no keywords.

mod stopwords;

use std::collections::BTreeSet;

use assay_plugin_sdk::prelude::*;
use serde::Deserialize;

pub use stopwords::STOPWORDS;

/// The keyword-coverage scorer.
pub struct KeywordCoverage;

/// Config of [`KeywordCoverage`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// The reference; by default the ground truth when present, else the input.
    pub against: Option<Against>,
}

/// The keywords of `text` (see the crate docs), sorted.
pub fn keywords(text: &str) -> BTreeSet<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\'' || c == '’'))
        .map(|w| {
            w.trim_matches(|c: char| c == '-' || c == '\'' || c == '’')
                .replace('’', "'")
        })
        .filter(|w| !w.is_empty())
        .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
        .filter(|w| STOPWORDS.binary_search(&w.as_str()).is_err())
        .collect()
}

impl Scorer for KeywordCoverage {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "keyword-coverage",
            "Keyword coverage",
            "Fraction of the ground truth's (else the input's) keywords, stopwords removed, that the output contains.",
        )
    }

    fn score(input: ScoreInput) -> Result<Score, PluginError> {
        let config: Config = input.config()?;
        let expected = keywords(&input.reference_text(config.against)?);
        if expected.is_empty() {
            return Ok(Score::new(1.0)
                .with_reason("the reference has no keywords")
                .with_metadata(json!({ "totalKeywords": 0, "matchedKeywords": 0 })));
        }
        let found = keywords(&input.output_text().unwrap_or_default());
        let missing: Vec<&str> = expected.difference(&found).map(String::as_str).collect();
        let matched = expected.len() - missing.len();
        let reason = if missing.is_empty() {
            format!("output covers all {} keywords", expected.len())
        } else {
            let listed: Vec<&str> = missing.iter().take(10).copied().collect();
            format!(
                "output covers {matched} of {} keywords; missing: {}",
                expected.len(),
                listed.join(", ")
            )
        };
        Ok(Score::new(matched as f64 / expected.len() as f64)
            .with_reason(reason)
            .with_metadata(json!({ "totalKeywords": expected.len(), "matchedKeywords": matched })))
    }
}

export_scorer!(KeywordCoverage);

#[cfg(test)]
mod tests {
    use super::*;
    use assay_plugin_sdk::testing;

    fn score(input: Value, truth: Option<Value>, output: Value) -> Score {
        let mut item = Item::new("1", input);
        item.ground_truth = truth;
        testing::score::<KeywordCoverage>(&ScoreInput::new(item).with_output(output)).unwrap()
    }

    #[test]
    fn extraction() {
        let words: Vec<String> =
            keywords("The 3 well-known React hooks, and Vue's 2 APIs! React again.")
                .into_iter()
                .collect();
        assert_eq!(words, ["apis", "hooks", "react", "vue's", "well-known"]);
        assert!(keywords("it is what it is, 42").is_empty());
    }

    #[test]
    fn stopword_list_is_sorted_for_binary_search() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    /// Mastra's documented examples (input as the reference).
    #[test]
    fn mastra_examples() {
        let s = score(
            json!("JavaScript frameworks like React and Vue"),
            None,
            json!("Popular JavaScript frameworks include React and Vue for web development"),
        );
        assert_eq!(s.value, 1.0);
        let s = score(
            json!("TypeScript offers interfaces, generics, and type inference"),
            None,
            json!("TypeScript provides type inference and some advanced features"),
        );
        // typescript, offers, interfaces, generics, type, inference: 3 of 6 covered.
        assert_eq!(s.value, 0.5);
        assert_eq!(
            s.metadata,
            Some(json!({"totalKeywords": 6, "matchedKeywords": 3}))
        );
        assert!(s.reason.unwrap().contains("generics"));
    }

    #[test]
    fn ground_truth_is_preferred_and_empty_reference_scores_one() {
        let s = score(
            json!("alpha beta"),
            Some(json!("gamma")),
            json!("alpha beta"),
        );
        assert_eq!(s.value, 0.0);
        let s = score(json!("alpha"), Some(json!("the of and")), json!("anything"));
        assert_eq!(s.value, 1.0);
        let item = Item::new("1", json!("alpha"));
        let s = testing::score::<KeywordCoverage>(&ScoreInput::new(item)).unwrap();
        assert_eq!(s.value, 0.0);
    }
}
