//! SQL text that is the same on every backend, one module per area.
//!
//! Parameters are written `$N` everywhere (SQLite accepts them and sqlx
//! binds them by number), so one statement serves both databases. What a
//! backend writes itself is only what its database does differently:
//! boolean literals (`0`/`1` vs `FALSE`/`TRUE`), lists of ids (`json_each`
//! vs `= ANY($N)`), case-insensitive search, row locks and the claim and
//! fencing statements (see `docs/storage.md`).

use crate::rows::{
    dataset_cols, dataset_version_cols, item_version_cols, plugin_cols, result_cols, tenant_cols,
};

/// Tenants.
pub mod tenants {
    use super::*;

    pub const GET: &str = concat!("SELECT ", tenant_cols!(), " FROM tenants WHERE id = $1");
}

/// Datasets and their version history.
pub mod datasets {
    use super::*;

    pub const GET: &str = concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE id = $1 AND tenant_id = $2"
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
    pub const INSERT: &str = "INSERT INTO runs (id, tenant_id, dataset_id, dataset_version, \
         target_type, target_id, scorer_ids, status, total_items, config, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $10)";
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
        " FROM results WHERE run_id = $1 ORDER BY item_index, seq LIMIT $2 OFFSET $3"
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
