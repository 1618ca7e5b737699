//! `assay secret set|list|delete`: a tenant's secrets, sealed with the
//! operator's key before they reach the database (see docs/secrets.md).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use assay_runner::SecretVault;
use assay_runner::secrets::{DEFAULT_KEY_FILE, KeySource, MAX_SECRET_VALUE, SecretKey};
use clap::{Args, Subcommand};

use crate::app::App;
use crate::cli::print_json;
use crate::exit::Exit;
use crate::table;

/// Where the secret key comes from (global flags and environment).
#[derive(Debug, Clone, Args)]
pub struct SecretKeyArgs {
    /// File holding the 32-byte key secrets are sealed with, as 64 hex digits
    /// [default: ASSAY_SECRET_KEY if set, else secret.key in the user's data
    /// directory, assay/, created on first use]
    #[arg(
        long,
        global = true,
        env = "ASSAY_SECRET_KEY_FILE",
        value_name = "PATH"
    )]
    pub secret_key_file: Option<PathBuf>,
}

impl SecretKeyArgs {
    /// The key source these settings describe: `ASSAY_SECRET_KEY` (64 hex
    /// digits, never a flag, so it stays out of process listings), or the
    /// file, else the generated file in the data directory. Both at once is
    /// an error (one of them would be ignored).
    pub fn source(&self) -> Result<KeySource> {
        let hex = std::env::var("ASSAY_SECRET_KEY")
            .ok()
            .filter(|h| !h.trim().is_empty());
        match (hex, &self.secret_key_file) {
            (Some(_), Some(path)) => Err(anyhow!(
                "both ASSAY_SECRET_KEY and a secret key file ({}) are set\n  hint: set only one",
                path.display()
            )),
            (Some(hex), None) => Ok(KeySource::Hex(hex)),
            (None, Some(path)) => Ok(KeySource::File(path.clone())),
            (None, None) => Ok(KeySource::Generated(default_key_file())),
        }
    }

    /// The key when one is configured or was generated before; `None`
    /// (and nothing created) otherwise. What commands that only use
    /// secrets, like `assay run`, call.
    pub fn load_if_present(&self) -> Result<Option<SecretKey>> {
        match self.source()? {
            KeySource::Generated(path) if !path.exists() => Ok(None),
            source => Ok(Some(SecretKey::load(&source)?.key)),
        }
    }

    /// Loads the key, saying on stderr where a new one was written.
    pub fn load(&self) -> Result<SecretKey> {
        let loaded = SecretKey::load(&self.source()?)?;
        if let Some(path) = loaded.created {
            eprintln!(
                "Created a new secret key at {} (keep it: secrets sealed with it cannot be read without it)",
                path.display()
            );
        }
        Ok(loaded.key)
    }
}

/// `<data dir>/assay/secret.key`.
pub fn default_key_file() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("assay"))
        .unwrap_or_else(|| PathBuf::from("."))
        .join(DEFAULT_KEY_FILE)
}

/// Secret commands.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set (or replace) a secret; the value is read from standard input
    #[command(after_help = "\
Examples:
  printf '%s' \"$OPENAI_API_KEY\" | assay secret set OPENAI_API_KEY
  assay secret set OPENAI_API_KEY < key.txt

The value is read from standard input only (never a flag: arguments show up in
process listings and shell history); one trailing newline is dropped, an empty
value is refused. Names match [A-Z_][A-Z0-9_]*, at most 128 characters.
Plugins use a secret as {{secret.NAME}} in a request header.")]
    Set(NameArg),
    /// List secret names and when they were set (never values)
    #[command(after_help = "\
Examples:
  assay secret list
  assay secret list --json")]
    List(ListArgs),
    /// Delete a secret
    #[command(after_help = "\
Examples:
  assay secret delete OPENAI_API_KEY")]
    Delete(NameArg),
    /// Check that every secret of the tenant opens with the configured key
    #[command(after_help = "\
Examples:
  assay secret check
  ASSAY_SECRET_KEY_FILE=/etc/assay/secret.key assay secret check

Exit code 1 naming the first secret that was sealed with another key.")]
    Check,
}

/// A secret's name.
#[derive(Debug, Args)]
pub struct NameArg {
    /// Secret name, like OPENAI_API_KEY
    pub name: String,
}

/// `secret list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Runs a secret command.
pub async fn run(app: &App, key: &SecretKeyArgs, cmd: SecretCommand) -> Result<Exit> {
    match cmd {
        SecretCommand::Set(a) => {
            assay_store::check_secret_name(&a.name)?;
            let value = read_value(&a.name)?;
            let vault = SecretVault::new(app.store.clone(), key.load()?);
            vault.set(&app.tenant, &a.name, &value).await?;
            println!("Set secret {}", a.name);
        }
        SecretCommand::List(a) => {
            let secrets = app.store.list_secrets(&app.tenant).await?;
            if a.json {
                print_json(&secrets)?;
            } else if secrets.is_empty() {
                println!("No secrets.\n  hint: printf '%s' VALUE | assay secret set NAME");
            } else {
                let rows: Vec<Vec<String>> = secrets
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            s.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                            s.updated_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(&["NAME", "CREATED", "UPDATED"], &rows, &[])
                );
            }
        }
        SecretCommand::Check => {
            let names: Vec<String> = app
                .store
                .list_secrets(&app.tenant)
                .await?
                .into_iter()
                .map(|s| s.name)
                .collect();
            let vault = SecretVault::new(app.store.clone(), key.load()?);
            vault.resolve(&app.tenant, &names).await?;
            println!("{} secret(s) open with this key", names.len());
        }
        SecretCommand::Delete(a) => {
            app.store
                .delete_secret(&app.tenant, &a.name)
                .await
                .map_err(|e| {
                    if e.is_not_found() {
                        anyhow!(
                            "no secret named {}\n  hint: `assay secret list` shows the secrets",
                            a.name
                        )
                    } else {
                        e.into()
                    }
                })?;
            println!("Deleted secret {}", a.name);
        }
    }
    Ok(Exit::Success)
}

/// The value from standard input, one trailing newline (`\n` or `\r\n`)
/// dropped.
fn read_value(name: &str) -> Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_SECRET_VALUE as u64 + 3)
        .read_to_end(&mut bytes)
        .context("cannot read the secret's value from standard input")?;
    let mut value = String::from_utf8(bytes)
        .map_err(|_| anyhow!("the value of secret {name} is not UTF-8 text"))?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        return Err(anyhow!(
            "the value of secret {name} is empty\n  hint: pipe the value in: printf '%s' VALUE | assay secret set {name}"
        ));
    }
    Ok(value)
}
