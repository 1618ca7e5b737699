//! Secret values a plugin call may use in outgoing request headers, never
//! see, and never leak into stored results.
//!
//! A plugin writes `{{secret.NAME}}` in a header value; after the request
//! passed the grant check the host puts the value in (headers only: never
//! the URL or body, which servers log). Every string leaving the sandbox
//! for the call has each value replaced by `[secret NAME]`, so even a
//! granted server that echoes the header back cannot get it into a result.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroize;

/// One secret value: not printed by `Debug`, wiped from memory on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself (for the request header, and nothing else).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The secrets one call may use, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    values: BTreeMap<String, SecretValue>,
}

/// A `{{secret.NAME}}` placeholder that the call has no secret for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the request uses secret {name}, which is not given to this plugin")]
pub struct UnknownSecret {
    /// The name in the placeholder.
    pub name: String,
}

const OPEN: &str = "{{secret.";
const CLOSE: &str = "}}";

impl Secrets {
    /// No secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a secret.
    pub fn insert(&mut self, name: impl Into<String>, value: SecretValue) {
        self.values.insert(name.into(), value);
    }

    /// Builder form of [`Secrets::insert`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(name, SecretValue::new(value));
        self
    }

    /// True when there are no secrets (redaction is then a no-op).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The secret names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Replaces every `{{secret.NAME}}` in `text` by the value of `NAME`.
    /// `None` when `text` has no placeholder.
    pub fn substitute(&self, text: &str) -> Result<Option<String>, UnknownSecret> {
        if !text.contains(OPEN) {
            return Ok(None);
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find(OPEN) {
            let after = &rest[start + OPEN.len()..];
            let Some(end) = after.find(CLOSE) else {
                break;
            };
            let name = after[..end].trim();
            let value = self.values.get(name).ok_or_else(|| UnknownSecret {
                name: name.to_string(),
            })?;
            out.push_str(&rest[..start]);
            out.push_str(value.expose());
            rest = &after[end + CLOSE.len()..];
        }
        out.push_str(rest);
        Ok(Some(out))
    }

    /// `text` with every secret value replaced by `[secret NAME]` (longer
    /// values first, so a value containing another is hidden whole).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut hits: Vec<(&str, &str)> = self
            .values
            .iter()
            .filter(|(_, v)| !v.0.is_empty() && text.contains(v.0.as_str()))
            .map(|(name, v)| (name.as_str(), v.0.as_str()))
            .collect();
        if hits.is_empty() {
            return Cow::Borrowed(text);
        }
        hits.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        let mut out = text.to_string();
        for (name, value) in hits {
            out = out.replace(value, &format!("[secret {name}]"));
        }
        Cow::Owned(out)
    }

    /// Redacts a string in place.
    pub(crate) fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(redacted) = self.redact(text) {
            *text = redacted;
        }
    }

    /// Redacts every string (and object key) inside a JSON value.
    pub(crate) fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => self.redact_in_place(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let needs_key_change = map.keys().any(|k| matches!(self.redact(k), Cow::Owned(_)));
                if needs_key_change {
                    let old = std::mem::take(map);
                    for (k, v) in old {
                        map.insert(self.redact(&k).into_owned(), v);
                    }
                }
                map.values_mut().for_each(|v| self.redact_json(v));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets::new()
            .with("KEY", "sk-live-123")
            .with("LONG", "sk-live-123-and-more")
    }

    #[test]
    fn placeholders_are_substituted() {
        let s = secrets();
        assert_eq!(
            s.substitute("Bearer {{secret.KEY}}").unwrap().as_deref(),
            Some("Bearer sk-live-123")
        );
        assert_eq!(
            s.substitute("{{ secret.KEY }}").unwrap(),
            None,
            "only the exact `{{{{secret.` form is a placeholder"
        );
        assert_eq!(s.substitute("plain").unwrap(), None);
        assert_eq!(
            s.substitute("a {{secret.KEY}} b {{secret.LONG}}")
                .unwrap()
                .as_deref(),
            Some("a sk-live-123 b sk-live-123-and-more")
        );
        let err = s.substitute("{{secret.NOPE}}").unwrap_err();
        assert_eq!(err.name, "NOPE");
        assert!(err.to_string().contains("secret NOPE"), "{err}");
    }

    #[test]
    fn values_are_redacted_longest_first_and_never_debug_printed() {
        let s = secrets();
        assert_eq!(
            s.redact("got sk-live-123-and-more and sk-live-123"),
            "got [secret LONG] and [secret KEY]"
        );
        assert!(matches!(s.redact("nothing here"), Cow::Borrowed(_)));
        assert!(!format!("{s:?}").contains("sk-live"));
        let mut v = serde_json::json!({"sk-live-123": ["x sk-live-123"], "n": 1});
        s.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"[secret KEY]": ["x [secret KEY]"], "n": 1})
        );
    }
}
