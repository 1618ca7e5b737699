//! Contract versions: which `assay:plugin` WIT packages this host speaks,
//! and which one a component was built against.
//!
//! Every supported version has its own WIT folder
//! (`plugin-sdk/wit/vMAJOR.MINOR/`) and its own bindings module
//! (`bindings::vMAJOR_MINOR`), listed in [`SUPPORTED`]. The version string
//! of each is read from its WIT's `package` line at compile time, so the
//! WIT is the only place a version is written down.
//!
//! A component names its contract in its export, e.g.
//! `assay:plugin/scorer@0.1.0`. The host accepts it when a supported
//! version is compatible under the component model's semver rules: same
//! major and, for `0.x`, same minor (any patch).

use std::fmt;

use wasmtime::component::InstancePre;

use crate::bindings::{self, Pre};
use crate::error::{ContractMismatch, LoadError};
use crate::sandbox::CallState;
use crate::types::PluginKind;

/// One contract version the host speaks.
pub(crate) struct Contract {
    /// The WIT package version, e.g. `0.1.0`.
    pub(crate) version: &'static str,
    /// Pre-instantiates a component of this version with its bindings.
    pub(crate) prepare: fn(PluginKind, InstancePre<CallState>) -> wasmtime::Result<Pre>,
}

/// The contract versions this host speaks, oldest first. The last one is
/// [`CONTRACT_VERSION`], the one the SDK builds against.
pub(crate) const SUPPORTED: &[Contract] = &[
    Contract {
        version: bindings::v0_1::VERSION,
        prepare: bindings::v0_1::prepare,
    },
    Contract {
        version: bindings::v0_2::VERSION,
        prepare: bindings::v0_2::prepare,
    },
];

/// The newest `assay:plugin` contract version this host speaks (the WIT
/// package version that the plugin SDK builds against).
pub const CONTRACT_VERSION: &str = SUPPORTED[SUPPORTED.len() - 1].version;

/// Every contract version this host speaks, oldest first.
pub fn supported_contract_versions() -> impl Iterator<Item = &'static str> {
    SUPPORTED.iter().map(|c| c.version)
}

/// The supported range as people read it: `0.1.x`, `0.1.x and 0.2.x`.
pub(crate) fn supported_range() -> String {
    let series: Vec<String> = SUPPORTED
        .iter()
        .map(|c| match Version::parse(c.version) {
            Some(v) => v.series(),
            None => c.version.to_string(),
        })
        .collect();
    match series.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The version in a WIT file's `package assay:plugin@X.Y.Z;` line.
///
/// `const` so that the host's version constants are computed from the WIT
/// at compile time; a WIT without that line fails the build.
pub(crate) const fn wit_package_version(wit: &'static str) -> &'static str {
    const PREFIX: &[u8] = b"package assay:plugin@";
    let bytes = wit.as_bytes();
    let mut line_start = 0;
    while line_start + PREFIX.len() <= bytes.len() {
        let mut matches = true;
        let mut k = 0;
        while k < PREFIX.len() {
            if bytes[line_start + k] != PREFIX[k] {
                matches = false;
                break;
            }
            k += 1;
        }
        if matches {
            let start = line_start + PREFIX.len();
            let mut end = start;
            while end < bytes.len() && bytes[end] != b';' {
                assert!(bytes[end] != b'\n', "the WIT's package line has no `;`");
                end += 1;
            }
            assert!(end > start, "the WIT's package line has no version");
            let (_, rest) = bytes.split_at(start);
            let (version, _) = rest.split_at(end - start);
            match std::str::from_utf8(version) {
                Ok(v) => return v,
                Err(_) => panic!("the WIT's package version is not UTF-8"),
            }
        }
        // Next line.
        while line_start < bytes.len() && bytes[line_start] != b'\n' {
            line_start += 1;
        }
        line_start += 1;
    }
    panic!("the WIT has no `package assay:plugin@X.Y.Z;` line")
}

/// A semantic version, as far as compatibility needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
}

impl Version {
    /// `X.Y.Z`, optionally followed by `-pre` or `+build` (ignored).
    fn parse(text: &str) -> Option<Self> {
        let mut it = text.splitn(3, '.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let patch = it.next()?.split(['-', '+']).next()?.parse().ok()?;
        Some(Self {
            major,
            minor,
            patch,
        })
    }

    /// What must match for two versions to link: the major, and for `0.x`
    /// the minor too.
    fn compatibility_key(self) -> (u64, u64) {
        if self.major == 0 {
            (0, self.minor)
        } else {
            (self.major, 0)
        }
    }

    fn compatible_with(self, other: Version) -> bool {
        self.compatibility_key() == other.compatibility_key()
    }

    /// `0.1.x`, `1.x`.
    fn series(self) -> String {
        if self.major == 0 {
            format!("0.{}.x", self.minor)
        } else {
            format!("{}.x", self.major)
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The supported contract compatible with `plugin`, if any.
fn find_supported(plugin: &str) -> Option<&'static Contract> {
    let plugin = Version::parse(plugin)?;
    SUPPORTED
        .iter()
        .rev()
        .find(|c| Version::parse(c.version).is_some_and(|host| plugin.compatible_with(host)))
}

/// How an unsupported version relates to the supported range.
fn mismatch(plugin: &str) -> ContractMismatch {
    let Some(version) = Version::parse(plugin) else {
        return ContractMismatch::Unknown;
    };
    let keys: Vec<(u64, u64)> = SUPPORTED
        .iter()
        .filter_map(|c| Version::parse(c.version))
        .map(Version::compatibility_key)
        .collect();
    let key = version.compatibility_key();
    match (keys.first(), keys.last()) {
        (Some(oldest), _) if key < *oldest => ContractMismatch::TooOld,
        (_, Some(newest)) if key > *newest => ContractMismatch::TooNew,
        _ => ContractMismatch::Unknown,
    }
}

/// What [`detect`] found in a component's exports.
pub(crate) struct Detected {
    /// Scorer or target.
    pub(crate) kind: PluginKind,
    /// The version in the export name, e.g. `0.1.0`.
    pub(crate) version: String,
    /// The supported contract it links against.
    pub(crate) contract: &'static Contract,
}

/// Finds the plugin interface among the exports and the supported contract
/// its version links against.
pub(crate) fn detect(exports: &[String]) -> Result<Detected, LoadError> {
    let mut other_version = None;
    for kind in [PluginKind::Scorer, PluginKind::Target] {
        for name in exports {
            let Some(rest) = name.strip_prefix(kind.interface()) else {
                continue;
            };
            let version = match rest.strip_prefix('@') {
                Some(v) => v,
                None if rest.is_empty() => "unversioned",
                None => continue,
            };
            if let Some(contract) = find_supported(version) {
                return Ok(Detected {
                    kind,
                    version: version.to_string(),
                    contract,
                });
            }
            other_version.get_or_insert_with(|| version.to_string());
        }
    }
    if let Some(plugin) = other_version {
        return Err(LoadError::IncompatibleContract {
            mismatch: mismatch(&plugin),
            plugin,
            supported: supported_range(),
        });
    }
    Err(LoadError::WrongWorld {
        missing: format!(
            "`{}@{CONTRACT_VERSION}` or `{}@{CONTRACT_VERSION}`",
            PluginKind::Scorer.interface(),
            PluginKind::Target.interface()
        ),
        found: exports.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compatible(plugin: &str, host: &str) -> bool {
        match (Version::parse(plugin), Version::parse(host)) {
            (Some(p), Some(h)) => p.compatible_with(h),
            _ => false,
        }
    }

    #[test]
    fn semver_rules_of_the_component_model() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(compatible("0.1.0-rc1", "0.1.0"));
        assert!(!compatible("0.0.1", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("2.0.0", "1.0.0"));
        assert!(!compatible("garbage", "0.1.0"));
        assert!(!compatible("0.1", "0.1.0"));
    }

    /// The version constant is the WIT's package line, read here a second
    /// way (plain string handling at run time).
    #[test]
    fn contract_version_is_the_wit_package_line() {
        for (wit, version) in [
            (bindings::v0_1::WIT, bindings::v0_1::VERSION),
            (bindings::v0_2::WIT, bindings::v0_2::VERSION),
        ] {
            let line = wit
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("package "))
                .expect("the WIT declares a package");
            assert_eq!(line, format!("package assay:plugin@{version};"));
        }
        assert_eq!(bindings::v0_1::VERSION, "0.1.0");
        assert_eq!(bindings::v0_2::VERSION, "0.2.0");
        assert_eq!(CONTRACT_VERSION, bindings::v0_2::VERSION);
        assert!(Version::parse(CONTRACT_VERSION).is_some());
    }

    #[test]
    fn every_supported_version_is_valid_and_in_order() {
        let versions: Vec<Version> = supported_contract_versions()
            .map(|v| Version::parse(v).expect("semver"))
            .collect();
        assert!(!versions.is_empty());
        for pair in versions.windows(2) {
            assert!(
                pair[0].compatibility_key() < pair[1].compatibility_key(),
                "SUPPORTED must be oldest first, one entry per series: {pair:?}"
            );
        }
    }

    #[test]
    fn package_line_parser() {
        const WIT: &str =
            "/// package assay:plugin@9.9.9; in a comment\npackage assay:plugin@0.3.1;\n";
        assert_eq!(wit_package_version(WIT), "0.3.1");
    }

    #[test]
    fn range_is_named() {
        assert_eq!(supported_range(), "0.1.x and 0.2.x");
    }

    #[test]
    fn world_detection() {
        let scorer = vec!["assay:plugin/scorer@0.1.0".to_string()];
        let found = detect(&scorer).unwrap();
        assert_eq!(
            (found.kind, found.version.as_str()),
            (PluginKind::Scorer, "0.1.0")
        );
        assert_eq!(found.contract.version, "0.1.0");
        let target = vec!["assay:plugin/target@0.2.4".to_string()];
        let found = detect(&target).unwrap();
        assert_eq!(
            (found.kind, found.version.as_str()),
            (PluginKind::Target, "0.2.4")
        );
        assert_eq!(found.contract.version, "0.2.0");

        let old = vec!["assay:plugin/target@0.0.1".to_string()];
        assert!(matches!(
            detect(&old),
            Err(LoadError::IncompatibleContract { plugin, mismatch: ContractMismatch::TooOld, .. })
                if plugin == "0.0.1"
        ));
        let new = vec!["assay:plugin/scorer@0.3.0".to_string()];
        let err = detect(&new).err().expect("too new");
        assert!(
            matches!(
                err,
                LoadError::IncompatibleContract {
                    mismatch: ContractMismatch::TooNew,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "plugin was built against assay:plugin contract 0.3.0, newer than this host supports (0.1.x and 0.2.x): upgrade assay, or build the plugin with an SDK for 0.1.x and 0.2.x"
        );
        let unversioned = vec!["assay:plugin/scorer".to_string()];
        assert!(matches!(
            detect(&unversioned),
            Err(LoadError::IncompatibleContract {
                mismatch: ContractMismatch::Unknown,
                ..
            })
        ));

        let other = vec!["wasi:cli/run@0.2.0".to_string()];
        let err = detect(&other).err().expect("not a plugin");
        assert_eq!(
            err.to_string(),
            "component does not export `assay:plugin/scorer@0.2.0` or `assay:plugin/target@0.2.0`; it exports: [wasi:cli/run@0.2.0]"
        );
    }
}
