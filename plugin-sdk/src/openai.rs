//! A client for OpenAI-compatible chat completions (`POST
//! {baseUrl}/chat/completions`: OpenAI, vLLM, Ollama, LM Studio, llama.cpp
//! server), shared by the shipped `openai-chat` target and `llm-judge`
//! scorer, and usable by any plugin.
//!
//! The API key is never in the plugin: [`Endpoint::api_key_secret`] names a
//! secret, sent as `Authorization: Bearer {{secret.NAME}}`, which the host
//! substitutes after the plugin has handed the request over.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::PluginError;
use crate::http::Request;

/// Where and how to reach the server. Plugins build it from their own
/// config fields (see [`DEFAULT_BASE_URL`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The API's base URL, up to and including `/v1`.
    pub base_url: String,
    /// The model to ask.
    pub model: String,
    /// A secret holding the API key (`None`: no `Authorization` header, as
    /// local servers need).
    pub api_key_secret: Option<String>,
    /// More request headers; values may contain `{{secret.NAME}}`.
    pub headers: BTreeMap<String, String>,
}

/// OpenAI's API, the base URL when a config names none.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Sampling options.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sampling {
    /// `temperature` (server default when `None`).
    pub temperature: Option<f64>,
    /// `max_tokens` (server default when `None`).
    pub max_tokens: Option<u32>,
}

/// Token counts as the server reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Tokens of the messages sent.
    pub prompt_tokens: u64,
    /// Tokens of the answer.
    pub completion_tokens: u64,
    /// Both.
    pub total_tokens: u64,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The first choice's message text.
    pub text: String,
    /// The model that answered, as the server names it.
    pub model: Option<String>,
    /// Why it stopped (`stop`, `length`, ...).
    pub finish_reason: Option<String>,
    /// Token usage, when reported.
    pub usage: Option<Usage>,
}

impl Answer {
    /// `{"usage": {...}, "model": ..., "finishReason": ...}`: what network
    /// targets put in a result's metadata (the host sums `usage` per run).
    pub fn metadata(&self) -> Value {
        json!({
            "usage": self.usage,
            "model": self.model,
            "finishReason": self.finish_reason,
        })
    }
}

/// Asks `endpoint` for a completion of `messages`. Errors are the
/// [`crate::http`] module's: 429, 5xx, timeouts transient; other 4xx
/// failed with the server's message; an answer without a choice failed.
pub fn chat(
    endpoint: &Endpoint,
    messages: &[Message],
    sampling: Sampling,
) -> Result<Answer, PluginError> {
    if endpoint.model.trim().is_empty() {
        return Err(PluginError::invalid_input("config `model` is empty"));
    }
    let url = format!(
        "{}/chat/completions",
        endpoint.base_url.trim_end_matches('/')
    );
    let mut body = json!({"model": endpoint.model, "messages": messages});
    if let Some(t) = sampling.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(n) = sampling.max_tokens {
        body["max_tokens"] = json!(n);
    }
    let mut request = Request::post(url).header("content-type", "application/json");
    if let Some(secret) = &endpoint.api_key_secret {
        request = request.header("authorization", format!("Bearer {{{{secret.{secret}}}}}"));
    }
    for (name, value) in &endpoint.headers {
        request = request.header(name.clone(), value.clone());
    }
    let response = request.json(&body).send()?.error_for_status()?;
    let reply: Value = response.json()?;
    parse_answer(&reply)
}

/// The answer in a chat completions response body.
pub fn parse_answer(reply: &Value) -> Result<Answer, PluginError> {
    let choice = reply["choices"].get(0).ok_or_else(|| {
        PluginError::failed(format!(
            "the server answered without a choice: {}",
            crate::http::error_message(reply.to_string().as_bytes()).unwrap_or_default()
        ))
    })?;
    let text = match &choice["message"]["content"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    let usage = reply.get("usage").filter(|u| u.is_object()).map(|u| Usage {
        prompt_tokens: count(&u["prompt_tokens"]),
        completion_tokens: count(&u["completion_tokens"]),
        total_tokens: count(&u["total_tokens"]),
    });
    Ok(Answer {
        text,
        model: reply["model"].as_str().map(str::to_string),
        finish_reason: choice["finish_reason"].as_str().map(str::to_string),
        usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_with_usage_and_model() {
        let reply = json!({
            "model": "m1",
            "choices": [{"message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        });
        let a = parse_answer(&reply).unwrap();
        assert_eq!(a.text, "4");
        assert_eq!(a.model.as_deref(), Some("m1"));
        assert_eq!(
            a.usage,
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 1,
                total_tokens: 6
            })
        );
        assert_eq!(a.metadata()["usage"]["totalTokens"], 6);
    }

    #[test]
    fn an_answer_without_a_choice_is_a_failure() {
        let err = parse_answer(&json!({"choices": []})).unwrap_err();
        assert!(err.message().contains("without a choice"), "{err}");
    }
}
