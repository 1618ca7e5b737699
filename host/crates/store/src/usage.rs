//! Token usage a target reported for one item, read from the `usage`
//! object of its stored `target_metadata`.
//!
//! Network targets built on the SDK's `openai` module write
//! `{"usage": {"promptTokens": .., "completionTokens": .., "totalTokens": ..}}`;
//! a plugin that copies a provider's answer verbatim writes OpenAI's
//! `prompt_tokens`/`completion_tokens`/`total_tokens`, which are read too.
//! Metadata comes from plugins, so anything else (a negative count, a
//! string, a fraction) is not a count: such a field is left out rather than
//! guessed at, and a `usage` with no count at all is no usage.

use serde::Serialize;
use serde_json::Value;

/// Tokens one call (or a sum of calls) used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Tokens of the prompt (the messages sent).
    pub prompt_tokens: u64,
    /// Tokens of the answer.
    pub completion_tokens: u64,
    /// Both (as the server reported it, or their sum when it did not).
    pub total_tokens: u64,
}

impl TokenUsage {
    /// The usage in a target's metadata (`{"usage": {...}, ...}`), if it
    /// reported any.
    pub fn from_metadata(metadata: &Value) -> Option<Self> {
        Self::from_usage(metadata.get("usage")?)
    }

    /// A `usage` object itself (what the store reads out of the metadata).
    pub fn from_usage(usage: &Value) -> Option<Self> {
        let usage = usage.as_object()?;
        let count = |camel: &str, snake: &str| {
            usage
                .get(camel)
                .or_else(|| usage.get(snake))
                .and_then(Value::as_u64)
        };
        let prompt = count("promptTokens", "prompt_tokens");
        let completion = count("completionTokens", "completion_tokens");
        let total = count("totalTokens", "total_tokens");
        if prompt.is_none() && completion.is_none() && total.is_none() {
            return None;
        }
        let prompt_tokens = prompt.unwrap_or(0);
        let completion_tokens = completion.unwrap_or(0);
        Some(Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: total.unwrap_or(prompt_tokens.saturating_add(completion_tokens)),
        })
    }

    /// Adds `other` (saturating: plugin-reported numbers can be anything).
    pub fn add(&mut self, other: TokenUsage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
        self.total_tokens = self.total_tokens.saturating_add(other.total_tokens);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_sdk_shape_and_the_openai_shape_are_read() {
        let sdk = json!({"usage": {"promptTokens": 6, "completionTokens": 4, "totalTokens": 10}});
        let openai =
            json!({"usage": {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10}});
        let want = TokenUsage {
            prompt_tokens: 6,
            completion_tokens: 4,
            total_tokens: 10,
        };
        assert_eq!(TokenUsage::from_metadata(&sdk), Some(want));
        assert_eq!(TokenUsage::from_metadata(&openai), Some(want));
    }

    #[test]
    fn a_missing_total_is_the_sum_of_the_parts() {
        let m = json!({"usage": {"promptTokens": 6, "completionTokens": 4}});
        assert_eq!(TokenUsage::from_metadata(&m).unwrap().total_tokens, 10);
    }

    #[test]
    fn what_is_not_a_count_is_not_counted() {
        for m in [
            json!({"model": "m"}),
            json!({"usage": null}),
            json!({"usage": "10 tokens"}),
            json!({"usage": {"totalTokens": -3}}),
            json!({"usage": {"totalTokens": "10"}}),
            json!({"usage": {"totalTokens": 1.5}}),
            json!({"usage": {}}),
            json!([1, 2]),
        ] {
            assert_eq!(TokenUsage::from_metadata(&m), None, "{m}");
        }
        let m = json!({"usage": {"promptTokens": "many", "completionTokens": 4}});
        assert_eq!(
            TokenUsage::from_metadata(&m),
            Some(TokenUsage {
                prompt_tokens: 0,
                completion_tokens: 4,
                total_tokens: 4
            })
        );
    }

    #[test]
    fn sums_saturate() {
        let mut sum = TokenUsage {
            prompt_tokens: u64::MAX,
            completion_tokens: 1,
            total_tokens: u64::MAX,
        };
        sum.add(TokenUsage {
            prompt_tokens: 5,
            completion_tokens: 2,
            total_tokens: 7,
        });
        assert_eq!(sum.prompt_tokens, u64::MAX);
        assert_eq!(sum.completion_tokens, 3);
    }
}
