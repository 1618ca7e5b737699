//! The outbound HTTP a run's plugin calls get: the run's narrowed grant
//! for the plugin (or, for `assay run --allow-host`, the operator's one-off
//! grant), else the plugin's stored grant, else none; and, for a plugin
//! with a grant, the tenant's secrets, opened once per run.
//!
//! A grant trusts its hosts with the tenant's secrets: the host fills
//! `{{secret.NAME}}` into a request's headers only for a granted host, so
//! a plugin can send a secret nowhere else (see `docs/network.md`).

use std::sync::Arc;

use assay_plugin_host::{NetworkAccess, NetworkGrant, RateLimiterPool, SecretValue, Secrets};
use tokio::sync::OnceCell;

use crate::catalog::Catalog;
use crate::config::RunOptions;
use crate::error::RunError;
use crate::secrets::SecretVault;

/// Plans the network of one run's plugins.
pub(crate) struct NetworkPlanner<'a> {
    catalog: &'a Catalog,
    tenant: &'a str,
    options: &'a RunOptions,
    secrets: OnceCell<Arc<Secrets>>,
    /// The run's rate limiters: an equal limit in two plugins' grants is
    /// one limiter (see `docs/network.md`).
    rate_limiters: RateLimiterPool,
}

impl<'a> NetworkPlanner<'a> {
    pub(crate) fn new(catalog: &'a Catalog, tenant: &'a str, options: &'a RunOptions) -> Self {
        Self {
            catalog,
            tenant,
            options,
            secrets: OnceCell::new(),
            rate_limiters: RateLimiterPool::new(),
        }
    }

    /// The access of `plugin_id`'s calls in this run.
    pub(crate) async fn access_for(&self, plugin_id: &str) -> Result<NetworkAccess, RunError> {
        let grant = match self.options.network.get(plugin_id) {
            Some(grant) => grant.clone(),
            None => self.stored_grant(plugin_id).await?,
        };
        if grant.is_empty() {
            return Ok(NetworkAccess::none());
        }
        let secrets = self
            .secrets
            .get_or_try_init(|| self.open_secrets())
            .await?
            .clone();
        let mut access = NetworkAccess::new(grant, secrets);
        access.rate_limits = Arc::new(self.rate_limiters.limiters_for(&access.grant.rate_limits));
        Ok(access)
    }

    async fn stored_grant(&self, plugin_id: &str) -> Result<NetworkGrant, RunError> {
        let store = &self.catalog.store;
        let Some(record) = store.get_plugin_grant(self.tenant, plugin_id).await? else {
            return Ok(NetworkGrant::default());
        };
        serde_json::from_str(&record.grant_json).map_err(|e| RunError::PluginLoad {
            id: plugin_id.to_string(),
            message: format!("its stored network grant is unreadable: {e}"),
        })
    }

    /// Every secret of the tenant, opened with the process's key (none
    /// without a key: a request naming a secret then fails naming it).
    async fn open_secrets(&self) -> Result<Arc<Secrets>, RunError> {
        let Some(key) = self.catalog.secret_key() else {
            return Ok(Arc::default());
        };
        let store = &self.catalog.store;
        let names: Vec<String> = store
            .list_secrets(self.tenant)
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect();
        if names.is_empty() {
            return Ok(Arc::default());
        }
        let vault = SecretVault::new(store.clone(), key.clone());
        let opened =
            vault
                .resolve(self.tenant, &names)
                .await
                .map_err(|e| RunError::InvalidOptions {
                    field: "secrets".into(),
                    message: e.to_string(),
                })?;
        let mut secrets = Secrets::new();
        for (name, value) in opened.into_map() {
            secrets.insert(name, SecretValue::new(value));
        }
        Ok(Arc::new(secrets))
    }
}
