//! Parsers for option values: plugin configs (`JSON` or `key=value`),
//! durations (`30s`, `500ms`), score thresholds (`scorer=0.8`).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::dataset_file::parse_cell;

/// One `--target-config` / `--scorer-config` fragment: a whole JSON value,
/// or one `key=value` pair (dotted keys nest: `a.b=1`).
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigFragment {
    /// A JSON document (merged key by key when it is an object).
    Json(Value),
    /// `key=value`; the value reads as JSON when it looks like JSON
    /// (`true`, `3`, `{"a":1}`, `"quoted"`), else as a string.
    Pair(Vec<String>, Value),
}

impl ConfigFragment {
    /// Parses `{"mode":"x"}` or `mode=x`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let t = spec.trim();
        if t.starts_with('{') || t.starts_with('[') || t.starts_with('"') {
            return serde_json::from_str(t)
                .map(ConfigFragment::Json)
                .map_err(|e| format!("`{spec}` is not valid JSON: {e}"));
        }
        let Some((key, value)) = spec.split_once('=') else {
            return Err(format!(
                "`{spec}` is neither a JSON object nor `key=value` (example: mode=upper or '{{\"mode\":\"upper\"}}')"
            ));
        };
        let path: Vec<String> = key.trim().split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(format!("`{spec}` has an empty key"));
        }
        Ok(ConfigFragment::Pair(path, parse_cell(value)))
    }

    /// Applies this fragment on top of `config`.
    pub fn apply(self, config: &mut Option<Value>) -> Result<(), String> {
        match self {
            ConfigFragment::Json(Value::Object(obj)) => {
                let target = as_object(config)?;
                for (k, v) in obj {
                    target.insert(k, v);
                }
            }
            ConfigFragment::Json(other) => {
                if config.is_some() {
                    return Err(
                        "a config that is not a JSON object cannot be combined with other config values"
                            .into(),
                    );
                }
                *config = Some(other);
            }
            ConfigFragment::Pair(path, value) => {
                let mut target = as_object(config)?;
                let (last, parents) = path.split_last().expect("non-empty key");
                for key in parents {
                    let slot = target
                        .entry(key.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    target = slot
                        .as_object_mut()
                        .ok_or_else(|| format!("config key `{key}` is not an object"))?;
                }
                target.insert(last.clone(), value);
            }
        }
        Ok(())
    }
}

fn as_object(config: &mut Option<Value>) -> Result<&mut Map<String, Value>, String> {
    config
        .get_or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| "the config is not a JSON object; cannot add keys to it".to_string())
}

/// Builds a config from fragments, in order.
pub fn build_config(fragments: &[String]) -> Result<Option<Value>, String> {
    let mut config = None;
    for spec in fragments {
        ConfigFragment::parse(spec)?.apply(&mut config)?;
    }
    Ok(config)
}

/// A `--scorer-config` value: `SCORER:key=value`, `SCORER:{json}` or
/// `SCORER={json}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorerConfigArg {
    /// The scorer it is for (id, or the file given to `--scorer`).
    pub scorer: String,
    /// The config fragment.
    pub fragment: ConfigFragment,
}

/// Parses a `--scorer-config` value.
pub fn parse_scorer_config(spec: &str) -> Result<ScorerConfigArg, String> {
    let colon = spec.find(':');
    let equals = spec.find('=');
    let (scorer, rest) = match (colon, equals) {
        (Some(c), Some(e)) if c < e => (&spec[..c], &spec[c + 1..]),
        (Some(c), None) => (&spec[..c], &spec[c + 1..]),
        (_, Some(e)) => {
            let rest = spec[e + 1..].trim();
            if !rest.starts_with('{') {
                return Err(format!(
                    "`{spec}`: write SCORER:key=value or SCORER={{json}} (example: exact-match:ignoreCase=true)"
                ));
            }
            (&spec[..e], rest)
        }
        (None, None) => {
            return Err(format!(
                "`{spec}` names no scorer: write SCORER:key=value or SCORER={{json}} (example: exact-match:ignoreCase=true)"
            ));
        }
    };
    let scorer = scorer.trim();
    if scorer.is_empty() {
        return Err(format!("`{spec}` names no scorer"));
    }
    Ok(ScorerConfigArg {
        scorer: scorer.to_string(),
        fragment: ConfigFragment::parse(rest)?,
    })
}

/// Parses `250ms`, `30s`, `1.5s`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (examples: 500ms, 30s, 2m)"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" | "sec" | "secs" => value,
        "m" | "min" | "mins" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s, m or h)"
            ));
        }
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("`{text}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A `--fail-under` value: `SCORER=MIN`, or `MIN` for every scorer.
#[derive(Debug, Clone, PartialEq)]
pub struct MinScore {
    /// The scorer (`None`: every scorer of the run).
    pub scorer: Option<String>,
    /// The lowest acceptable mean, in [0, 1].
    pub min: f64,
}

/// Parses a `--fail-under` value.
pub fn parse_min_score(spec: &str) -> Result<MinScore, String> {
    let (scorer, number) = match spec.rsplit_once('=') {
        Some((s, n)) => (Some(s.trim().to_string()), n),
        None => (None, spec),
    };
    let min: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{spec}`: expected SCORER=MIN or MIN, e.g. exact-match=0.8"))?;
    if !(0.0..=1.0).contains(&min) {
        return Err(format!("`{spec}`: the minimum must be between 0 and 1"));
    }
    if scorer.as_deref() == Some("") {
        return Err(format!("`{spec}` names no scorer"));
    }
    Ok(MinScore { scorer, min })
}

/// A `--threshold` value of `runs compare`: `SCORER=TOLERANCE`, optionally
/// `SCORER=TOLERANCE:lower` for scorers where lower is better.
pub fn parse_compare_threshold(
    spec: &str,
) -> Result<(String, assay_runner::compare::Threshold), String> {
    use assay_runner::compare::{Direction, Threshold};
    let (scorer, rest) = spec
        .split_once('=')
        .ok_or_else(|| format!("`{spec}`: expected SCORER=TOLERANCE, e.g. exact-match=0.05"))?;
    let (number, direction) = match rest.split_once(':') {
        Some((n, "lower")) => (n, Direction::LowerIsBetter),
        Some((n, "higher")) => (n, Direction::HigherIsBetter),
        Some((_, other)) => {
            return Err(format!(
                "`{spec}`: unknown direction `{other}` (lower or higher)"
            ));
        }
        None => (rest, Direction::HigherIsBetter),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{spec}`: the tolerance must be a number"))?;
    if value < 0.0 {
        return Err(format!("`{spec}`: the tolerance cannot be negative"));
    }
    Ok((scorer.trim().to_string(), Threshold { value, direction }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configs_merge_json_and_pairs_in_order() {
        let config = build_config(&[
            r#"{"mode":"sleep","ms":10}"#.into(),
            "ms=300".into(),
            "nested.flag=true".into(),
            "name=Ada Lovelace".into(),
        ])
        .unwrap();
        assert_eq!(
            config,
            Some(
                json!({"mode": "sleep", "ms": 300, "nested": {"flag": true}, "name": "Ada Lovelace"})
            )
        );
        assert_eq!(build_config(&[]).unwrap(), None);
        assert!(build_config(&["novalue".into()]).is_err());
        assert!(build_config(&["{bad json".into()]).is_err());
    }

    #[test]
    fn scorer_configs_name_their_scorer() {
        let a = parse_scorer_config("exact-match:ignoreCase=true").unwrap();
        assert_eq!(a.scorer, "exact-match");
        assert_eq!(
            a.fragment,
            ConfigFragment::Pair(vec!["ignoreCase".into()], json!(true))
        );
        let b = parse_scorer_config(r#"regex={"pattern":"^a=b"}"#).unwrap();
        assert_eq!(b.scorer, "regex");
        assert_eq!(b.fragment, ConfigFragment::Json(json!({"pattern": "^a=b"})));
        let c = parse_scorer_config(r#"regex:{"pattern":"x"}"#).unwrap();
        assert_eq!(c.scorer, "regex");
        assert!(parse_scorer_config("ignoreCase=true").is_err());
        assert!(parse_scorer_config("nothing").is_err());
    }

    #[test]
    fn durations_accept_common_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn min_scores_are_checked() {
        assert_eq!(
            parse_min_score("exact-match=0.9").unwrap(),
            MinScore {
                scorer: Some("exact-match".into()),
                min: 0.9
            }
        );
        assert_eq!(parse_min_score("0.5").unwrap().scorer, None);
        assert!(parse_min_score("x=1.5").is_err());
        assert!(parse_min_score("x=abc").is_err());
    }
}
