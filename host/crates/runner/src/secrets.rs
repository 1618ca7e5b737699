//! Secrets at rest: sealing a tenant's secret values with a key the database
//! never holds, and opening them for a run.
//!
//! * AEAD: XChaCha20-Poly1305 (`chacha20poly1305`), a fresh random 24-byte
//!   nonce per write (random nonces of that size do not collide in
//!   practice, so no counter has to be kept across processes).
//! * The associated data is `assay-secret\0<tenant>\0<name>`: a ciphertext
//!   copied onto another tenant's or another name's row fails to open
//!   instead of yielding a value where it does not belong.
//! * The key is 32 bytes the operator provides ([`KeySource`]); a key file
//!   holds them as 64 hex digits. When none is configured, one is generated
//!   on first use in the data directory (file 0600, directory 0700).
//! * Values never appear in `Debug` output: [`SecretKey`] and
//!   [`ResolvedSecrets`] print names only.
//!
//! Rotation (re-sealing every secret under a new key) is not built yet; see
//! `docs/secrets.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use assay_store::{SealedSecret, SecretInfo, Store, StoreError, check_secret_name};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// Bytes of a key.
pub const KEY_BYTES: usize = 32;
/// Bytes of a nonce.
pub const NONCE_BYTES: usize = 24;
/// Name of the generated key file in the data directory.
pub const DEFAULT_KEY_FILE: &str = "secret.key";
/// Longest secret value accepted (a token or a key, not a document).
pub const MAX_SECRET_VALUE: usize = 64 * 1024;

/// What can go wrong with secrets.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret key {0}")]
    BadKey(String),
    #[error("cannot {action} the secret key file {path}: {source}")]
    KeyFile {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot decrypt secret {name}: the key differs from the one it was written with")]
    WrongKey { name: String },
    #[error("secret {name} is not set for this tenant (set it with `assay secret set {name}`)")]
    Missing { name: String },
    #[error("invalid value of secret {name}: {reason}")]
    BadValue { name: String, reason: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The 32-byte key secrets are sealed with.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_BYTES]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Where the key comes from, in the order an operator's settings are
/// looked at: a hex value (`ASSAY_SECRET_KEY`), a file
/// (`--secret-key-file` / `ASSAY_SECRET_KEY_FILE`), else the generated file
/// in the data directory.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// 64 hex digits.
    Hex(String),
    /// A file holding 64 hex digits (whitespace around them ignored).
    File(PathBuf),
    /// A file created with a new random key when it does not exist yet.
    Generated(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Hex(_) => f.write_str("Hex(..)"),
            KeySource::File(p) => f.debug_tuple("File").field(p).finish(),
            KeySource::Generated(p) => f.debug_tuple("Generated").field(p).finish(),
        }
    }
}

/// A key read or made from a [`KeySource`].
#[derive(Debug)]
pub struct LoadedKey {
    pub key: SecretKey,
    /// The file a new key was written to, when this load created it.
    pub created: Option<PathBuf>,
}

impl SecretKey {
    /// A new random key (from the operating system's CSPRNG via `rand`).
    pub fn random() -> Self {
        let mut bytes = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let bytes = hex::decode(text)
            .map_err(|_| SecretError::BadKey("must be 64 hex digits (32 bytes)".into()))?;
        let bytes: [u8; KEY_BYTES] = bytes.try_into().map_err(|b: Vec<u8>| {
            SecretError::BadKey(format!(
                "must be 64 hex digits (32 bytes), not {} bytes",
                b.len()
            ))
        })?;
        Ok(Self(bytes))
    }

    fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads or makes the key `source` describes.
    pub fn load(source: &KeySource) -> Result<LoadedKey, SecretError> {
        match source {
            KeySource::Hex(text) => Ok(LoadedKey {
                key: Self::from_hex(text)?,
                created: None,
            }),
            KeySource::File(path) => Ok(LoadedKey {
                key: read_key_file(path)?,
                created: None,
            }),
            KeySource::Generated(path) => match read_key_file(path) {
                Ok(key) => Ok(LoadedKey { key, created: None }),
                Err(SecretError::KeyFile { source, .. })
                    if source.kind() == ErrorKind::NotFound =>
                {
                    let key = Self::random();
                    match write_new_key_file(path, &key) {
                        Ok(()) => Ok(LoadedKey {
                            key,
                            created: Some(path.clone()),
                        }),
                        // Another process made it first: use theirs.
                        Err(SecretError::KeyFile { source, .. })
                            if source.kind() == ErrorKind::AlreadyExists =>
                        {
                            Ok(LoadedKey {
                                key: read_key_file(path)?,
                                created: None,
                            })
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            },
        }
    }
}

fn read_key_file(path: &Path) -> Result<SecretKey, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::KeyFile {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    SecretKey::from_hex(&text).map_err(|e| match e {
        SecretError::BadKey(why) => SecretError::BadKey(format!("in {}: {why}", path.display())),
        other => other,
    })
}

/// Writes a new key file, 0600 in a directory created 0700; never replaces
/// an existing file.
fn write_new_key_file(path: &Path, key: &SecretKey) -> Result<(), SecretError> {
    let fail = |action, source| SecretError::KeyFile {
        action,
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        let mut dir = DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(parent).map_err(|e| fail("create", e))?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| fail("create", e))?;
    writeln!(file, "{}", key.to_hex())
        .and_then(|()| file.sync_all())
        .map_err(|e| fail("write", e))
}

fn associated_data(tenant: &str, name: &str) -> Vec<u8> {
    format!("assay-secret\0{tenant}\0{name}").into_bytes()
}

/// Seals `value` as secret `name` of `tenant`.
pub fn seal(key: &SecretKey, tenant: &str, name: &str, value: &str) -> SealedSecret {
    let mut nonce = [0u8; NONCE_BYTES];
    rand::rng().fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let aad = associated_data(tenant, name);
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: value.as_bytes(),
                aad: &aad,
            },
        )
        .expect("XChaCha20-Poly1305 encrypts any message below 256 GiB");
    SealedSecret {
        name: name.to_string(),
        ciphertext,
        nonce: nonce.to_vec(),
    }
}

/// Opens a sealed secret of `tenant`. A wrong key, a tampered row or a row
/// moved from another tenant or name is [`SecretError::WrongKey`].
pub fn open(key: &SecretKey, tenant: &str, sealed: &SealedSecret) -> Result<String, SecretError> {
    let wrong = || SecretError::WrongKey {
        name: sealed.name.clone(),
    };
    let nonce: [u8; NONCE_BYTES] = sealed.nonce.as_slice().try_into().map_err(|_| wrong())?;
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let aad = associated_data(tenant, &sealed.name);
    let plain = cipher
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| wrong())?;
    String::from_utf8(plain).map_err(|_| wrong())
}

/// Secret values by name, for one call. `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ResolvedSecrets(BTreeMap<String, String>);

impl ResolvedSecrets {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
    /// The names present.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
    /// The map itself, for handing to the plugin host.
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }
}

impl fmt::Debug for ResolvedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A tenant's secrets through the store, sealed and opened with one key.
#[derive(Clone)]
pub struct SecretVault {
    store: Arc<dyn Store>,
    key: SecretKey,
}

impl fmt::Debug for SecretVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretVault").finish_non_exhaustive()
    }
}

impl SecretVault {
    pub fn new(store: Arc<dyn Store>, key: SecretKey) -> Self {
        Self { store, key }
    }

    /// Seals and stores (inserts or replaces) a secret. An empty value, or
    /// one over [`MAX_SECRET_VALUE`] bytes, is refused.
    pub async fn set(
        &self,
        tenant: &str,
        name: &str,
        value: &str,
    ) -> Result<SecretInfo, SecretError> {
        check_secret_name(name)?;
        if value.is_empty() {
            return Err(SecretError::BadValue {
                name: name.into(),
                reason: "the value is empty",
            });
        }
        if value.len() > MAX_SECRET_VALUE {
            return Err(SecretError::BadValue {
                name: name.into(),
                reason: "the value is over 64 KiB",
            });
        }
        let sealed = seal(&self.key, tenant, name, value);
        Ok(self.store.set_secret(tenant, sealed).await?)
    }

    /// The values of `names` for `tenant`; every name must be set.
    pub async fn resolve(
        &self,
        tenant: &str,
        names: &[String],
    ) -> Result<ResolvedSecrets, SecretError> {
        let sealed = self.store.sealed_secrets(tenant, names).await?;
        let mut out = BTreeMap::new();
        for s in &sealed {
            out.insert(s.name.clone(), open(&self.key, tenant, s)?);
        }
        if let Some(name) = names.iter().find(|n| !out.contains_key(*n)) {
            return Err(SecretError::Missing { name: name.clone() });
        }
        Ok(ResolvedSecrets(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_with_its_key_tenant_and_name_only() {
        let key = SecretKey::random();
        let sealed = seal(&key, "team-a", "OPENAI_API_KEY", "sk-123");
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"sk-123"));
        assert_eq!(open(&key, "team-a", &sealed).unwrap(), "sk-123");

        let other = SecretKey::random();
        let err = open(&other, "team-a", &sealed).unwrap_err().to_string();
        assert_eq!(
            err,
            "cannot decrypt secret OPENAI_API_KEY: the key differs from the one it was written with"
        );
        // Moved to another tenant or renamed: refused.
        assert!(open(&key, "team-b", &sealed).is_err());
        let renamed = SealedSecret {
            name: "OTHER".into(),
            ..sealed.clone()
        };
        assert!(open(&key, "team-a", &renamed).is_err());
        // Tampered: refused.
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(open(&key, "team-a", &tampered).is_err());
        // A fresh nonce per write.
        assert_ne!(
            seal(&key, "team-a", "N", "v").nonce,
            seal(&key, "team-a", "N", "v").nonce
        );
    }

    #[test]
    fn debug_output_shows_no_value_or_key() {
        let key = SecretKey::from_hex(&"ab".repeat(32)).unwrap();
        assert!(!format!("{key:?}").contains("ab"));
        assert!(!format!("{:?}", KeySource::Hex("ab".repeat(32))).contains("abab"));
        let resolved = ResolvedSecrets(BTreeMap::from([("K".to_string(), "hunter2".to_string())]));
        let shown = format!("{resolved:?}");
        assert!(shown.contains('K') && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn hex_keys_must_be_32_bytes() {
        assert!(SecretKey::from_hex(&"0f".repeat(32)).is_ok());
        for bad in ["", "xyz", &"0f".repeat(31), &"0f".repeat(33)] {
            assert!(
                matches!(SecretKey::from_hex(bad), Err(SecretError::BadKey(_))),
                "{bad}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_generated_key_file_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("data/assay/secret.key");
        let source = KeySource::Generated(path.clone());
        let first = SecretKey::load(&source).unwrap();
        assert_eq!(first.created.as_deref(), Some(path.as_path()));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let second = SecretKey::load(&source).unwrap();
        assert_eq!(second.created, None);
        assert_eq!(second.key, first.key);
        assert_eq!(
            SecretKey::load(&KeySource::File(path)).unwrap().key,
            first.key
        );
        // A configured file that does not exist is an error, not a new key.
        let missing = KeySource::File(tmp.path().join("nope.key"));
        assert!(matches!(
            SecretKey::load(&missing),
            Err(SecretError::KeyFile { .. })
        ));
    }

    #[tokio::test]
    async fn the_vault_resolves_what_it_set_and_names_what_it_cannot() {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", tmp.path().join("v.db").display());
        let store = assay_store::connect(&url).await.unwrap();
        let tenant = assay_store::DEFAULT_TENANT;
        let vault = SecretVault::new(store.clone(), SecretKey::random());
        vault.set(tenant, "A_KEY", "value-a").await.unwrap();
        vault.set(tenant, "B_KEY", "value-b").await.unwrap();
        let names = vec!["A_KEY".to_string()];
        let got = vault.resolve(tenant, &names).await.unwrap();
        assert_eq!(got.get("A_KEY"), Some("value-a"));
        assert_eq!(got.names().collect::<Vec<_>>(), ["A_KEY"]);

        let missing = vec!["A_KEY".to_string(), "NOPE".to_string()];
        let err = vault.resolve(tenant, &missing).await.unwrap_err();
        assert!(
            matches!(err, SecretError::Missing { ref name } if name == "NOPE"),
            "{err}"
        );

        assert!(matches!(
            vault.set(tenant, "EMPTY", "").await,
            Err(SecretError::BadValue { .. })
        ));
        assert!(
            vault
                .set(tenant, "BIG", &"x".repeat(MAX_SECRET_VALUE + 1))
                .await
                .is_err()
        );

        let other = SecretVault::new(store, SecretKey::random());
        let err = other.resolve(tenant, &names).await.unwrap_err().to_string();
        assert!(err.contains("cannot decrypt secret A_KEY"), "{err}");
    }
}
