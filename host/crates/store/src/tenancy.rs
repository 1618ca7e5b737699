//! Tenancy: tenants created by an operator, their stored limits and usage,
//! API keys, and the shared plugin namespace.
//!
//! Two storage areas live here: [`ApiKeyStore`] (keys, looked up by the
//! hash of their token) and [`TenancyStore`] (tenants, limits, usage and the
//! plugins a tenant can see). See `docs/tenancy.md` for the security model.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{StoreError, StoreResult};
use crate::models::{Page, Paged, PluginRecord};

/// The namespace of shared plugins (shipped, or registered by the operator
/// as shared): visible to every tenant, writable by none. `@` cannot appear
/// in a tenant name, so no tenant can take it.
pub const SHARED_TENANT: &str = "@shared";

/// Longest tenant name accepted.
pub const MAX_TENANT_NAME: usize = 64;

/// Whether `id` can name a tenant: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
pub fn valid_tenant_name(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TENANT_NAME
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What a key may do. Ordered: each role may do everything the roles below
/// it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only.
    Viewer,
    /// Datasets, items, runs and the tenant's own plugins.
    Member,
    /// A member who also manages the tenant's keys.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Member, Role::Admin];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may act where `required` is needed.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored API key (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    /// A label chosen at creation.
    pub name: Option<String>,
    pub role: Role,
    /// The first characters of the token (`assay_1a2b3c4d`), for listings.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// Set once revoked: the key no longer authenticates.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key to store: the hash of its token, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub tenant_id: String,
    pub name: Option<String>,
    pub role: Role,
    pub prefix: String,
    /// [`hash_token`] of the token.
    pub token_hash: String,
}

/// What every token starts with (so secret scanners and people recognize it).
pub const TOKEN_PREFIX: &str = "assay_";
/// Random bytes in a token (256 bits).
const TOKEN_BYTES: usize = 32;
/// Characters of the token kept visible as the key's prefix.
const VISIBLE_PREFIX: usize = TOKEN_PREFIX.len() + 8;

/// A new random token (`assay_` + 64 hex digits, 256 bits from the
/// operating system's CSPRNG via `rand`'s thread generator, which is
/// seeded from it) and the [`NewApiKey`] that stores its hash.
pub fn new_token(tenant: &str, role: Role, name: Option<String>) -> (String, NewApiKey) {
    use rand::RngCore;
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let key = NewApiKey {
        tenant_id: tenant.to_string(),
        name,
        role,
        prefix: token[..VISIBLE_PREFIX].to_string(),
        token_hash: hash_token(&token),
    };
    (token, key)
}

/// The stored form of a token: hex SHA-256. A token carries 256 random
/// bits, so a fast unsalted hash is enough (nothing to brute-force, unlike
/// a password); it also lets the key be found with one indexed lookup.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a key for `tenant` and returns it with its token (the only time
/// the token exists outside the caller's hands).
pub async fn issue_api_key(
    store: &dyn ApiKeyStore,
    tenant: &str,
    role: Role,
    name: Option<String>,
) -> StoreResult<(ApiKey, String)> {
    let (token, new) = new_token(tenant, role, name);
    let key = store.create_api_key(new).await?;
    Ok((key, token))
}

/// The live (not revoked) key a token belongs to, if any.
pub async fn authenticate(store: &dyn ApiKeyStore, token: &str) -> StoreResult<Option<ApiKey>> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    Ok(store
        .api_key_by_hash(&hash_token(token))
        .await?
        .filter(|k| k.revoked_at.is_none()))
}

/// One limit of a tenant: its name (as `assay tenant limits --set` takes
/// it and as errors name it), what it bounds, its default and the values
/// it may take.
pub struct LimitSpec {
    pub key: &'static str,
    pub about: &'static str,
    pub default: i64,
    /// Smallest value accepted.
    pub min: i64,
    /// Largest value accepted.
    pub max: i64,
    get: fn(&TenantLimits) -> i64,
    set: fn(&mut TenantLimits, i64),
}

impl LimitSpec {
    /// The value of this limit in `limits`.
    pub fn get(&self, limits: &TenantLimits) -> i64 {
        (self.get)(limits)
    }
}

macro_rules! limit {
    ($key:literal, $field:ident, $default:expr, $about:literal) => {
        limit!($key, $field, $default, 0..=i64::MAX, $about)
    };
    ($key:literal, $field:ident, $default:expr, $min:literal..=$max:expr, $about:literal) => {
        LimitSpec {
            key: $key,
            about: $about,
            default: $default,
            min: $min,
            max: $max,
            get: |l| l.$field,
            set: |l, v| l.$field = v,
        }
    };
}

/// Largest fair-share weight of a tenant (the smallest is 1).
pub const MAX_TENANT_WEIGHT: i64 = 1000;

/// Every stored limit of a tenant.
pub static LIMITS: &[LimitSpec] = &[
    limit!(
        "items-in-flight",
        items_in_flight,
        256,
        "items of the tenant executing at once; also the largest maxConcurrency of one run"
    ),
    limit!(
        "active-runs",
        active_runs,
        16,
        "runs of the tenant executing at once (more wait as pending)"
    ),
    limit!(
        "queued-runs",
        queued_runs,
        1000,
        "pending runs of the tenant (a trigger beyond: 429)"
    ),
    limit!("datasets", datasets, 1000, "datasets of the tenant"),
    limit!(
        "items-per-dataset",
        items_per_dataset,
        10_000_000,
        "live items of one dataset"
    ),
    limit!(
        "stored-bytes",
        stored_bytes,
        10 << 30,
        "bytes of item JSON stored, all versions"
    ),
    limit!("plugins", plugins, 100, "plugins the tenant registered"),
    limit!(
        "plugin-bytes",
        plugin_bytes,
        1 << 30,
        "bytes of the tenant's plugin components"
    ),
    limit!(
        "weight",
        weight,
        1,
        1..=MAX_TENANT_WEIGHT,
        "the tenant's share of the run and item slots while other tenants have work, \
         relative to theirs (see docs/fair-share.md)"
    ),
    limit!(
        "cache-bytes",
        cache_bytes,
        1 << 30,
        "bytes of cached target outputs (runs with cache on); least recently used beyond it \
         are evicted (see docs/caching.md)"
    ),
];

/// The limits an operator sets for a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantLimits {
    pub items_in_flight: i64,
    pub active_runs: i64,
    pub queued_runs: i64,
    pub datasets: i64,
    pub items_per_dataset: i64,
    pub stored_bytes: i64,
    pub plugins: i64,
    pub plugin_bytes: i64,
    /// Fair-share weight, 1 to [`MAX_TENANT_WEIGHT`]: while tenants compete,
    /// each gets slots in proportion to its weight. A share, not a limit.
    pub weight: i64,
    /// Budget of the output cache, bytes: a write beyond it evicts the
    /// least recently used entries instead of being refused.
    pub cache_bytes: i64,
}

impl Default for TenantLimits {
    fn default() -> Self {
        let mut l = TenantLimits {
            items_in_flight: 0,
            active_runs: 0,
            queued_runs: 0,
            datasets: 0,
            items_per_dataset: 0,
            stored_bytes: 0,
            plugins: 0,
            plugin_bytes: 0,
            weight: 0,
            cache_bytes: 0,
        };
        for spec in LIMITS {
            (spec.set)(&mut l, spec.default);
        }
        l
    }
}

impl TenantLimits {
    /// Sets `key` (a [`LIMITS`] key) from `value` (a non-negative integer;
    /// `k`, `M`, `G` suffixes multiply by 1024). The error names the valid
    /// keys, or says what is wrong with the value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let Some(spec) = LIMITS.iter().find(|s| s.key == key) else {
            let keys: Vec<_> = LIMITS.iter().map(|s| s.key).collect();
            return Err(format!(
                "unknown limit `{key}`; valid limits: {}",
                keys.join(", ")
            ));
        };
        let v = parse_amount(value).ok_or_else(|| {
            format!("`{key}={value}`: expected a whole number >= 0 (e.g. 500, 64M, 2G)")
        })?;
        if !(spec.min..=spec.max).contains(&v) {
            return Err(out_of_range(spec, v));
        }
        (spec.set)(self, v);
        Ok(())
    }

    /// `Validation` naming the first limit outside the values it may take.
    pub fn check(&self) -> StoreResult<()> {
        match LIMITS
            .iter()
            .find(|s| !(s.min..=s.max).contains(&s.get(self)))
        {
            Some(spec) => Err(StoreError::validation(
                spec.key,
                out_of_range(spec, spec.get(self)),
            )),
            None => Ok(()),
        }
    }

    /// `(key, value)` of every limit, in [`LIMITS`] order.
    pub fn entries(&self) -> Vec<(&'static str, i64)> {
        LIMITS.iter().map(|s| (s.key, s.get(self))).collect()
    }
}

fn out_of_range(spec: &LimitSpec, v: i64) -> String {
    if spec.max == i64::MAX {
        format!("`{}` must be at least {}, got {v}", spec.key, spec.min)
    } else {
        format!(
            "`{}` must be between {} and {}, got {v}",
            spec.key, spec.min, spec.max
        )
    }
}

fn parse_amount(value: &str) -> Option<i64> {
    let v = value.trim();
    let (num, mult) = match v.chars().last()? {
        'k' | 'K' => (&v[..v.len() - 1], 1i64 << 10),
        'm' | 'M' => (&v[..v.len() - 1], 1 << 20),
        'g' | 'G' => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    let n: i64 = num.trim().parse().ok()?;
    (n >= 0).then(|| n.checked_mul(mult)).flatten()
}

/// What a tenant currently uses, to compare with its limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantUsage {
    pub datasets: i64,
    pub stored_bytes: i64,
    pub plugins: i64,
    pub plugin_bytes: i64,
    pub active_runs: i64,
    pub queued_runs: i64,
    /// Bytes of cached target outputs.
    pub cache_bytes: i64,
}

/// A tenant as the operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantInfo {
    pub id: String,
    pub limits: TenantLimits,
    pub created_at: DateTime<Utc>,
}

/// The error of an operation that would take a tenant past limit `key`.
pub fn over_limit(key: &'static str, limit: i64, detail: impl fmt::Display) -> StoreError {
    StoreError::LimitExceeded {
        key,
        what: detail.to_string(),
        limit,
    }
}

/// `LimitExceeded` unless the tenant may create one more dataset.
pub async fn check_new_dataset(store: &dyn TenancyStore, tenant: &str) -> StoreResult<()> {
    let limits = store.tenant_limits(tenant).await?;
    let usage = store.tenant_usage(tenant).await?;
    admit_dataset(&limits, &usage)
}

/// `LimitExceeded` unless the tenant may store one more plugin of `size`
/// bytes (`replaces`: the size of its plugin with the same id, if any).
pub async fn check_new_plugin(
    store: &dyn TenancyStore,
    tenant: &str,
    size: i64,
    replaces: Option<i64>,
) -> StoreResult<()> {
    let limits = store.tenant_limits(tenant).await?;
    let usage = store.tenant_usage(tenant).await?;
    admit_plugin(&limits, &usage, size, replaces)
}

/// The dataset limit, as data: the early check above and the store's
/// admission inside the write transaction apply the same rule.
pub fn admit_dataset(limits: &TenantLimits, usage: &TenantUsage) -> StoreResult<()> {
    if usage.datasets >= limits.datasets {
        return Err(over_limit(
            "datasets",
            limits.datasets,
            format_args!("the tenant has {} datasets", usage.datasets),
        ));
    }
    Ok(())
}

/// The plugin count and bytes limits (see [`admit_dataset`]).
pub fn admit_plugin(
    limits: &TenantLimits,
    usage: &TenantUsage,
    size: i64,
    replaces: Option<i64>,
) -> StoreResult<()> {
    if replaces.is_none() && usage.plugins >= limits.plugins {
        return Err(over_limit(
            "plugins",
            limits.plugins,
            format_args!("the tenant has {} plugins", usage.plugins),
        ));
    }
    let after = usage.plugin_bytes - replaces.unwrap_or(0) + size;
    if after > limits.plugin_bytes {
        return Err(over_limit(
            "plugin-bytes",
            limits.plugin_bytes,
            format_args!(
                "the tenant's plugins would take {after} bytes ({} stored, this one {size})",
                usage.plugin_bytes
            ),
        ));
    }
    Ok(())
}

/// The queued-runs limit (see [`admit_dataset`]).
pub fn admit_run(limits: &TenantLimits, usage: &TenantUsage) -> StoreResult<()> {
    if usage.queued_runs >= limits.queued_runs {
        return Err(over_limit(
            "queued-runs",
            limits.queued_runs,
            format_args!("the tenant has {} runs waiting to start", usage.queued_runs),
        ));
    }
    Ok(())
}

/// `LimitExceeded` when `adding` more bytes of items would take a tenant
/// storing `stored` past `max`.
pub fn check_stored_bytes(stored: i64, adding: i64, max: i64) -> StoreResult<()> {
    if stored.saturating_add(adding) > max {
        return Err(over_limit(
            "stored-bytes",
            max,
            format_args!("{stored} bytes stored, adding {adding}"),
        ));
    }
    Ok(())
}

/// Bytes of an item's JSON as the stored-bytes limit counts them.
pub fn item_bytes(
    input: &serde_json::Value,
    expected: Option<&serde_json::Value>,
    context: Option<&serde_json::Value>,
) -> i64 {
    let len = |v: &serde_json::Value| serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0) as i64;
    len(input) + expected.map(len).unwrap_or(0) + context.map(len).unwrap_or(0)
}

/// API keys.
#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Stores a key. `NotFound` when its tenant does not exist.
    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKey>;
    /// The key whose token hashes to `token_hash` (revoked ones too).
    async fn api_key_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiKey>>;
    /// Keys, oldest first: of one tenant, or of all.
    async fn list_api_keys(&self, tenant: Option<&str>) -> StoreResult<Vec<ApiKey>>;
    /// Revokes key `id` (of `tenant` when given: another tenant's key is
    /// `NotFound`). Revoking twice keeps the first time.
    async fn revoke_api_key(&self, tenant: Option<&str>, id: &str) -> StoreResult<ApiKey>;
}

/// Tenants as an operator manages them, and what a tenant may see.
#[async_trait]
pub trait TenancyStore: Send + Sync + 'static {
    /// Creates tenant `id` (a valid name) with `limits`; `Conflict` when it
    /// exists.
    async fn create_tenant(&self, id: &str, limits: &TenantLimits) -> StoreResult<TenantInfo>;
    /// Every tenant, by id (the shared namespace is not a tenant).
    async fn list_tenants(&self) -> StoreResult<Vec<TenantInfo>>;
    /// A tenant's limits; `NotFound` for an unknown tenant.
    async fn tenant_limits(&self, id: &str) -> StoreResult<TenantLimits>;
    /// Replaces a tenant's limits.
    async fn set_tenant_limits(&self, id: &str, limits: &TenantLimits)
    -> StoreResult<TenantLimits>;
    /// What the tenant uses now.
    async fn tenant_usage(&self, id: &str) -> StoreResult<TenantUsage>;
    /// The tenant's own plugins and the shared ones, by id (a tenant plugin
    /// whose id a shared plugin also has is listed once, as the tenant's).
    async fn list_visible_plugins(
        &self,
        tenant: &str,
        page: Page,
    ) -> StoreResult<Paged<PluginRecord>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_stored_hashed() {
        let (a, key) = new_token("t", Role::Member, None);
        let (b, _) = new_token("t", Role::Member, None);
        assert_ne!(a, b);
        assert!(a.starts_with("assay_") && a.len() == 6 + 64, "{a}");
        assert!(a.starts_with(&key.prefix) && key.prefix.len() == 14);
        assert_eq!(key.token_hash, hash_token(&a));
        assert!(!key.token_hash.contains(&a[6..]));
    }

    #[test]
    fn limits_are_set_by_key_and_unknown_keys_list_the_valid_ones() {
        let mut l = TenantLimits::default();
        assert_eq!(l.items_in_flight, 256);
        l.set("queued-runs", "5").unwrap();
        l.set("plugin-bytes", "64M").unwrap();
        assert_eq!((l.queued_runs, l.plugin_bytes), (5, 64 << 20));
        let e = l.set("queue", "5").unwrap_err();
        assert!(e.contains("queue") && e.contains("queued-runs") && e.contains("plugin-bytes"));
        assert!(l.set("datasets", "-1").is_err());
        assert!(l.set("datasets", "many").is_err());
        assert_eq!(l.weight, 1);
        l.set("weight", "3").unwrap();
        assert_eq!(l.weight, 3);
        for bad in ["0", "1001", "1k"] {
            let e = l.set("weight", bad).unwrap_err();
            assert!(e.contains("between 1 and 1000"), "{bad}: {e}");
        }
        assert_eq!(l.weight, 3, "a refused value changes nothing");
        assert!(l.check().is_ok());
        l.weight = 0;
        assert!(l.check().is_err());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.allows(Role::Member));
        assert!(Role::Member.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Member));
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
        assert!(valid_tenant_name("team-a.prod_1"));
        assert!(!valid_tenant_name(SHARED_TENANT));
    }
}
