//! What the host checks in what a guest returns: score range, output size,
//! JSON validity, the plugin's id and declared needs; and the mapping of a
//! guest's own error to a [`CallError`].

use serde_json::Value;

use crate::bindings::{GuestError, InfoReply, ScoreReply, TargetReply};
use crate::config::Limits;
use crate::error::{CallError, LoadError};
use crate::grant::HostPattern;
use crate::types::{PluginInfo, PluginNeeds};

/// A target's output checked and parsed.
#[derive(Debug)]
pub(crate) struct CheckedTargetOutput {
    pub(crate) output: Value,
    pub(crate) trace_id: Option<String>,
    pub(crate) metadata: Option<Value>,
}

/// A target's output, parsed, with its trace id and metadata. The three
/// together must fit the output cap.
pub(crate) fn check_target_output(
    out: TargetReply,
    limits: &Limits,
) -> Result<CheckedTargetOutput, CallError> {
    let size = out.output.len()
        + out.trace_id.as_ref().map_or(0, String::len)
        + out.metadata.as_ref().map_or(0, String::len);
    if size > limits.max_output_bytes {
        return Err(CallError::OutputTooLarge {
            size,
            limit: limits.max_output_bytes,
        });
    }
    let output = parse_json(&out.output, "output")?;
    let metadata = out
        .metadata
        .as_deref()
        .map(|m| parse_json(m, "metadata"))
        .transpose()?;
    Ok(CheckedTargetOutput {
        output,
        trace_id: out.trace_id,
        metadata,
    })
}

/// A score's value, reason and parsed metadata.
pub(crate) fn check_score(
    score: ScoreReply,
    limits: &Limits,
) -> Result<(f64, Option<String>, Option<Value>), CallError> {
    if !(0.0..=1.0).contains(&score.value) {
        return Err(CallError::ScoreOutOfRange { value: score.value });
    }
    let size = score.reason.as_ref().map_or(0, String::len)
        + score.metadata.as_ref().map_or(0, String::len);
    if size > limits.max_output_bytes {
        return Err(CallError::OutputTooLarge {
            size,
            limit: limits.max_output_bytes,
        });
    }
    let metadata = score
        .metadata
        .as_deref()
        .map(|m| parse_json(m, "metadata"))
        .transpose()?;
    Ok((score.value, score.reason, metadata))
}

fn parse_json(text: &str, what: &'static str) -> Result<Value, CallError> {
    serde_json::from_str(text).map_err(|e| CallError::InvalidJson {
        what,
        error: e.to_string(),
    })
}

/// Most bytes of a plugin's `name`.
pub(crate) const MAX_NAME_BYTES: usize = 256;
/// Most bytes of a plugin's `description`.
pub(crate) const MAX_DESCRIPTION_BYTES: usize = 4096;
/// Most entries in each list of a plugin's `needs`.
pub(crate) const MAX_NEEDS: usize = 64;
/// Most bytes of a secret name in `needs` (the limit of a stored secret's
/// name).
pub(crate) const MAX_SECRET_NAME_BYTES: usize = 128;

/// The plugin's own error as a [`CallError`], its message cut to the
/// call's output cap (a guest cannot make the host store megabytes of
/// error text per item; the kind, which decides retries, is kept).
pub(crate) fn guest_error(e: GuestError, limits: &Limits) -> CallError {
    let cap = |m: String| cap_text(m, limits.max_output_bytes);
    match e {
        GuestError::InvalidInput(m) => CallError::InvalidInput(cap(m)),
        GuestError::Transient(m) => CallError::Transient(cap(m)),
        GuestError::Failed(m) => CallError::Failed(cap(m)),
    }
}

/// `text` cut to at most `cap` bytes (on a character boundary), saying how
/// much was cut.
pub(crate) fn cap_text(mut text: String, cap: usize) -> String {
    if text.len() <= cap {
        return text;
    }
    let total = text.len();
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!(" [cut: {total} bytes, limit {cap}]"));
    text
}

/// Checks what a plugin said about itself when it was loaded, parsing its
/// declared hosts in the syntax of a grant.
pub(crate) fn check_info(info: InfoReply) -> Result<PluginInfo, LoadError> {
    validate_id(&info.id)?;
    for (field, value, cap) in [
        ("name", &info.name, MAX_NAME_BYTES),
        ("description", &info.description, MAX_DESCRIPTION_BYTES),
    ] {
        if value.len() > cap {
            return Err(LoadError::InvalidInfo(format!(
                "plugin {field} is {} bytes, over the limit of {cap}",
                value.len()
            )));
        }
    }
    let needs = check_needs(info.needs_hosts, info.needs_secrets)?;
    Ok(PluginInfo {
        id: info.id,
        name: info.name,
        description: info.description,
        needs,
    })
}

/// Parses and bounds the plugin's `needs`: each host must be a valid grant
/// pattern and each secret name one an operator can store
/// (`[A-Z_][A-Z0-9_]*`), so what an operator is shown is exactly what a
/// grant can say. Duplicates are refused rather
/// than dropped.
fn check_needs(hosts: Vec<String>, secrets: Vec<String>) -> Result<PluginNeeds, LoadError> {
    let invalid = |m: String| LoadError::InvalidInfo(m);
    for (field, len) in [("hosts", hosts.len()), ("secrets", secrets.len())] {
        if len > MAX_NEEDS {
            return Err(invalid(format!(
                "plugin needs {len} {field}, over the limit of {MAX_NEEDS}"
            )));
        }
    }
    let mut parsed: Vec<HostPattern> = Vec::with_capacity(hosts.len());
    for host in &hosts {
        let pattern: HostPattern = host
            .parse()
            .map_err(|e| invalid(format!("plugin needs host `{}`: {e}", cut(host))))?;
        if parsed.contains(&pattern) {
            return Err(invalid(format!("plugin needs host `{pattern}` twice")));
        }
        parsed.push(pattern);
    }
    for (i, name) in secrets.iter().enumerate() {
        let valid = name.len() <= MAX_SECRET_NAME_BYTES
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(invalid(format!(
                "plugin needs secret `{}`: a secret name is 1-{MAX_SECRET_NAME_BYTES} uppercase letters, digits and `_`, not starting with a digit",
                cut(name)
            )));
        }
        if secrets[..i].contains(name) {
            return Err(invalid(format!("plugin needs secret `{name}` twice")));
        }
    }
    Ok(PluginNeeds {
        hosts: parsed,
        secrets,
    })
}

/// A guest string quoted in an error, cut so the error stays short.
fn cut(text: &str) -> String {
    cap_text(text.to_string(), 80)
}

fn validate_id(id: &str) -> Result<(), LoadError> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(LoadError::InvalidInfo(format!(
            "plugin id {id:?} is not valid: use 1-64 lowercase letters, digits and `-`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_checks() {
        let limits = Limits::scorer_default();
        let ok = ScoreReply {
            value: 0.5,
            reason: Some("half".into()),
            metadata: Some("{\"a\":1}".into()),
        };
        assert!(check_score(ok, &limits).is_ok());
        for bad in [f64::NAN, -0.1, 1.5, f64::INFINITY] {
            let r = ScoreReply {
                value: bad,
                reason: None,
                metadata: None,
            };
            assert_eq!(
                check_score(r, &limits).unwrap_err().kind(),
                "score-out-of-range"
            );
        }
        let invalid = ScoreReply {
            value: 1.0,
            reason: None,
            metadata: Some("{nope".into()),
        };
        assert_eq!(
            check_score(invalid, &limits).unwrap_err().kind(),
            "invalid-json"
        );
    }

    #[test]
    fn guest_strings_are_capped() {
        let limits = Limits {
            max_output_bytes: 10,
            ..Limits::default()
        };
        let CallError::Transient(m) = guest_error(GuestError::Transient("é".repeat(100)), &limits)
        else {
            panic!("the kind is kept");
        };
        assert!(m.starts_with("ééééé ["), "{m}");
        assert!(m.ends_with("[cut: 200 bytes, limit 10]"), "{m}");
        let short = guest_error(GuestError::Failed("short".into()), &limits);
        assert_eq!(short, CallError::Failed("short".into()));

        let info = |name: usize, description: usize| InfoReply {
            id: "ok".into(),
            name: "n".repeat(name),
            description: "d".repeat(description),
            needs_hosts: vec![],
            needs_secrets: vec![],
        };
        assert!(check_info(info(MAX_NAME_BYTES, MAX_DESCRIPTION_BYTES)).is_ok());
        let err = check_info(info(MAX_NAME_BYTES + 1, 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid plugin info: plugin name is 257 bytes, over the limit of 256"
        );
        assert!(check_info(info(1, MAX_DESCRIPTION_BYTES + 1)).is_err());
    }

    fn info_needing(hosts: &[&str], secrets: &[&str]) -> InfoReply {
        InfoReply {
            id: "net".into(),
            name: "Net".into(),
            description: "d".into(),
            needs_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            needs_secrets: secrets.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn needs_are_parsed_as_grant_patterns() {
        let info = check_info(info_needing(
            &["api.openai.com", "*.example.com:8443", "127.0.0.1:8080"],
            &["OPENAI_API_KEY", "_OTHER_KEY2"],
        ))
        .unwrap();
        let hosts: Vec<String> = info.needs.hosts.iter().map(ToString::to_string).collect();
        assert_eq!(
            hosts,
            ["api.openai.com", "*.example.com:8443", "127.0.0.1:8080"]
        );
        assert_eq!(info.needs.secrets, ["OPENAI_API_KEY", "_OTHER_KEY2"]);
        assert!(check_info(info_needing(&[], &[])).unwrap().needs.is_empty());
    }

    #[test]
    fn hostile_needs_are_refused_naming_the_entry() {
        let message = |hosts: &[&str], secrets: &[&str]| {
            check_info(info_needing(hosts, secrets))
                .unwrap_err()
                .to_string()
        };
        let url = message(&["https://api.openai.com/v1"], &[]);
        assert!(
            url.contains("plugin needs host `https://api.openai.com/v1`"),
            "{url}"
        );
        assert!(message(&["*"], &[]).contains("`*`"));
        assert_eq!(
            message(&["api.openai.com", "API.openai.com"], &[]),
            "invalid plugin info: plugin needs host `api.openai.com` twice"
        );
        let secret = message(&[], &["{{secret.KEY}}"]);
        assert!(
            secret.contains("plugin needs secret `{{secret.KEY}}`"),
            "{secret}"
        );
        assert!(message(&[], &[""]).contains("secret ``"));
        assert!(message(&[], &["openai_key"]).contains("uppercase letters"));
        assert!(message(&[], &["2KEY"]).contains("not starting with a digit"));
        assert!(message(&[], &["MY-KEY"]).contains("`MY-KEY`"));
        assert!(message(&[], &["K", "K"]).contains("`K` twice"));
        let many: Vec<String> = (0..=MAX_NEEDS)
            .map(|i| format!("h{i}.example.com"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            message(&many, &[]),
            "invalid plugin info: plugin needs 65 hosts, over the limit of 64"
        );
        let long = "x".repeat(10_000);
        let cut = message(&[], &[&long]);
        assert!(
            cut.len() < 300,
            "an error quoting a guest string stays short"
        );
    }

    #[test]
    fn target_metadata_is_checked_and_counted_against_the_cap() {
        let limits = Limits {
            max_output_bytes: 40,
            ..Limits::default()
        };
        let reply = |metadata: Option<&str>| TargetReply {
            output: "\"ok\"".into(),
            trace_id: None,
            metadata: metadata.map(Into::into),
        };
        let out = check_target_output(reply(Some(r#"{"model":"m"}"#)), &limits).unwrap();
        assert_eq!(out.metadata, Some(serde_json::json!({"model": "m"})));
        assert_eq!(
            check_target_output(reply(None), &limits).unwrap().metadata,
            None
        );
        let err = check_target_output(reply(Some("{nope")), &limits).unwrap_err();
        assert_eq!(
            err,
            CallError::InvalidJson {
                what: "metadata",
                error: "key must be a string at line 1 column 2".into()
            }
        );
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(40));
        assert_eq!(
            check_target_output(reply(Some(&big)), &limits)
                .unwrap_err()
                .kind(),
            "output-too-large"
        );
    }

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("exact-match").is_ok());
        assert!(validate_id("Exact Match").is_err());
        assert!(validate_id("").is_err());
    }
}
