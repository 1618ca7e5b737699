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

/// The plugin's own error as a [`CallError`].
pub(crate) fn guest_error(e: GuestError) -> CallError {
    match e {
        GuestError::InvalidInput(m) => CallError::InvalidInput(m),
        GuestError::Transient(m) => CallError::Transient(m),
        GuestError::Failed(m) => CallError::Failed(m),
    }
}

/// Checks what a plugin said about itself when it was loaded.
pub(crate) fn check_info(info: PluginInfo) -> Result<PluginInfo, LoadError> {
    validate_id(&info.id)?;
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
            "plugin id `{id}` is not valid: use 1-64 lowercase letters, digits and `-`"
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
    fn ids_are_checked() {
        assert!(validate_id("exact-match").is_ok());
        assert!(validate_id("Exact Match").is_err());
        assert!(validate_id("").is_err());
    }
}
