//! What the host checks in what a guest returns: score range, output size,
//! JSON validity, the plugin's id; and the mapping of a guest's own error to
//! a [`CallError`].

use serde_json::Value;

use crate::bindings::{GuestError, ScoreReply, TargetReply};
use crate::config::Limits;
use crate::error::{CallError, LoadError};
use crate::types::PluginInfo;

/// A target's output, parsed, with its trace id.
pub(crate) fn check_target_output(
    out: TargetReply,
    limits: &Limits,
) -> Result<(Value, Option<String>), CallError> {
    let size = out.output.len() + out.trace_id.as_ref().map_or(0, String::len);
    if size > limits.max_output_bytes {
        return Err(CallError::OutputTooLarge {
            size,
            limit: limits.max_output_bytes,
        });
    }
    let output = parse_json(&out.output, "output")?;
    Ok((output, out.trace_id))
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

/// Checks what a plugin said about itself when it was loaded.
pub(crate) fn check_info(info: PluginInfo) -> Result<PluginInfo, LoadError> {
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
    Ok(info)
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

        let info = |name: usize, description: usize| PluginInfo {
            id: "ok".into(),
            name: "n".repeat(name),
            description: "d".repeat(description),
        };
        assert!(check_info(info(MAX_NAME_BYTES, MAX_DESCRIPTION_BYTES)).is_ok());
        let err = check_info(info(MAX_NAME_BYTES + 1, 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid plugin info: plugin name is 257 bytes, over the limit of 256"
        );
        assert!(check_info(info(1, MAX_DESCRIPTION_BYTES + 1)).is_err());
    }

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("exact-match").is_ok());
        assert!(validate_id("Exact Match").is_err());
        assert!(validate_id("").is_err());
    }
}
