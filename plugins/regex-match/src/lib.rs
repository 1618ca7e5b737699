//! `regex` (crate `regex-match`, since a package named `regex` would clash
//! with the `regex` crate on the cargo command line): 1 when the output's text matches the config `pattern`, else 0.
//!
//! Config: `{"pattern": "...", "ignoreCase"?: bool, "fullMatch"?: bool}`.
//! The syntax is that of the Rust `regex` crate (no look-around or
//! back-references; matching takes linear time, so a hostile pattern cannot
//! hang the scorer). `fullMatch` requires the whole text to match. A missing
//! or invalid pattern is invalid input naming `pattern`; a missing output
//! scores 0.

use assay_plugin_sdk::prelude::*;
use regex::RegexBuilder;
use serde::Deserialize;

/// The regex scorer.
pub struct RegexMatch;

/// Config of [`RegexMatch`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// The pattern (required).
    pub pattern: Option<String>,
    /// Match case-insensitively.
    pub ignore_case: bool,
    /// The whole output must match, not just a part of it.
    pub full_match: bool,
}

/// Compiled patterns larger than this are refused (regex's own default is 10 MiB).
const SIZE_LIMIT: usize = 1 << 20;

impl Scorer for RegexMatch {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "regex",
            "Regex",
            "1 when the output matches the config `pattern` (options: ignoreCase, fullMatch), else 0.",
        )
    }

    fn score(input: ScoreInput) -> Result<Score, PluginError> {
        let config: Config = input.config()?;
        let Some(pattern) = config.pattern else {
            return Err(PluginError::invalid_input("missing config `pattern`"));
        };
        let source = if config.full_match {
            format!(r"\A(?:{pattern})\z")
        } else {
            pattern.clone()
        };
        let regex = RegexBuilder::new(&source)
            .case_insensitive(config.ignore_case)
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| PluginError::invalid_input(format!("invalid config at `pattern`: {e}")))?;
        let Some(output) = input.output_text() else {
            return Ok(Score::new(0.0).with_reason("the target produced no output"));
        };
        let matched = regex.is_match(&output);
        let reason = if matched {
            format!("output matches /{pattern}/")
        } else {
            format!("output does not match /{pattern}/")
        };
        Ok(Score::from_bool(matched).with_reason(reason))
    }
}

export_scorer!(RegexMatch);

#[cfg(test)]
mod tests {
    use super::*;
    use assay_plugin_sdk::testing;

    fn score(output: Value, config: Value) -> Result<Score, PluginError> {
        let input = ScoreInput::new(Item::new("1", json!("q")))
            .with_output(output)
            .with_config(config);
        testing::score::<RegexMatch>(&input)
    }

    #[test]
    fn matches_anywhere_by_default() {
        let cfg = json!({"pattern": r"\d{3}-\d{4}"});
        assert_eq!(
            score(json!("call 555-1234 now"), cfg.clone())
                .unwrap()
                .value,
            1.0
        );
        assert_eq!(score(json!("call 55-1234 now"), cfg).unwrap().value, 0.0);
    }

    #[test]
    fn options() {
        assert_eq!(
            score(json!("HELLO"), json!({"pattern": "hello"}))
                .unwrap()
                .value,
            0.0
        );
        assert_eq!(
            score(
                json!("HELLO"),
                json!({"pattern": "hello", "ignoreCase": true})
            )
            .unwrap()
            .value,
            1.0
        );
        let full = json!({"pattern": "a|b", "fullMatch": true});
        assert_eq!(score(json!("b"), full.clone()).unwrap().value, 1.0);
        assert_eq!(score(json!("ab"), full).unwrap().value, 0.0);
    }

    #[test]
    fn non_string_output_matches_its_json() {
        assert_eq!(
            score(json!({"ok": true}), json!({"pattern": r#""ok":true"#}))
                .unwrap()
                .value,
            1.0
        );
    }

    #[test]
    fn missing_or_bad_pattern_is_invalid_input_naming_it() {
        let err = score(json!("x"), Value::Null).unwrap_err();
        assert!(
            matches!(err, PluginError::InvalidInput(_)) && err.message().contains("pattern"),
            "{err}"
        );
        let err = score(json!("x"), json!({"pattern": "(unclosed"})).unwrap_err();
        assert!(
            matches!(err, PluginError::InvalidInput(_)) && err.message().contains("`pattern`"),
            "{err}"
        );
    }

    #[test]
    fn huge_patterns_are_refused() {
        let err = score(json!("x"), json!({"pattern": "\\w{1000}{1000}"})).unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(_)), "{err}");
    }
}
