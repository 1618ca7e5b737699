//! [`PluginInfo`]: what a plugin says about itself.

/// What a plugin says about itself; returned by `Scorer::info` / `Target::info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Stable identifier, lowercase `[a-z0-9-]`, e.g. `exact-match`. Runs name
    /// plugins by this id (`assay run --scorer exact-match`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// One-paragraph description.
    pub description: String,
}

impl PluginInfo {
    /// A plugin's id, name and description.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            description: description.into(),
        }
    }

    /// Whether the id follows the `[a-z0-9-]+` rule (checked by the host
    /// when the plugin is added).
    pub fn has_valid_id(&self) -> bool {
        !self.id.is_empty()
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rule() {
        assert!(PluginInfo::new("exact-match", "n", "d").has_valid_id());
        assert!(!PluginInfo::new("Exact match", "n", "d").has_valid_id());
        assert!(!PluginInfo::new("", "n", "d").has_valid_id());
    }
}
