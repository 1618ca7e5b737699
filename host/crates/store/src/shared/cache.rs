//! The output cache, on any backend (see [`crate::cache`]).

use std::collections::{HashMap, HashSet};

use sqlx::QueryBuilder;

use super::{Arg, Db, Handle, PushArg};
use crate::cache::{CacheCleared, CachePut, CacheStats, CachedOutput, NewCachedOutput};
use crate::error::{StoreError, StoreResult};
use crate::rows::StoredRow;
use crate::rules::now;
use crate::sql::cache as sql;

/// Keys bound in one statement (well below both databases' limits on
/// parameters).
const KEYS_PER_STATEMENT: usize = 500;
/// Entries read per round while evicting.
const EVICTION_PAGE: i64 = 256;

fn cached_output(r: &impl StoredRow) -> StoreResult<CachedOutput> {
    Ok(CachedOutput {
        key: r.text("cache_key")?,
        target_id: r.text("target_id")?,
        output: r.json("output")?,
        target_metadata: r.json_opt("target_metadata")?,
        trace_id: r.text_opt("trace_id")?,
        latency: r.real("latency")?,
        run_id: r.text("run_id")?,
        size_bytes: r.int("size_bytes")?,
        hits: r.int("hits")?,
        created_at: r.time("created_at")?,
        last_used_at: r.time("last_used_at")?,
    })
}

/// `head <tenant> AND cache_key [NOT] IN (<keys>`, ready for its tail.
fn keyed<'a, DB: Db>(
    head: &'static str,
    tenant: &'a str,
    negate: bool,
    keys: impl IntoIterator<Item = &'a str>,
) -> QueryBuilder<DB> {
    let mut qb = QueryBuilder::<DB>::new(head);
    qb.push_arg(tenant);
    qb.push(if negate {
        " AND cache_key NOT IN ("
    } else {
        " AND cache_key IN ("
    });
    let mut list = qb.separated(", ");
    for key in keys {
        list.push_arg(key);
    }
    qb
}

pub(crate) async fn lookup<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    keys: &[String],
) -> StoreResult<Vec<CachedOutput>> {
    let unique: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if unique.is_empty() {
        return Ok(Vec::new());
    }
    let at = now();
    let mut tx = s.begin_write().await?;
    let mut found = Vec::new();
    for chunk in unique.chunks(KEYS_PER_STATEMENT) {
        let mut qb = QueryBuilder::<DB>::new(sql::TOUCH_HEAD);
        qb.push_arg(DB::time(at));
        qb.push(" WHERE tenant_id = ").push_arg(tenant);
        qb.push(" AND cache_key IN (");
        let mut list = qb.separated(", ");
        for key in chunk {
            list.push_arg(*key);
        }
        qb.push(sql::TOUCH_TAIL);
        for row in qb.build().fetch_all(DB::conn(&mut tx)).await? {
            found.push(cached_output(&row)?);
        }
    }
    tx.commit().await?;
    Ok(found)
}

pub(crate) async fn put<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    outputs: Vec<NewCachedOutput>,
) -> StoreResult<CachePut> {
    // One entry per key, the last given winning (one statement cannot
    // upsert the same row twice).
    let mut by_key: HashMap<String, NewCachedOutput> = HashMap::new();
    for o in outputs {
        by_key.insert(o.key.clone(), o);
    }
    if by_key.is_empty() {
        return Ok(CachePut::default());
    }
    let at = now();
    let mut tx = s.begin_write().await?;
    let limit = sqlx::query(sql::LIMIT)
        .arg(tenant)
        .fetch_optional(DB::conn(&mut tx))
        .await?
        .ok_or_else(|| StoreError::not_found("Tenant", tenant))?
        .int_at(0)?;
    sqlx::query(sql::ENSURE_USAGE)
        .arg(tenant)
        .execute(DB::conn(&mut tx))
        .await?;
    let usage_sql = if DB::ROW_LOCKS {
        sql::USAGE_FOR_UPDATE
    } else {
        sql::USAGE
    };
    let used = sqlx::query(usage_sql)
        .arg(tenant)
        .fetch_one(DB::conn(&mut tx))
        .await?
        .int_at(0)?;

    // What fits in the budget at all, smallest first so that one huge
    // output does not keep many small ones out.
    let mut sized: Vec<(i64, NewCachedOutput)> =
        by_key.into_values().map(|o| (o.size_bytes(), o)).collect();
    sized.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.key.cmp(&b.1.key)));
    let mut result = CachePut::default();
    let mut keep = Vec::new();
    let mut adding = 0i64;
    for (size, o) in sized {
        if adding.saturating_add(size) > limit {
            result.too_large += 1;
        } else {
            adding += size;
            keep.push((size, o));
        }
    }
    if keep.is_empty() {
        tx.commit().await?;
        return Ok(result);
    }

    // Entries replaced by this write give their bytes back.
    let mut replaced = 0i64;
    for chunk in keep.chunks(KEYS_PER_STATEMENT) {
        let mut qb = keyed::<DB>(
            sql::SIZES_HEAD,
            tenant,
            false,
            chunk.iter().map(|(_, o)| o.key.as_str()),
        );
        qb.push(")");
        for row in qb.build().fetch_all(DB::conn(&mut tx)).await? {
            replaced += row.int("size_bytes")?;
        }
    }
    let mut total = used - replaced + adding;

    // Least recently used first, never an entry this write replaces.
    while total > limit {
        let mut qb = keyed::<DB>(
            sql::SIZES_HEAD,
            tenant,
            true,
            keep.iter().map(|(_, o)| o.key.as_str()),
        );
        qb.push(sql::LRU_TAIL).push_arg(EVICTION_PAGE);
        let rows = qb.build().fetch_all(DB::conn(&mut tx)).await?;
        if rows.is_empty() {
            // The usage row says more than the entries hold (it cannot,
            // unless edited by hand): trust the entries.
            break;
        }
        let mut victims = Vec::new();
        for row in &rows {
            if total <= limit {
                break;
            }
            total -= row.int("size_bytes")?;
            victims.push(row.text("cache_key")?);
        }
        let mut qb = keyed::<DB>(
            sql::DELETE_HEAD,
            tenant,
            false,
            victims.iter().map(String::as_str),
        );
        qb.push(")");
        qb.build().execute(DB::conn(&mut tx)).await?;
        result.evicted += victims.len() as u64;
    }

    for chunk in keep.chunks(KEYS_PER_STATEMENT / 12) {
        let mut qb = QueryBuilder::<DB>::new(sql::INSERT_HEAD);
        qb.push_values(chunk, |mut b, (size, o)| {
            b.push_arg(tenant)
                .push_arg(o.key.as_str())
                .push_arg(o.target_id.as_str())
                .push_arg(DB::json(&o.output))
                .push_arg(DB::json_opt(o.target_metadata.as_ref()))
                .push_arg(o.trace_id.as_deref())
                .push_arg(Some(o.latency))
                .push_arg(o.run_id.as_str())
                .push_arg(*size)
                .push_arg(0i64)
                .push_arg(DB::time(at))
                .push_arg(DB::time(at));
        });
        qb.push(sql::INSERT_TAIL);
        qb.build().execute(DB::conn(&mut tx)).await?;
    }
    result.stored = keep.len() as u64;
    let total = total.max(0);
    sqlx::query(sql::SET_USAGE)
        .arg(tenant)
        .arg(total)
        .execute(DB::conn(&mut tx))
        .await?;
    tx.commit().await?;
    Ok(result)
}

pub(crate) async fn stats<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
) -> StoreResult<CacheStats> {
    let limit = sqlx::query(sql::LIMIT)
        .arg(tenant)
        .fetch_optional(s.reads())
        .await?
        .ok_or_else(|| StoreError::not_found("Tenant", tenant))?
        .int_at(0)?;
    let row = sqlx::query(sql::STATS)
        .arg(tenant)
        .fetch_one(s.reads())
        .await?;
    Ok(CacheStats {
        entries: row.int("entries")?,
        bytes: row.int("bytes")?,
        limit_bytes: limit,
    })
}

pub(crate) async fn clear<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
) -> StoreResult<CacheCleared> {
    let mut tx = s.begin_write().await?;
    // The usage row first: a write of the tenant's cache in progress
    // commits before the entries are read and deleted.
    sqlx::query(sql::CLEAR_USAGE)
        .arg(tenant)
        .execute(DB::conn(&mut tx))
        .await?;
    let row = sqlx::query(sql::STATS)
        .arg(tenant)
        .fetch_one(DB::conn(&mut tx))
        .await?;
    let cleared = CacheCleared {
        entries: row.int("entries")?,
        bytes: row.int("bytes")?,
    };
    sqlx::query(sql::CLEAR)
        .arg(tenant)
        .execute(DB::conn(&mut tx))
        .await?;
    tx.commit().await?;
    Ok(cleared)
}

pub(crate) async fn cached_results<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    run_id: &str,
) -> StoreResult<i64> {
    sqlx::query(sql::CACHED_RESULTS)
        .arg(run_id)
        .arg(tenant)
        .fetch_one(s.reads())
        .await?
        .int_at(0)
}
