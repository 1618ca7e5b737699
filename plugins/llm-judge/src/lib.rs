//! `llm-judge`: a scorer that asks an OpenAI-compatible model to grade the
//! target's output against a rubric, the item and its ground truth, and
//! returns the model's verdict: a score in [0, 1] and its reason.
//!
//! Config:
//!
//! | field | meaning |
//! | --- | --- |
//! | `rubric` | what a good output is (required) |
//! | `model`, `baseUrl`, `apiKeySecret`, `headers` | the judge's server, as for `openai-chat` |
//! | `temperature` | default 0 (a judge should be repeatable) |
//!
//! The judge is told to answer with JSON, `{"score": <0..1>, "reason":
//! "..."}`; the first JSON object in its answer is taken (models like to
//! wrap it in a code fence). An answer without a verdict, or a score
//! outside [0, 1], fails the item's score with the judge's text, never a
//! guessed number.

use std::collections::BTreeMap;

use assay_plugin_sdk::openai::{self, DEFAULT_BASE_URL, Endpoint, Message, Sampling};
use assay_plugin_sdk::prelude::*;
use serde::Deserialize;

/// The judge.
pub struct LlmJudge;

/// Config of [`LlmJudge`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    pub rubric: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key_secret: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub temperature: Option<f64>,
}

/// What the judge is told before the case.
pub const INSTRUCTIONS: &str = "You are an impartial judge of an AI system's output. \
Grade the output against the rubric, using the input and, when given, the expected output. \
Answer with a JSON object and nothing else: {\"score\": <a number from 0 (fails the rubric) to 1 (fully meets it)>, \"reason\": \"<one or two sentences>\"}";

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The user message: the rubric and the case.
pub fn case(rubric: &str, item: &Item, output: Option<&Value>) -> String {
    let mut out = format!("Rubric:\n{rubric}\n\nInput:\n{}\n\n", text(&item.input));
    if let Some(truth) = &item.ground_truth {
        out.push_str(&format!("Expected output:\n{}\n\n", text(truth)));
    }
    match output {
        Some(o) => out.push_str(&format!("Output to grade:\n{}\n", text(o))),
        None => out.push_str("Output to grade:\n(none: the system produced no output)\n"),
    }
    out
}

/// The verdict in the judge's answer: its first JSON object with a
/// `score` in [0, 1].
pub fn verdict(answer: &str) -> Result<(f64, Option<String>), PluginError> {
    let unusable = |why: &str| {
        PluginError::failed(format!(
            "the judge's answer is not a verdict ({why}): {}",
            answer.chars().take(300).collect::<String>()
        ))
    };
    let object = first_json_object(answer).ok_or_else(|| unusable("no JSON object"))?;
    let score = object
        .get("score")
        .and_then(Value::as_f64)
        .ok_or_else(|| unusable("no numeric `score`"))?;
    if !(0.0..=1.0).contains(&score) {
        return Err(unusable("`score` outside 0 to 1"));
    }
    let reason = object.get("reason").map(text);
    Ok((score, reason))
}

/// The first `{...}` in `text` that parses as a JSON object.
fn first_json_object(text: &str) -> Option<assay_plugin_sdk::serde_json::Map<String, Value>> {
    let mut start = 0;
    while let Some(offset) = text[start..].find('{') {
        let from = start + offset;
        let mut stream = assay_plugin_sdk::serde_json::Deserializer::from_str(&text[from..])
            .into_iter::<Value>();
        if let Some(Ok(Value::Object(map))) = stream.next() {
            return Some(map);
        }
        start = from + 1;
    }
    None
}

impl Scorer for LlmJudge {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "llm-judge",
            "LLM judge",
            "Asks an OpenAI-compatible model to grade the output against a rubric, the input and the ground truth; the score and reason are the model's JSON verdict.",
        )
        .needs_host("api.openai.com")
        .needs_secret("OPENAI_API_KEY")
    }

    fn score(input: ScoreInput) -> Result<Score, PluginError> {
        let config: Config = input.config()?;
        let rubric = config
            .rubric
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| PluginError::invalid_input("config `rubric` is required"))?;
        let model = config
            .model
            .clone()
            .ok_or_else(|| PluginError::invalid_input("config `model` is required"))?;
        let endpoint = Endpoint {
            base_url: config
                .base_url
                .clone()
                .unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            model,
            api_key_secret: config.api_key_secret.clone(),
            headers: config.headers.clone(),
        };
        let messages = [
            Message::new("system", INSTRUCTIONS),
            Message::new("user", case(rubric, &input.item, input.output.as_ref())),
        ];
        let sampling = Sampling {
            temperature: Some(config.temperature.unwrap_or(0.0)),
            max_tokens: None,
        };
        let answer = openai::chat(&endpoint, &messages, sampling)?;
        let (value, reason) = verdict(&answer.text)?;
        let mut score = Score::new(value).with_metadata(answer.metadata());
        if let Some(reason) = reason {
            score = score.with_reason(reason);
        }
        Ok(score)
    }
}

export_scorer!(LlmJudge);

#[cfg(test)]
mod tests {
    use assay_openai_stub::{BackgroundStub, Stub, StubConfig};
    use assay_plugin_sdk::{ErrorKind, testing};

    use super::*;

    /// The stub answers with what follows `STUB_REPLY:` in the case, so the
    /// "output to grade" scripts the judge's verdict.
    fn judge(stub: &Stub, output: &str) -> Result<Score, PluginError> {
        let item = Item::new("1", json!("capital of France?")).with_ground_truth(json!("Paris"));
        let input = ScoreInput::new(item)
            .with_output(json!(output))
            .with_config(json!({
                "rubric": "names the right city",
                "model": "judge-model",
                "baseUrl": format!("{}/v1", stub.url()),
            }));
        testing::score::<LlmJudge>(&input)
    }

    #[test]
    fn the_verdict_is_the_score_and_reason() {
        let stub = BackgroundStub::start(StubConfig::default()).unwrap();
        let s = judge(
            &stub,
            r#"STUB_REPLY: ```json {"score": 0.8, "reason": "right city, extra words"} ```"#,
        )
        .unwrap();
        assert_eq!(s.value, 0.8);
        assert_eq!(s.reason.as_deref(), Some("right city, extra words"));
        let meta = s.metadata.unwrap();
        assert_eq!(meta["model"], "judge-model");
        assert!(meta["usage"]["totalTokens"].as_u64().unwrap() > 0, "{meta}");
        assert_eq!(stub.stats().models.get("judge-model"), Some(&1));
    }

    #[test]
    fn answers_without_a_verdict_fail_with_the_judges_text() {
        let stub = BackgroundStub::start(StubConfig::default()).unwrap();
        for (reply, why) in [
            ("STUB_REPLY: I think it is fine.", "no JSON object"),
            (r#"STUB_REPLY: {"grade": "A"}"#, "no numeric `score`"),
            (r#"STUB_REPLY: {"score": 7}"#, "outside 0 to 1"),
        ] {
            let err = judge(&stub, reply).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Failed, "{reply}");
            assert!(err.message().contains(why), "{reply}: {err}");
        }
    }

    #[test]
    fn the_case_shows_rubric_input_ground_truth_and_output() {
        let item = Item::new("1", json!({"q": "2+2"})).with_ground_truth(json!("4"));
        let text = case("exact answer", &item, Some(&json!("four")));
        assert!(text.contains("Rubric:\nexact answer"));
        assert!(text.contains(
            r#"Input:
{"q":"2+2"}"#
        ));
        assert!(text.contains("Expected output:\n4"));
        assert!(text.contains("Output to grade:\nfour"));
        assert!(case("r", &item, None).contains("(none"));
    }

    #[test]
    fn a_rubric_and_a_model_are_required() {
        let input = ScoreInput::new(Item::new("1", json!("x")))
            .with_output(json!("y"))
            .with_config(json!({"model": "m"}));
        let err = testing::score::<LlmJudge>(&input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("rubric"));
    }
}
