//! [`PluginInfo`]: what a plugin says about itself, and [`Needs`]: what it
//! asks the operator for.

/// What a plugin says about itself; returned by `Scorer::info` / `Target::info`.
///
/// ```
/// use assay_plugin_sdk::PluginInfo;
///
/// let info = PluginInfo::new("openai-chat", "OpenAI chat", "Asks a chat model")
///     .needs_host("api.openai.com")
///     .needs_secret("OPENAI_API_KEY");
/// assert_eq!(info.needs.hosts, ["api.openai.com"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Stable identifier, lowercase `[a-z0-9-]`, e.g. `exact-match`. Runs name
    /// plugins by this id (`assay run --scorer exact-match`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// One-paragraph description.
    pub description: String,
    /// What the plugin needs from the operator (hosts to reach, secrets its
    /// config refers to). Empty for a plugin that needs nothing.
    pub needs: Needs,
}

/// Outside resources a plugin asks for, shown to the operator before they
/// grant anything. Declaring a need grants nothing by itself: the operator
/// grants hosts per plugin and the host checks every request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Hosts to reach over HTTP, in the syntax of a grant:
    /// `api.openai.com`, `*.example.com:8443`, `127.0.0.1:8080`. The host
    /// refuses to load a plugin whose entry is not valid (a URL, a bare `*`).
    pub hosts: Vec<String>,
    /// Names of secrets the plugin's config may refer to as
    /// `{{secret.NAME}}` in header values (`[A-Z_][A-Z0-9_]*`, as secrets
    /// are stored).
    pub secrets: Vec<String>,
}

impl Needs {
    /// Whether nothing is needed.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.secrets.is_empty()
    }
}

impl PluginInfo {
    /// A plugin's id, name and description; it needs nothing.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            description: description.into(),
            needs: Needs::default(),
        }
    }

    /// Declares a host the plugin wants to reach (builder style; repeat for
    /// several).
    pub fn needs_host(mut self, host: impl Into<String>) -> Self {
        self.needs.hosts.push(host.into());
        self
    }

    /// Declares the name of a secret the plugin's config may refer to as
    /// `{{secret.NAME}}` (builder style; repeat for several).
    pub fn needs_secret(mut self, name: impl Into<String>) -> Self {
        self.needs.secrets.push(name.into());
        self
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

    #[test]
    fn needs_accumulate_in_order() {
        let info = PluginInfo::new("net", "n", "d")
            .needs_host("api.openai.com")
            .needs_host("*.example.com:8443")
            .needs_secret("OPENAI_API_KEY");
        assert_eq!(info.needs.hosts, ["api.openai.com", "*.example.com:8443"]);
        assert_eq!(info.needs.secrets, ["OPENAI_API_KEY"]);
        assert!(!info.needs.is_empty());
        assert!(PluginInfo::new("plain", "n", "d").needs.is_empty());
    }
}
