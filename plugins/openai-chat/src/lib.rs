//! `openai-chat`: a target that asks any OpenAI-compatible chat completions
//! server (OpenAI, vLLM, Ollama, LM Studio, llama.cpp server) and returns
//! the answer's text. Token usage, the model the server reports and the
//! finish reason go into the result's metadata (the host sums usage per
//! run).
//!
//! Config:
//!
//! | field | meaning |
//! | --- | --- |
//! | `model` | the model (required) |
//! | `baseUrl` | the API up to `/v1` (default `https://api.openai.com/v1`) |
//! | `apiKeySecret` | the secret holding the API key, sent as `Authorization: Bearer {{secret.NAME}}` (none for local servers) |
//! | `headers` | more headers; values may use `{{secret.NAME}}` |
//! | `system` | a system prompt (optional) |
//! | `prompt` | the user message, a template over the item (default `{{input}}`; see `assay_plugin_sdk::template`) |
//! | `temperature`, `maxTokens` | sampling (server defaults when absent) |
//!
//! The operator grants the server's host (`assay plugin grant openai-chat
//! --host api.openai.com`); the key never enters the plugin.

use std::collections::BTreeMap;

use assay_plugin_sdk::openai::{self, DEFAULT_BASE_URL, Endpoint, Message, Sampling};
use assay_plugin_sdk::prelude::*;
use assay_plugin_sdk::template::render;
use serde::Deserialize;

/// The chat target.
pub struct OpenAiChat;

/// Config of [`OpenAiChat`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key_secret: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub system: Option<String>,
    pub prompt: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
}

impl Config {
    /// The endpoint the config names.
    pub fn endpoint(&self) -> Result<Endpoint, PluginError> {
        let model = self
            .model
            .clone()
            .ok_or_else(|| PluginError::invalid_input("config `model` is required"))?;
        Ok(Endpoint {
            base_url: self
                .base_url
                .clone()
                .unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            model,
            api_key_secret: self.api_key_secret.clone(),
            headers: self.headers.clone(),
        })
    }
}

/// The messages for `item`: the system prompt, then the rendered prompt.
pub fn messages(config: &Config, item: &Item) -> Result<Vec<Message>, PluginError> {
    let mut messages = Vec::new();
    if let Some(system) = &config.system {
        messages.push(Message::new("system", render(system, item)?));
    }
    let prompt = config.prompt.as_deref().unwrap_or("{{input}}");
    messages.push(Message::new("user", render(prompt, item)?));
    Ok(messages)
}

impl Target for OpenAiChat {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "openai-chat",
            "OpenAI-compatible chat",
            "Asks an OpenAI-compatible chat completions server (OpenAI, vLLM, Ollama, LM Studio, llama.cpp) with a prompt built from the item; the output is the answer's text, token usage goes into the metadata.",
        )
        .needs_host("api.openai.com")
        .needs_secret("OPENAI_API_KEY")
    }

    fn run(input: TargetInput) -> Result<TargetOutput, PluginError> {
        let config: Config = input.config()?;
        let endpoint = config.endpoint()?;
        let messages = messages(&config, &input.item)?;
        let sampling = Sampling {
            temperature: config.temperature,
            max_tokens: config.max_tokens,
        };
        let answer = openai::chat(&endpoint, &messages, sampling)?;
        Ok(TargetOutput::new(Value::String(answer.text.clone())).with_metadata(answer.metadata()))
    }
}

export_target!(OpenAiChat);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use assay_openai_stub::{BackgroundStub, Stub, StubConfig};
    use assay_plugin_sdk::{ErrorKind, testing};

    use super::*;

    fn input(stub: &Stub, config: Value) -> TargetInput {
        let mut c = json!({"model": "stub-model", "baseUrl": format!("{}/v1", stub.url())});
        c.as_object_mut()
            .unwrap()
            .extend(config.as_object().unwrap().clone());
        TargetInput::new(Item::new("1", json!({"question": "capital of France?"}))).with_config(c)
    }

    #[test]
    fn the_answer_is_the_output_and_usage_the_metadata() {
        let stub = BackgroundStub::start(StubConfig::default()).unwrap();
        let out = testing::run::<OpenAiChat>(&input(
            &stub,
            json!({"system": "be brief", "prompt": "Q: {{input.question}}", "temperature": 0}),
        ))
        .unwrap();
        assert_eq!(
            out.output,
            json!("Q: capital of France?"),
            "the stub echoes the prompt"
        );
        let meta = out.metadata.unwrap();
        assert_eq!(meta["model"], "stub-model");
        // Words, as the stub counts tokens: "be brief" + "Q: capital of
        // France?" in, the echo out.
        assert_eq!(meta["usage"]["promptTokens"], 6, "{meta}");
        assert_eq!(meta["usage"]["completionTokens"], 4);
        assert_eq!(meta["usage"]["totalTokens"], 10);
        assert_eq!(meta["finishReason"], "stop");
    }

    #[test]
    fn the_key_is_a_secret_reference_never_a_value() {
        let stub = BackgroundStub::start(StubConfig::default()).unwrap();
        testing::run::<OpenAiChat>(&input(&stub, json!({"apiKeySecret": "OPENAI_API_KEY"})))
            .unwrap();
        // Natively nothing substitutes it: the plugin sent the reference.
        assert_eq!(
            stub.stats().authorizations,
            ["Bearer {{secret.OPENAI_API_KEY}}"]
        );
    }

    #[test]
    fn rate_limits_and_server_errors_are_transient_client_errors_failed() {
        let throttling = BackgroundStub::start(StubConfig {
            fail_first: 1,
            retry_after_secs: Some(1),
            ..StubConfig::default()
        })
        .unwrap();
        let err = testing::run::<OpenAiChat>(&input(&throttling, json!({}))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
        assert!(err.message().contains("429"), "{err}");

        let failing = BackgroundStub::start(StubConfig {
            fail_first: 1,
            fail_status: Some(500),
            ..StubConfig::default()
        })
        .unwrap();
        let err = testing::run::<OpenAiChat>(&input(&failing, json!({}))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient, "{err}");

        let locked = BackgroundStub::start(StubConfig {
            api_key: Some("right".into()),
            ..StubConfig::default()
        })
        .unwrap();
        let err = testing::run::<OpenAiChat>(&input(&locked, json!({}))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Failed, "{err}");
        assert!(err.message().contains("Incorrect API key"), "{err}");
    }

    #[test]
    fn bad_configs_are_invalid_input_naming_the_field() {
        let item = Item::new("1", json!("x"));
        let no_model = TargetInput::new(item.clone()).with_config(json!({}));
        let err = testing::run::<OpenAiChat>(&no_model).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("model"), "{err}");
        let typo = TargetInput::new(item).with_config(json!({"model": "m", "apiKey": "sk-1"}));
        let err = testing::run::<OpenAiChat>(&typo).unwrap_err();
        assert!(err.message().contains("apiKey"), "{err}");
    }

    #[test]
    fn a_slow_server_is_waited_for() {
        let slow = BackgroundStub::start(StubConfig {
            latency: Duration::from_millis(100),
            ..StubConfig::default()
        })
        .unwrap();
        assert!(testing::run::<OpenAiChat>(&input(&slow, json!({}))).is_ok());
    }
}
