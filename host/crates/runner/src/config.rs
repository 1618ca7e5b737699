//! Run options: what a caller may tune for one run, with Mastra's defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::RunError;

/// Default number of items of one run in flight at once (Mastra: 5): the
/// API's default, and the command line's for a run that reaches the network
/// (a provider or service should not see more requests than asked for).
pub const DEFAULT_MAX_CONCURRENCY: usize = 5;
/// The command line's default for a run none of whose plugins may reach the
/// network. Such calls are pure CPU and the process's call slots already
/// bound how many execute at once (twice the cores), so more items in
/// flight only overlap the feed's and the writer's round trips: on 2 cores
/// a wasm-only run was fastest at 128 (about 2.7x its speed at 5, 20% above
/// 32 and 64), and slower at 256 (BENCHMARKS.md, "The command line's default
/// concurrency").
pub const DEFAULT_LOCAL_CONCURRENCY: usize = 128;
/// Upper bound accepted for `maxConcurrency`.
pub const MAX_CONCURRENCY_LIMIT: usize = 1024;
/// Upper bound accepted for `maxRetries`.
pub const MAX_RETRIES_LIMIT: u32 = 20;
/// Upper bound accepted for `repeat` (trials per item).
pub const MAX_REPEAT: u32 = 100;
/// Default delay before the first retry (Mastra: 1000 ms).
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(1000);
/// Longest single backoff wait, whatever the attempt number.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Tunable options of one run, stored with the run so a resumed run behaves
/// exactly as the original one.
///
/// JSON field names follow the HTTP API (`maxConcurrency`, `maxRetries`,
/// `retryDelay` and `itemTimeout` in milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunOptions {
    /// Items of this run executing at once.
    pub max_concurrency: usize,
    /// Retries of a target call that failed with a *transient* error.
    pub max_retries: u32,
    /// Base delay before retry `n` (0-based): `retryDelay * 2^n` plus jitter.
    #[serde(with = "millis")]
    pub retry_delay: Duration,
    /// Deadline for one item, covering every attempt and backoff.
    #[serde(with = "opt_millis", skip_serializing_if = "Option::is_none")]
    pub item_timeout: Option<Duration>,
    /// Per-call wall-clock limit of the target plugin.
    #[serde(with = "opt_millis", skip_serializing_if = "Option::is_none")]
    pub target_timeout: Option<Duration>,
    /// Per-call wall-clock limit of each scorer plugin.
    #[serde(with = "opt_millis", skip_serializing_if = "Option::is_none")]
    pub scorer_timeout: Option<Duration>,
    /// Linear memory cap of one plugin instance, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<usize>,
    /// How many times each item is executed (trials; 1: no repeats). See
    /// `docs/runs.md`, "Repeats and significance".
    #[serde(skip_serializing_if = "is_one")]
    pub repeat: u32,
    /// Config handed to the target plugin (JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_config: Option<serde_json::Value>,
    /// Config handed to each scorer plugin, by scorer id (JSON).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub scorer_configs: std::collections::BTreeMap<String, serde_json::Value>,
    /// The network grant each plugin of the run uses, by plugin id (the
    /// target's or a scorer's). A trigger asks for a narrowing of the
    /// plugin's stored grant; what is stored here is the narrowed grant
    /// (see [`crate::trigger::create_run`]). A plugin not listed uses its
    /// stored grant.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub network: std::collections::BTreeMap<String, assay_plugin_host::NetworkGrant>,
    /// Set only by the operator's own command line (`assay run
    /// --allow-host`): `network` is a grant in itself, not a narrowing of
    /// the stored grants. Never read from JSON.
    #[serde(skip)]
    pub network_from_operator: bool,
    /// Reuse a stored output of the same target, config and item instead of
    /// calling the target, and store the outputs of the calls made (see
    /// `docs/caching.md`). Off by default: a target whose answers vary must
    /// be called every time.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cache: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_retries: 0,
            retry_delay: DEFAULT_RETRY_DELAY,
            item_timeout: None,
            target_timeout: None,
            scorer_timeout: None,
            max_memory_bytes: None,
            repeat: 1,
            target_config: None,
            scorer_configs: Default::default(),
            network: Default::default(),
            network_from_operator: false,
            cache: false,
        }
    }
}

impl RunOptions {
    /// Checks that every number is in range, naming the offending field.
    pub fn validate(&self) -> Result<(), RunError> {
        let bad = |field: &str, message: String| {
            Err(RunError::InvalidOptions {
                field: field.to_string(),
                message,
            })
        };
        if self.max_concurrency == 0 || self.max_concurrency > MAX_CONCURRENCY_LIMIT {
            return bad(
                "maxConcurrency",
                format!("must be between 1 and {MAX_CONCURRENCY_LIMIT}"),
            );
        }
        if self.repeat == 0 || self.repeat > MAX_REPEAT {
            return bad("repeat", format!("must be between 1 and {MAX_REPEAT}"));
        }
        if self.repeat > 1 && self.cache {
            // Every trial would get the one cached output: no variance.
            return bad(
                "repeat",
                "cannot be combined with `cache` (every trial would reuse one cached output)"
                    .into(),
            );
        }
        if self.max_retries > MAX_RETRIES_LIMIT {
            return bad(
                "maxRetries",
                format!("must be between 0 and {MAX_RETRIES_LIMIT}"),
            );
        }
        if self.retry_delay > MAX_BACKOFF {
            return bad(
                "retryDelay",
                format!("must be at most {} ms", MAX_BACKOFF.as_millis()),
            );
        }
        for (field, value) in [
            ("itemTimeout", self.item_timeout),
            ("targetTimeout", self.target_timeout),
            ("scorerTimeout", self.scorer_timeout),
        ] {
            if let Some(d) = value
                && (d.is_zero() || d > Duration::from_secs(24 * 3600))
            {
                return bad(field, "must be between 1 ms and 24 hours".into());
            }
        }
        if let Some(m) = self.max_memory_bytes
            && !(1 << 20..=4 << 30).contains(&m)
        {
            return bad("maxMemoryBytes", "must be between 1 MiB and 4 GiB".into());
        }
        Ok(())
    }
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_millis() as u64),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_api_names_and_milliseconds() {
        let opts: RunOptions = serde_json::from_value(serde_json::json!({
            "maxConcurrency": 3, "maxRetries": 2, "retryDelay": 10, "itemTimeout": 2500
        }))
        .unwrap();
        assert_eq!(opts.max_concurrency, 3);
        assert_eq!(opts.max_retries, 2);
        assert_eq!(opts.retry_delay, Duration::from_millis(10));
        assert_eq!(opts.item_timeout, Some(Duration::from_millis(2500)));
        let back = serde_json::to_value(&opts).unwrap();
        assert_eq!(back["itemTimeout"], 2500);
    }

    #[test]
    fn out_of_range_numbers_name_the_field() {
        let opts = RunOptions {
            max_concurrency: 0,
            ..Default::default()
        };
        let err = opts.validate().unwrap_err().to_string();
        assert!(err.contains("maxConcurrency"), "{err}");
        let opts = RunOptions {
            max_retries: 99,
            ..Default::default()
        };
        assert!(
            opts.validate()
                .unwrap_err()
                .to_string()
                .contains("maxRetries")
        );
        assert!(RunOptions::default().validate().is_ok());
    }

    #[test]
    fn repeat_is_between_one_and_the_cap_and_one_is_not_stored() {
        for (repeat, ok) in [
            (0, false),
            (1, true),
            (MAX_REPEAT, true),
            (MAX_REPEAT + 1, false),
        ] {
            let opts = RunOptions {
                repeat,
                ..Default::default()
            };
            match opts.validate() {
                Ok(()) => assert!(ok, "{repeat} accepted"),
                Err(e) => {
                    assert!(!ok, "{repeat} refused: {e}");
                    let e = e.to_string();
                    assert!(e.contains("repeat") && e.contains("100"), "{e}");
                }
            }
        }
        let stored = serde_json::to_value(RunOptions::default()).unwrap();
        assert!(stored.get("repeat").is_none(), "{stored}");
        let read: RunOptions = serde_json::from_value(serde_json::json!({"repeat": 3})).unwrap();
        assert_eq!(read.repeat, 3);
        let cached = RunOptions {
            repeat: 2,
            cache: true,
            ..Default::default()
        };
        let e = cached.validate().unwrap_err().to_string();
        assert!(e.contains("repeat") && e.contains("cache"), "{e}");
    }
}
