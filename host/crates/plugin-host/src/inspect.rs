//! [`inspect`]: what `assay plugin check|info` shows about a component.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::error::{LoadError, fmt_bytes};
use crate::host::PluginHost;
use crate::plugin::Plugin;
use crate::types::{PluginKind, PluginNeeds};

/// A loaded plugin described for people (Display) and tools (Serialize).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginReport {
    /// Scorer or target.
    pub kind: PluginKind,
    /// The WIT world it implements, e.g. `assay:plugin/scorer-plugin@0.1.0`.
    pub world: String,
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// What it asks the operator for (hosts, secret names); empty for
    /// contract 0.1 plugins.
    pub needs: PluginNeeds,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// The contract version it was built against.
    pub contract_version: String,
    /// Component size in bytes.
    pub size_bytes: usize,
    /// Interfaces it imports (all must be WASI the sandbox provides).
    pub imports: Vec<String>,
    /// Interfaces it exports.
    pub exports: Vec<String>,
}

impl PluginReport {
    /// Describes an already loaded plugin.
    pub fn from_plugin(plugin: &Plugin) -> Self {
        let info = plugin.info();
        Self {
            kind: plugin.kind(),
            world: format!(
                "assay:plugin/{}@{}",
                plugin.kind().world(),
                plugin.contract_version()
            ),
            id: info.id.clone(),
            name: info.name.clone(),
            description: info.description.clone(),
            needs: info.needs.clone(),
            digest: plugin.digest().to_string(),
            contract_version: plugin.contract_version().to_string(),
            size_bytes: plugin.size_bytes(),
            imports: plugin.imports().to_vec(),
            exports: plugin.exports().to_vec(),
        }
    }
}

impl fmt::Display for PluginReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({})", self.name, self.id)?;
        writeln!(f, "  kind:        {}", self.kind)?;
        writeln!(f, "  world:       {}", self.world)?;
        writeln!(f, "  contract:    {}", self.contract_version)?;
        writeln!(f, "  digest:      {}", self.digest)?;
        writeln!(f, "  size:        {}", fmt_bytes(self.size_bytes))?;
        writeln!(f, "  description: {}", self.description)?;
        if self.needs.is_empty() {
            writeln!(f, "  needs:       nothing")?;
        } else {
            let hosts: Vec<String> = self.needs.hosts.iter().map(ToString::to_string).collect();
            let list = |items: &[String]| match items {
                [] => "(none)".to_string(),
                _ => items.join(", "),
            };
            writeln!(f, "  needs hosts:   {}", list(&hosts))?;
            writeln!(f, "  needs secrets: {}", list(&self.needs.secrets))?;
        }
        writeln!(f, "  exports:")?;
        for name in &self.exports {
            writeln!(f, "    {name}")?;
        }
        write!(f, "  imports:")?;
        if self.imports.is_empty() {
            write!(f, " (none)")?;
        }
        for name in &self.imports {
            write!(f, "\n    {name}")?;
        }
        Ok(())
    }
}

/// Loads the component at `path` with every check a run would apply and
/// describes it.
pub fn inspect(host: &PluginHost, path: &Path) -> Result<PluginReport, LoadError> {
    let plugin = host.load_file(path)?;
    Ok(PluginReport::from_plugin(&plugin))
}
