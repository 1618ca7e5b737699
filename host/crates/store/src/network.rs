//! Network grants and secrets, as stored.
//!
//! Two storage areas live here: [`GrantStore`] (what outbound HTTP a plugin
//! may do, per tenant) and [`SecretStore`] (a tenant's sealed secrets). The
//! store does not interpret either: a grant is kept as the JSON text the
//! plugin host's `NetworkGrant` validated, and a secret as the ciphertext and
//! nonce the runner sealed it into (the key never reaches the database). See
//! `docs/secrets.md`.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};

/// Longest secret name accepted.
pub const MAX_SECRET_NAME: usize = 128;

/// Checks a secret name: `[A-Z_][A-Z0-9_]*`, at most 128 characters (the
/// shape of an environment variable, so `{{secret.OPENAI_API_KEY}}` reads
/// like one).
pub fn check_secret_name(name: &str) -> StoreResult<()> {
    let mut bytes = name.bytes();
    let first_ok = matches!(bytes.next(), Some(b'A'..=b'Z' | b'_'));
    if !first_ok
        || name.len() > MAX_SECRET_NAME
        || !bytes.all(|b| matches!(b, b'A'..=b'Z' | b'0'..=b'9' | b'_'))
    {
        return Err(StoreError::Validation {
            field: "name".into(),
            message: format!(
                "secret name {name:?} must match [A-Z_][A-Z0-9_]* and be at most {MAX_SECRET_NAME} characters"
            ),
        });
    }
    Ok(())
}

/// A plugin's network grant in one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginGrant {
    pub tenant_id: String,
    pub plugin_id: String,
    /// The grant as JSON text (a `NetworkGrant` of the plugin host).
    pub grant_json: String,
    /// Who set it: `cli` for the command line, `key:<id>` for an API key.
    pub granted_by: String,
    pub updated_at: DateTime<Utc>,
}

/// A secret's name and times: what listings show (never the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A secret as stored: sealed by the runner, opaque to the store.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub name: String,
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    /// Names and sizes only: a ciphertext is not useful in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("name", &self.name)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// Network grants per tenant and plugin id.
#[async_trait]
pub trait GrantStore: Send + Sync + 'static {
    /// Sets (or replaces) the grant of plugin `plugin_id` for `tenant`. The
    /// plugin must be visible to the tenant (its own or a shared one;
    /// `NotFound` otherwise).
    async fn set_plugin_grant(
        &self,
        tenant: &str,
        plugin_id: &str,
        grant_json: &str,
        granted_by: &str,
    ) -> StoreResult<PluginGrant>;
    /// The grant, if one is set.
    async fn get_plugin_grant(
        &self,
        tenant: &str,
        plugin_id: &str,
    ) -> StoreResult<Option<PluginGrant>>;
    /// Removes the grant (`NotFound` when none is set).
    async fn delete_plugin_grant(&self, tenant: &str, plugin_id: &str) -> StoreResult<()>;
}

/// A tenant's sealed secrets.
#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// Inserts or replaces a secret (the name is checked with
    /// [`check_secret_name`]; the tenant must exist).
    async fn set_secret(&self, tenant: &str, secret: SealedSecret) -> StoreResult<SecretInfo>;
    /// Names and times, by name.
    async fn list_secrets(&self, tenant: &str) -> StoreResult<Vec<SecretInfo>>;
    /// `NotFound` when there is no such secret.
    async fn delete_secret(&self, tenant: &str, name: &str) -> StoreResult<()>;
    /// The sealed secrets among `names` that exist, by name (for the runner,
    /// which opens them).
    async fn sealed_secrets(
        &self,
        tenant: &str,
        names: &[String],
    ) -> StoreResult<Vec<SealedSecret>>;
}
