//! `assay plugin new NAME --lang rust|python|js --kind scorer|target`:
//! writes a plugin project that builds and passes its own tests as
//! generated, with a README of three commands (test, build, check).
//!
//! The templates live in `host/templates/<lang>/` and are compiled into the
//! binary. The project refers to the SDK of an assay checkout by path
//! (`--sdk-root`, by default the checkout this binary was built from): a
//! cargo path dependency for Rust, an editable install or the checkout's
//! virtual environment for Python, a `file:` dependency for JavaScript.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cli::plugin::KindArg;
use crate::exit::{Exit, UsageError};

/// The language of a new plugin project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with the assay plugin SDK crate.
    Rust,
    /// Python, with the assay Python SDK (componentize-py).
    Python,
    /// JavaScript, with the assay JavaScript SDK (componentize-js).
    Js,
}

/// `plugin new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Plugin id, also the project's directory: lowercase letters, digits
    /// and dashes, starting with a letter (e.g. `my-scorer`)
    pub name: String,
    /// Language of the project
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// Kind of plugin
    #[arg(long, value_enum, default_value = "scorer")]
    pub kind: KindArg,
    /// Directory to create (default: ./NAME); it must not exist or be empty
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The assay checkout whose SDKs the project uses (the folder holding
    /// plugin-sdk/ and sdk/); default: the checkout this assay was built from
    #[arg(long, value_name = "DIR", env = "ASSAY_SDK_ROOT")]
    pub sdk_root: Option<PathBuf>,
}

/// One file of a template: its path in the project and its text.
struct TemplateFile {
    path: &'static str,
    text: &'static str,
}

const fn file(path: &'static str, text: &'static str) -> TemplateFile {
    TemplateFile { path, text }
}

/// The files of a project (paths and texts may hold `{{placeholders}}`).
fn template(lang: Lang, kind: KindArg) -> Vec<TemplateFile> {
    match (lang, kind) {
        (Lang::Rust, kind) => vec![
            file(
                "Cargo.toml",
                include_str!("../../templates/rust/Cargo.toml.tmpl"),
            ),
            file(
                ".gitignore",
                include_str!("../../templates/rust/gitignore.tmpl"),
            ),
            file(
                "README.md",
                include_str!("../../templates/rust/README.md.tmpl"),
            ),
            match kind {
                KindArg::Scorer => file(
                    "src/lib.rs",
                    include_str!("../../templates/rust/scorer.rs.tmpl"),
                ),
                KindArg::Target => file(
                    "src/lib.rs",
                    include_str!("../../templates/rust/target.rs.tmpl"),
                ),
            },
        ],
        (Lang::Python, kind) => {
            let (source, test) = match kind {
                KindArg::Scorer => (
                    include_str!("../../templates/python/scorer.py.tmpl"),
                    include_str!("../../templates/python/test_scorer.py.tmpl"),
                ),
                KindArg::Target => (
                    include_str!("../../templates/python/target.py.tmpl"),
                    include_str!("../../templates/python/test_target.py.tmpl"),
                ),
            };
            vec![
                file(
                    ".gitignore",
                    include_str!("../../templates/python/gitignore.tmpl"),
                ),
                file(
                    "README.md",
                    include_str!("../../templates/python/README.md.tmpl"),
                ),
                file("{{module}}.py", source),
                file("test_{{module}}.py", test),
            ]
        }
        (Lang::Js, kind) => {
            let (source, test) = match kind {
                KindArg::Scorer => (
                    include_str!("../../templates/js/scorer.js.tmpl"),
                    include_str!("../../templates/js/scorer.test.js.tmpl"),
                ),
                KindArg::Target => (
                    include_str!("../../templates/js/target.js.tmpl"),
                    include_str!("../../templates/js/target.test.js.tmpl"),
                ),
            };
            vec![
                file(
                    "package.json",
                    include_str!("../../templates/js/package.json.tmpl"),
                ),
                file(
                    ".gitignore",
                    include_str!("../../templates/js/gitignore.tmpl"),
                ),
                file(
                    "README.md",
                    include_str!("../../templates/js/README.md.tmpl"),
                ),
                file("{{id}}.js", source),
                file("{{id}}.test.js", test),
            ]
        }
    }
}

/// The values of the placeholders.
struct Vars {
    id: String,
    module: String,
    title: String,
    kind: &'static str,
    sdk_root: String,
}

impl Vars {
    fn render(&self, text: &str) -> String {
        text.replace("{{id}}", &self.id)
            .replace("{{module}}", &self.module)
            .replace("{{title}}", &self.title)
            .replace("{{kind}}", self.kind)
            .replace("{{sdk_root}}", &self.sdk_root)
    }
}

/// Checks a plugin id: it names the plugin, the directory, the crate, the
/// Python module and the npm package, so it must suit all of them.
fn check_id(id: &str) -> Result<(), UsageError> {
    let ok = id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--")
        && id.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(UsageError(format!(
            "`{id}` is not a valid plugin id: use lowercase letters, digits and single dashes, \
             starting with a letter (e.g. `my-scorer`)"
        )))
    }
}

/// `My scorer` for `my-scorer`.
fn title(id: &str) -> String {
    let words = id.replace('-', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => words,
    }
}

/// The checkout this binary was built from, if it is still there.
fn built_from_checkout() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("plugin-sdk/Cargo.toml")
        .is_file()
        .then(|| root.canonicalize().ok())
        .flatten()
}

/// The SDK folder a language needs inside the checkout.
fn sdk_dir(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "plugin-sdk",
        Lang::Python => "sdk/python",
        Lang::Js => "sdk/js",
    }
}

fn sdk_root(args: &NewArgs) -> Result<PathBuf> {
    let root = match &args.sdk_root {
        Some(dir) => dir
            .canonicalize()
            .with_context(|| format!("--sdk-root {}", dir.display()))?,
        None => built_from_checkout().ok_or_else(|| {
            UsageError(
                "the assay checkout this binary was built from is gone: pass --sdk-root DIR, \
                 a checkout of assay (the folder holding plugin-sdk/ and sdk/)"
                    .into(),
            )
        })?,
    };
    let needed = root.join(sdk_dir(args.lang));
    if !needed.is_dir() {
        return Err(UsageError(format!(
            "{} has no {} folder: --sdk-root must be a checkout of assay",
            root.display(),
            sdk_dir(args.lang)
        ))
        .into());
    }
    // The path is written into TOML, JSON and shell lines verbatim.
    let text = root.to_string_lossy();
    if text.contains(['"', '\\', '\'', '\n', '$', '`']) {
        bail!(
            "the SDK path {} contains quotes, backslashes or `$`; move the checkout or pass \
             --sdk-root through a plain path (a symlink works)",
            root.display()
        );
    }
    Ok(root)
}

/// Runs `plugin new`.
pub fn run(args: NewArgs) -> Result<Exit> {
    check_id(&args.name)?;
    let root = sdk_root(&args)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        let empty = dir.is_dir() && std::fs::read_dir(&dir)?.next().is_none();
        if !empty {
            return Err(UsageError(format!(
                "{} already exists and is not an empty directory; nothing was written",
                dir.display()
            ))
            .into());
        }
    }
    let kind = match args.kind {
        KindArg::Scorer => "scorer",
        KindArg::Target => "target",
    };
    let vars = Vars {
        id: args.name.clone(),
        module: args.name.replace('-', "_"),
        title: title(&args.name),
        kind,
        sdk_root: root.to_string_lossy().into_owned(),
    };
    let mut written = Vec::new();
    for f in template(args.lang, args.kind) {
        let path = dir.join(vars.render(f.path));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, vars.render(f.text))
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    println!(
        "Created {kind} `{}` in {} ({:?}, SDK from {}):",
        args.name,
        dir.display(),
        args.lang,
        root.display()
    );
    for path in &written {
        println!("  {}", path.display());
    }
    println!(
        "Next: see {} (test, build, check).",
        dir.join("README.md").display()
    );
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_suit_every_language() {
        for good in ["my-scorer", "a", "word-overlap2"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in [
            "My-scorer",
            "1st",
            "-x",
            "x-",
            "a--b",
            "a_b",
            "a.b",
            "",
            "é",
        ] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_template_placeholder_is_known() {
        let vars = Vars {
            id: "x".into(),
            module: "x".into(),
            title: "X".into(),
            kind: "scorer",
            sdk_root: "/sdk".into(),
        };
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for kind in [KindArg::Scorer, KindArg::Target] {
                for f in template(lang, kind) {
                    let text = vars.render(f.text);
                    assert!(
                        !text.contains("{{"),
                        "{:?} {:?} {}: {text}",
                        lang,
                        kind,
                        f.path
                    );
                    assert!(!vars.render(f.path).contains("{{"));
                }
            }
        }
    }

    #[test]
    fn titles() {
        assert_eq!(title("my-scorer"), "My scorer");
    }
}
