//! SQL text that is the same on every backend, one module per area.
//!
//! Parameters are written `$N` everywhere (SQLite accepts them and sqlx
//! binds them by number), so one statement serves both databases. What a
//! backend writes itself is only what its database does differently:
//! boolean literals (`0`/`1` vs `FALSE`/`TRUE`), lists of ids (`json_each`
//! vs `= ANY($N)`), case-insensitive search, row locks and the claim and
//! fencing statements (see `docs/storage.md`).

use crate::rows::{
    api_key_cols, dataset_cols, dataset_version_cols, item_cols, item_version_cols, plugin_cols,
    result_cols, run_cols, tenant_cols, tenant_limit_cols,
};

/// Tenants.
pub mod tenants {
    use super::*;

    pub const GET: &str = concat!("SELECT ", tenant_cols!(), " FROM tenants WHERE id = $1");
    pub const EXISTS: &str = "SELECT 1 FROM tenants WHERE id = $1";
    pub const EXISTS_FOR_SHARE: &str = "SELECT 1 FROM tenants WHERE id = $1 FOR SHARE";
}

/// Datasets and their version history.
pub mod datasets {
    use super::*;

    pub const GET: &str = concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE id = $1 AND tenant_id = $2"
    );
    pub const GET_FOR_SHARE: &str = concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE id = $1 AND tenant_id = $2 FOR SHARE"
    );
    pub const GET_FOR_UPDATE: &str = concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE id = $1 AND tenant_id = $2 FOR UPDATE"
    );
    pub const GET_BY_NAME: &str = concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE tenant_id = $1 AND name = $2"
    );
    pub const COUNT: &str = "SELECT COUNT(*) FROM datasets WHERE tenant_id = $1";
    pub const LIST: &str = concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    );
    /// Binds: id, tenant, name, description, metadata, input schema, output
    /// schema, time.
    pub const INSERT: &str = "INSERT INTO datasets (id, tenant_id, name, description, metadata, \
         input_schema, output_schema, version, item_count, next_position, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, 0, $8, $8)";
    pub const UPDATE: &str = "UPDATE datasets SET name = $1, description = $2, metadata = $3, \
         input_schema = $4, output_schema = $5, version = $6, updated_at = $7 WHERE id = $8";
    pub const COUNT_ACTIVE_RUNS: &str =
        "SELECT COUNT(*) FROM runs WHERE dataset_id = $1 AND status IN ('pending', 'running')";
    pub const DELETE: &str = "DELETE FROM datasets WHERE id = $1";
    pub const INSERT_VERSION: &str = "INSERT INTO dataset_versions (dataset_id, version, change, \
         created_at) VALUES ($1, $2, $3, $4)";
    pub const COUNT_VERSIONS: &str = "SELECT COUNT(*) FROM dataset_versions WHERE dataset_id = $1";
    pub const LIST_VERSIONS: &str = concat!(
        "SELECT ",
        dataset_version_cols!(),
        " FROM dataset_versions WHERE dataset_id = $1 ORDER BY version DESC LIMIT $2 OFFSET $3"
    );
}

/// Items and their versions.
pub mod items {
    use super::*;

    /// Up to $3 live items of dataset $1 after position $2. `{NOT_DELETED}`
    /// is the database's tombstone filter (`crate::shared::with_not_deleted`).
    pub const LIVE_PAGE: &str = concat!(
        "SELECT ",
        item_cols!(),
        " FROM item_versions iv WHERE iv.dataset_id = $1 AND iv.position > $2 \
         AND iv.valid_to IS NULL AND {NOT_DELETED} ORDER BY iv.position LIMIT $3"
    );
    /// The live row of item $1 in dataset $2, with its version number.
    pub const LIVE_ITEM: &str = concat!(
        "SELECT ",
        item_cols!(),
        ", iv.version_number FROM item_versions iv WHERE iv.item_id = $1 AND iv.dataset_id = $2 \
         AND iv.valid_to IS NULL AND {NOT_DELETED}"
    );
    /// How many items dataset $1 had at version $2.
    pub const COUNT_AT_VERSION: &str = "SELECT COUNT(*) FROM item_versions iv \
         WHERE iv.dataset_id = $1 AND iv.valid_from <= $2 \
         AND (iv.valid_to IS NULL OR iv.valid_to > $2) AND {NOT_DELETED}";
    /// One item version. Binds: item, version number, dataset, position,
    /// valid from, is deleted, input, expected output, context, item
    /// created, created.
    pub const INSERT_ONE: &str = "INSERT INTO item_versions (item_id, version_number, \
         dataset_id, position, valid_from, is_deleted, input, expected_output, context, \
         item_created_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    /// The head of a multi-row insert of item versions.
    pub const INSERT_HEAD: &str = "INSERT INTO item_versions (item_id, version_number, \
         dataset_id, position, valid_from, is_deleted, input, expected_output, context, \
         item_created_at, created_at) ";
    /// The dataset's item limit, its next position, the tenant's stored-bytes
    /// limit and what the tenant stores now. Binds: dataset.
    pub const LIMITS_AND_NEXT_POSITION: &str = "SELECT t.max_items_per_dataset, d.next_position, \
         t.max_stored_bytes, \
         (SELECT CAST(COALESCE(SUM(o.stored_bytes), 0) AS BIGINT) FROM datasets o \
          WHERE o.tenant_id = d.tenant_id) \
         FROM datasets d JOIN tenants t ON t.id = d.tenant_id WHERE d.id = $1";
    /// Binds: version, items added, time, dataset, bytes added.
    pub const BUMP_FOR_ADD: &str = "UPDATE datasets SET version = $1, item_count = item_count + $2, \
         next_position = next_position + $2, updated_at = $3, \
         stored_bytes = stored_bytes + $5 WHERE id = $4";
    /// Binds: version, items deleted, time, dataset.
    pub const BUMP_FOR_DELETE: &str = "UPDATE datasets SET version = $1, \
         item_count = item_count - $2, updated_at = $3 WHERE id = $4";
    /// Binds: version, time, dataset, bytes of the new item version.
    pub const BUMP_FOR_UPDATE: &str = "UPDATE datasets SET version = $1, updated_at = $2, \
         stored_bytes = stored_bytes + $4 WHERE id = $3";
    /// Closes one item version. Binds: version, item, version number.
    pub const CLOSE: &str =
        "UPDATE item_versions SET valid_to = $1 WHERE item_id = $2 AND version_number = $3";
    pub const COUNT_VERSIONS: &str =
        "SELECT COUNT(*) FROM item_versions WHERE item_id = $1 AND dataset_id = $2";
    pub const LIST_VERSIONS: &str = concat!(
        "SELECT ",
        item_version_cols!(),
        " FROM item_versions WHERE item_id = $1 AND dataset_id = $2 \
         ORDER BY version_number DESC LIMIT $3 OFFSET $4"
    );
    pub const GET_VERSION: &str = concat!(
        "SELECT ",
        item_version_cols!(),
        " FROM item_versions WHERE item_id = $1 AND dataset_id = $2 AND version_number = $3"
    );
}

/// Runs.
pub mod runs {
    use super::*;

    pub const GET: &str = concat!(
        "SELECT ",
        run_cols!(),
        " FROM runs WHERE id = $1 AND tenant_id = $2"
    );
    pub const GET_FOR_UPDATE: &str = concat!(
        "SELECT ",
        run_cols!(),
        " FROM runs WHERE id = $1 AND tenant_id = $2 FOR UPDATE"
    );
    /// Ends a run. Binds: status, error (NULL keeps the stored one),
    /// succeeded, failed, results, time, run.
    pub const FINALIZE: &str = concat!(
        "UPDATE runs SET status = $1, error = COALESCE($2, error), succeeded_count = $3, \
         failed_count = $4, \
         skipped_count = CASE WHEN total_items > $5 THEN total_items - $5 ELSE 0 END, \
         completed_at = $6, lease_owner = NULL, lease_expires_at = NULL, updated_at = $6 \
         WHERE id = $7 RETURNING ",
        run_cols!()
    );
    pub const INSERT: &str = "INSERT INTO runs (id, tenant_id, dataset_id, dataset_version, \
         target_type, target_id, scorer_ids, status, total_items, config, parent_run_id, \
         created_at, updated_at, repeats) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $11, $10, $10, $12)";
    /// Runs re-scoring run `$1` that are still pending or running.
    pub const UNFINISHED_CHILDREN: &str = "SELECT COUNT(*) FROM runs WHERE parent_run_id = $1 \
         AND status IN ('pending', 'running')";
    pub const DELETE: &str = "DELETE FROM runs WHERE id = $1";
    /// (results, failed results) of a run.
    pub const COUNT_RESULTS: &str = "SELECT COUNT(*), COUNT(error) FROM results WHERE run_id = $1";
}

/// Results and scores.
pub mod results {
    use super::*;

    pub const COUNT: &str = "SELECT COUNT(*) FROM results WHERE run_id = $1";
    pub const LIST: &str = concat!(
        "SELECT ",
        result_cols!(),
        " FROM results WHERE run_id = $1 ORDER BY item_index, trial, seq LIMIT $2 OFFSET $3"
    );
    /// The filter of [`FILTERED_COUNT`] and [`FILTERED_LIST`]. Binds: run,
    /// failed only (bool), scorer id (or NULL), threshold (or NULL).
    macro_rules! filtered_where {
        () => {
            " FROM results WHERE run_id = $1 \
             AND (NOT $2 OR error IS NOT NULL OR EXISTS (SELECT 1 FROM scores s \
                  WHERE s.run_id = results.run_id AND s.item_id = results.item_id \
                  AND s.trial = results.trial AND s.error IS NOT NULL)) \
             AND ($3 IS NULL OR EXISTS (SELECT 1 FROM scores s \
                  WHERE s.run_id = results.run_id AND s.item_id = results.item_id \
                  AND s.trial = results.trial AND s.scorer_id = $3 AND s.score < $4))"
        };
    }
    pub const FILTERED_COUNT: &str = concat!("SELECT COUNT(*)", filtered_where!());
    pub const FILTERED_LIST: &str = concat!(
        "SELECT ",
        result_cols!(),
        filtered_where!(),
        " ORDER BY item_index, trial, seq LIMIT $5 OFFSET $6"
    );
    /// What the target produced for the results of run `$1` with an item
    /// index in `[$2, $3]`.
    pub const TARGET_RECORDS: &str = "SELECT item_id, item_index, trial, output, latency, error, \
         error_kind, retry_count, trace_id, target_metadata, logs FROM results \
         WHERE run_id = $1 AND item_index >= $2 AND item_index <= $3 \
         ORDER BY item_index, trial, seq";
    /// `->` with a plain key reads the same on both backends (SQLite takes
    /// `'usage'` as the path `$.usage` and answers JSON text; PostgreSQL
    /// answers `jsonb`); a metadata value that is not an object gives NULL.
    pub const OUTLINES_AFTER_SEQ: &str = "SELECT seq, item_id, item_index, trial, latency, error, \
         error_kind, target_metadata -> 'usage' AS usage FROM results \
         WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
    /// A page can end inside an item's trials: a caller that reads by item
    /// drops the page's last item when the page is full and reads it again
    /// with the next page.
    pub const OUTLINES_BY_INDEX: &str = "SELECT seq, item_id, item_index, trial, latency, \
         error, error_kind, target_metadata -> 'usage' AS usage FROM results \
         WHERE run_id = $1 AND item_index > $2 ORDER BY item_index, trial LIMIT $3";
    pub const IN_INDEX_RANGE: &str = concat!(
        "SELECT ",
        result_cols!(),
        " FROM results WHERE run_id = $1 AND item_index >= $2 AND item_index <= $3 \
         ORDER BY item_index, trial"
    );
    pub const AFTER_SEQ: &str = concat!(
        "SELECT ",
        result_cols!(),
        " FROM results WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    );
}

/// Plugins.
pub mod plugins {
    use super::*;

    /// Registers or replaces. Binds: tenant, id, kind, name, description,
    /// digest, contract version, size, bytes, time.
    pub const UPSERT: &str = "INSERT INTO plugins (tenant_id, id, kind, name, description, digest, \
         contract_version, size, bytes, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
         description = excluded.description, digest = excluded.digest, \
         contract_version = excluded.contract_version, size = excluded.size, \
         bytes = excluded.bytes, created_at = excluded.created_at";
    pub const GET: &str = concat!(
        "SELECT ",
        plugin_cols!(),
        " FROM plugins WHERE tenant_id = $1 AND id = $2"
    );
    pub const BYTES: &str = "SELECT bytes FROM plugins WHERE tenant_id = $1 AND id = $2";
    pub const COUNT: &str = "SELECT COUNT(*) FROM plugins WHERE tenant_id = $1";
    pub const LIST: &str = concat!(
        "SELECT ",
        plugin_cols!(),
        " FROM plugins WHERE tenant_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
    );
    pub const DELETE: &str = "DELETE FROM plugins WHERE tenant_id = $1 AND id = $2";
}

/// Tenants as the operator manages them.
pub mod tenancy {
    use super::*;

    /// Binds: id, the eight limits, the weight, time, the cache budget.
    pub const INSERT: &str = "INSERT INTO tenants (id, max_concurrency, max_active_runs, \
         max_queued_runs, max_datasets, max_items_per_dataset, max_stored_bytes, max_plugins, \
         max_plugin_bytes, weight, created_at, max_cache_bytes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    /// The limits of tenant $1, read inside a write that admits something.
    pub const LIMITS: &str = concat!(
        "SELECT ",
        tenant_limit_cols!(),
        " FROM tenants WHERE id = $1"
    );
    /// As [`LIMITS`], locking the row against other admissions of the
    /// tenant until the transaction ends. `FOR NO KEY UPDATE` does not
    /// conflict with the key-share locks of foreign-key checks, so it
    /// serializes admissions without stalling unrelated inserts.
    pub const LIMITS_FOR_ADMISSION: &str = concat!(
        "SELECT ",
        tenant_limit_cols!(),
        " FROM tenants WHERE id = $1 FOR NO KEY UPDATE"
    );
    /// Size of plugin $2 of tenant $1 (absent when new).
    pub const PLUGIN_SIZE: &str = "SELECT size FROM plugins WHERE tenant_id = $1 AND id = $2";
    /// Every tenant but the one named by $1 (the shared namespace).
    pub const LIST: &str = concat!(
        "SELECT ",
        tenant_limit_cols!(),
        " FROM tenants WHERE id <> $1 ORDER BY id"
    );
    pub const GET: &str = concat!(
        "SELECT ",
        tenant_limit_cols!(),
        " FROM tenants WHERE id = $1"
    );
    /// Binds: the eight limits, the weight, id, the shared namespace (never
    /// changed), the cache budget.
    pub const SET_LIMITS: &str = "UPDATE tenants SET max_concurrency = $1, max_active_runs = $2, \
         max_queued_runs = $3, max_datasets = $4, max_items_per_dataset = $5, \
         max_stored_bytes = $6, max_plugins = $7, max_plugin_bytes = $8, weight = $9, \
         max_cache_bytes = $12 WHERE id = $10 AND id <> $11";
    /// What tenant $1 uses now. The run counts repeat the partial index
    /// `runs_active`'s condition so that SQLite uses it (it does not infer
    /// it from `status = ...`) instead of walking every run of the tenant.
    pub const USAGE: &str = "SELECT \
         (SELECT COUNT(*) FROM datasets WHERE tenant_id = $1) AS datasets, \
         (SELECT CAST(COALESCE(SUM(stored_bytes), 0) AS BIGINT) FROM datasets \
          WHERE tenant_id = $1) AS stored, \
         (SELECT COUNT(*) FROM plugins WHERE tenant_id = $1) AS plugins, \
         (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM plugins WHERE tenant_id = $1) \
          AS plugin_bytes, \
         (SELECT COUNT(*) FROM runs WHERE status IN ('pending', 'running') \
          AND status = 'running' AND tenant_id = $1) AS active, \
         (SELECT COUNT(*) FROM runs WHERE status IN ('pending', 'running') \
          AND status = 'pending' AND tenant_id = $1) AS queued, \
         (SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM output_cache_usage \
          WHERE tenant_id = $1) AS cache_bytes";
    /// The plugins tenant $1 sees: its own, and those of the shared
    /// namespace $2 it does not hide with one of the same id.
    macro_rules! visible_plugins {
        () => {
            "FROM plugins p WHERE p.tenant_id = $1 OR (p.tenant_id = $2 \
             AND NOT EXISTS (SELECT 1 FROM plugins o WHERE o.tenant_id = $1 AND o.id = p.id))"
        };
    }
    pub const COUNT_VISIBLE_PLUGINS: &str = concat!("SELECT COUNT(*) ", visible_plugins!());
    pub const LIST_VISIBLE_PLUGINS: &str = concat!(
        "SELECT ",
        plugin_cols!(),
        " ",
        visible_plugins!(),
        " ORDER BY p.id LIMIT $3 OFFSET $4"
    );
}

/// API keys.
pub mod keys {
    use super::*;

    pub const INSERT: &str = "INSERT INTO api_keys (id, tenant_id, name, role, prefix, \
         token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    pub const BY_HASH: &str = concat!(
        "SELECT ",
        api_key_cols!(),
        " FROM api_keys WHERE token_hash = $1"
    );
    /// The keys of tenant $1, or of every tenant when $1 is NULL.
    pub const LIST: &str = concat!(
        "SELECT ",
        api_key_cols!(),
        " FROM api_keys WHERE (CAST($1 AS TEXT) IS NULL OR tenant_id = $1) \
         ORDER BY tenant_id, created_at, id"
    );
    /// Binds: time, id, tenant (NULL: any tenant).
    pub const REVOKE: &str = concat!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) \
         WHERE id = $2 AND (CAST($3 AS TEXT) IS NULL OR tenant_id = $3) RETURNING ",
        api_key_cols!()
    );
}

/// Network grants per tenant and plugin id.
pub mod grants {
    /// Whether plugin $2 is visible to tenant $1 (its own or a shared one).
    pub const PLUGIN_VISIBLE: &str =
        "SELECT 1 FROM plugins WHERE id = $2 AND (tenant_id = $1 OR tenant_id = '@shared')";
    /// Binds: tenant, plugin id, grant JSON, granted by, time.
    pub const UPSERT: &str = "INSERT INTO plugin_grants (tenant_id, plugin_id, grant_json, \
         granted_by, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, plugin_id) DO UPDATE SET grant_json = excluded.grant_json, \
         granted_by = excluded.granted_by, updated_at = excluded.updated_at";
    pub const GET: &str = "SELECT tenant_id, plugin_id, grant_json, granted_by, updated_at \
         FROM plugin_grants WHERE tenant_id = $1 AND plugin_id = $2";
    pub const DELETE: &str = "DELETE FROM plugin_grants WHERE tenant_id = $1 AND plugin_id = $2";
    /// After plugin $2 of tenant $1 is deleted: its grant in that tenant, and
    /// for a shared plugin the grants of every tenant that has no own plugin
    /// of that id (they granted the shared one).
    pub const DELETE_OF_PLUGIN: &str = "DELETE FROM plugin_grants WHERE plugin_id = $2 \
         AND (tenant_id = $1 OR ($1 = '@shared' AND NOT EXISTS (SELECT 1 FROM plugins p \
         WHERE p.tenant_id = plugin_grants.tenant_id AND p.id = plugin_grants.plugin_id)))";
}

/// A tenant's sealed secrets.
pub mod secrets {
    /// Binds: tenant, name, ciphertext, nonce, time. `created_at` is kept on
    /// replace.
    pub const UPSERT: &str = "INSERT INTO secrets (tenant_id, name, ciphertext, nonce, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET ciphertext = excluded.ciphertext, \
         nonce = excluded.nonce, updated_at = excluded.updated_at \
         RETURNING name, created_at, updated_at";
    pub const LIST: &str =
        "SELECT name, created_at, updated_at FROM secrets WHERE tenant_id = $1 ORDER BY name";
    pub const SEALED: &str =
        "SELECT name, ciphertext, nonce FROM secrets WHERE tenant_id = $1 ORDER BY name";
    pub const DELETE: &str = "DELETE FROM secrets WHERE tenant_id = $1 AND name = $2";
}

/// The output cache (see [`crate::cache`]). Statements over a list of keys
/// are built with a query builder from the `*_HEAD` texts.
pub mod cache {
    /// Columns read by `rows::cached_output`.
    macro_rules! cache_cols {
        () => {
            "cache_key, target_id, output, target_metadata, trace_id, latency, run_id, \
             size_bytes, hits, created_at, last_used_at"
        };
    }

    pub const LIMIT: &str = "SELECT max_cache_bytes FROM tenants WHERE id = $1";
    pub const ENSURE_USAGE: &str = "INSERT INTO output_cache_usage (tenant_id, bytes) \
         VALUES ($1, 0) ON CONFLICT (tenant_id) DO NOTHING";
    pub const USAGE: &str = "SELECT bytes FROM output_cache_usage WHERE tenant_id = $1";
    /// As [`USAGE`], locking the tenant's row: one write of the tenant's
    /// cache at a time.
    pub const USAGE_FOR_UPDATE: &str =
        "SELECT bytes FROM output_cache_usage WHERE tenant_id = $1 FOR UPDATE";
    /// Binds: tenant, bytes.
    pub const SET_USAGE: &str = "UPDATE output_cache_usage SET bytes = $2 WHERE tenant_id = $1";
    /// Followed by the time, ` WHERE tenant_id = `, the tenant,
    /// ` AND cache_key IN (`, the keys and [`TOUCH_TAIL`].
    pub const TOUCH_HEAD: &str = "UPDATE output_cache SET hits = hits + 1, last_used_at = ";
    pub const TOUCH_TAIL: &str = concat!(") RETURNING ", cache_cols!());
    /// Followed by the tenant, ` AND cache_key IN (`, the keys and `)`.
    pub const SIZES_HEAD: &str =
        "SELECT cache_key, size_bytes FROM output_cache WHERE tenant_id = ";
    /// Followed by ` AND cache_key NOT IN (`, the keys, and [`LRU_TAIL`]
    /// with the page size.
    pub const LRU_TAIL: &str = ") ORDER BY last_used_at, cache_key LIMIT ";
    /// Followed by the tenant, ` AND cache_key IN (`, the keys and `)`.
    pub const DELETE_HEAD: &str = "DELETE FROM output_cache WHERE tenant_id = ";
    /// Followed by the rows (`push_values`) and [`INSERT_TAIL`].
    pub const INSERT_HEAD: &str = "INSERT INTO output_cache (tenant_id, cache_key, target_id, \
         output, target_metadata, trace_id, latency, run_id, size_bytes, hits, created_at, \
         last_used_at) ";
    pub const INSERT_TAIL: &str = " ON CONFLICT (tenant_id, cache_key) DO UPDATE SET \
         target_id = excluded.target_id, output = excluded.output, \
         target_metadata = excluded.target_metadata, trace_id = excluded.trace_id, \
         latency = excluded.latency, run_id = excluded.run_id, \
         size_bytes = excluded.size_bytes, hits = 0, created_at = excluded.created_at, \
         last_used_at = excluded.last_used_at";
    pub const STATS: &str = "SELECT COUNT(*) AS entries, \
         CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS bytes \
         FROM output_cache WHERE tenant_id = $1";
    pub const CLEAR: &str = "DELETE FROM output_cache WHERE tenant_id = $1";
    pub const CLEAR_USAGE: &str = "UPDATE output_cache_usage SET bytes = 0 WHERE tenant_id = $1";
    /// Results of run `$1` (of tenant `$2`) whose metadata has
    /// `cached.fromRun`. `->` with plain keys reads the same on both
    /// backends (see `results::OUTLINES_AFTER_SEQ`).
    pub const CACHED_RESULTS: &str = "SELECT COUNT(*) FROM results WHERE run_id = $1 \
         AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND tenant_id = $2) \
         AND target_metadata -> 'cached' -> 'fromRun' IS NOT NULL";
}
