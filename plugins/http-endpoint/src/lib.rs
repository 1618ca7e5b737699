//! `http-endpoint`: a target that sends each item to the user's own
//! service (an agent endpoint, a deployed app) and picks the output from
//! the answer.
//!
//! Config:
//!
//! | field | meaning |
//! | --- | --- |
//! | `url` | the endpoint (required); `{{...}}` placeholders over the item are filled (see `assay_plugin_sdk::template`) |
//! | `method` | `POST` (default; the body is the item input as JSON) or `GET` (no body) |
//! | `headers` | request headers; values may use `{{secret.NAME}}` |
//! | `output` | a JSON pointer into the answer (`/answer/text`); default: the whole answer |
//!
//! A JSON answer is parsed; any other answer is its text. The operator
//! grants the endpoint's host (`assay plugin grant http-endpoint --host
//! agents.example.com`). 429, 5xx and timeouts are transient (retried);
//! other 4xx fail with the service's message.

use std::collections::BTreeMap;

use assay_plugin_sdk::http::{Method, Request};
use assay_plugin_sdk::prelude::*;
use assay_plugin_sdk::template::render;
use serde::Deserialize;

/// The endpoint target.
pub struct HttpEndpoint;

/// Config of [`HttpEndpoint`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    pub url: Option<String>,
    pub method: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub output: Option<String>,
}

/// The answer's part that `pointer` names (the whole answer without one).
pub fn pick(answer: Value, pointer: Option<&str>) -> Result<Value, PluginError> {
    let Some(pointer) = pointer.filter(|p| !p.is_empty()) else {
        return Ok(answer);
    };
    if !pointer.starts_with('/') {
        return Err(PluginError::invalid_input(format!(
            "config `output` {pointer:?} is not a JSON pointer (write it like /answer/text)"
        )));
    }
    answer.pointer(pointer).cloned().ok_or_else(|| {
        PluginError::failed(format!(
            "the answer has nothing at {pointer}: {}",
            assay_plugin_sdk::http::error_message(answer.to_string().as_bytes())
                .unwrap_or_default()
        ))
    })
}

impl Target for HttpEndpoint {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "http-endpoint",
            "HTTP endpoint",
            "Sends each item's input as JSON to your service (POST, or GET) and takes the output from its answer by a JSON pointer; headers may use secrets.",
        )
    }

    fn run(input: TargetInput) -> Result<TargetOutput, PluginError> {
        let config: Config = input.config()?;
        let Some(url) = &config.url else {
            return Err(PluginError::invalid_input("config `url` is required"));
        };
        let url = render(url, &input.item)?;
        let method = match config.method.as_deref().unwrap_or("POST") {
            m if m.eq_ignore_ascii_case("POST") => Method::Post,
            m if m.eq_ignore_ascii_case("GET") => Method::Get,
            other => {
                return Err(PluginError::invalid_input(format!(
                    "config `method` {other:?}: use POST or GET"
                )));
            }
        };
        let mut request = Request::new(method, url).header("accept", "application/json");
        for (name, value) in &config.headers {
            request = request.header(name.clone(), value.clone());
        }
        if method == Method::Post {
            request = request.json(&input.item.input);
        }
        let response = request.send()?.error_for_status()?;
        let answer = match response.json::<Value>() {
            Ok(json) => json,
            Err(_) => Value::String(response.text()),
        };
        let output = pick(answer, config.output.as_deref())?;
        Ok(TargetOutput::new(output).with_metadata(json!({"status": response.status})))
    }
}

export_target!(HttpEndpoint);

#[cfg(test)]
mod tests {
    use assay_openai_stub::{BackgroundStub, StubConfig};
    use assay_plugin_sdk::{ErrorKind, testing};

    use super::*;

    fn run(config: Value) -> Result<TargetOutput, PluginError> {
        let input =
            TargetInput::new(Item::new("7", json!({"question": "2+2?"}))).with_config(config);
        testing::run::<HttpEndpoint>(&input)
    }

    #[test]
    fn posts_the_input_and_picks_the_output_by_pointer() {
        let stub = BackgroundStub::start(StubConfig::default()).unwrap();
        let out = run(json!({
            "url": format!("{}/agent", stub.url()),
            "output": "/answer/text",
            "headers": {"authorization": "Bearer {{secret.AGENT_TOKEN}}"},
        }))
        .unwrap();
        assert_eq!(
            out.output,
            json!("2+2?"),
            "the stub's agent answers with the question"
        );
        assert_eq!(out.metadata, Some(json!({"status": 200})));
        assert_eq!(
            stub.stats().authorizations,
            ["Bearer {{secret.AGENT_TOKEN}}"]
        );
    }

    #[test]
    fn without_a_pointer_the_whole_answer_is_the_output() {
        let stub = BackgroundStub::start(StubConfig::default()).unwrap();
        let out = run(json!({"url": format!("{}/agent", stub.url())})).unwrap();
        assert_eq!(out.output, json!({"answer": {"text": "2+2?"}}));
    }

    #[test]
    fn the_url_is_a_template_and_get_sends_no_body() {
        let stub = BackgroundStub::start(StubConfig::default()).unwrap();
        let out = run(json!({
            "url": format!("{}/echo?item={{{{id}}}}", stub.url()),
            "method": "GET",
        }))
        .unwrap();
        assert_eq!(out.output["method"], "GET");
        assert_eq!(out.output["body"], "");
    }

    #[test]
    fn a_missing_pointer_target_fails_and_errors_map() {
        let stub = BackgroundStub::start(StubConfig::default()).unwrap();
        let err =
            run(json!({"url": format!("{}/agent", stub.url()), "output": "/nope"})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Failed);
        assert!(err.message().contains("/nope"), "{err}");
        let err =
            run(json!({"url": format!("{}/agent", stub.url()), "output": "nope"})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);

        let busy = BackgroundStub::start(StubConfig {
            fail_first: 1,
            fail_status: Some(503),
            ..StubConfig::default()
        })
        .unwrap();
        let err = run(json!({"url": format!("{}/agent", busy.url())})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
        let err = run(json!({"method": "DELETE", "url": "http://127.0.0.1:1/"})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = run(json!({})).unwrap_err();
        assert!(err.message().contains("url"), "{err}");
    }
}
