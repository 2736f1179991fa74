//! The task cache across runs: results stored by the runs of a deployment
//! under their cache keys' digests, used by later runs of it until they
//! expire, within a budget per deployment (the oldest go first).

use baton_proto::v1::limits::over_limit;
use baton_proto::v1::{
    CacheAnswer, CacheOp, MAX_CACHED_RESULT_BYTES, MAX_TASK_CACHE_BYTES_PER_DEPLOYMENT,
    MAX_TASK_CACHE_ENTRIES_PER_DEPLOYMENT,
};
use sqlx::{AnyConnection, Row};

use super::{Asker, Store, StoreResult, now};

/// A key's digest: 64 hexadecimal digits.
fn is_digest(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Store {
    /// Answers what attempt `attempt` of run `run_id` asks of its
    /// deployment's task cache; `asker` must hold that attempt.
    pub async fn answer_task_cache(
        &self,
        asker: Asker<'_>,
        run_id: &str,
        attempt: u32,
        op: CacheOp,
    ) -> StoreResult<CacheAnswer> {
        if !is_digest(op.key()) {
            return Ok(CacheAnswer::Refused {
                reason: "a cache key on the wire is its sha256, in hex".to_owned(),
            });
        }
        let held = self.held_execution(asker, run_id, attempt).await?;
        let deployment_id = held.deployment_id;
        match op {
            CacheOp::Get { key } => {
                let row = sqlx::query(
                    "SELECT output, run_id FROM task_cache WHERE deployment_id = $1 \
                     AND key_digest = $2 AND (expires_at IS NULL OR expires_at > $3)",
                )
                .bind(&deployment_id)
                .bind(&key)
                .bind(now().0)
                .fetch_optional(&self.read)
                .await?;
                Ok(match row {
                    Some(row) => CacheAnswer::Hit {
                        output: row.try_get("output")?,
                        run_id: Some(row.try_get("run_id")?),
                    },
                    None => CacheAnswer::Miss,
                })
            }
            CacheOp::Put { output, .. } if output.len() > MAX_CACHED_RESULT_BYTES => {
                Ok(CacheAnswer::Refused {
                    reason: over_limit("its result", output.len(), MAX_CACHED_RESULT_BYTES),
                })
            }
            CacheOp::Put { key, output, expire_after_ms } => {
                let run_id = run_id.to_owned();
                self.write_transaction(move |_, conn| {
                    Box::pin(async move {
                        let stored_at = now().0;
                        let expires_at = expire_after_ms.map(|ms| {
                            stored_at.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
                        });
                        sqlx::query(
                            "INSERT INTO task_cache (deployment_id, key_digest, output, bytes, run_id, stored_at, expires_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (deployment_id, key_digest) DO UPDATE \
                             SET output = excluded.output, bytes = excluded.bytes, run_id = excluded.run_id, \
                             stored_at = excluded.stored_at, expires_at = excluded.expires_at",
                        )
                        .bind(&deployment_id)
                        .bind(&key)
                        .bind(&output)
                        .bind(i64::try_from(output.len()).unwrap_or(i64::MAX))
                        .bind(&run_id)
                        .bind(stored_at)
                        .bind(expires_at)
                        .execute(&mut *conn)
                        .await?;
                        keep_within_budget(conn, &deployment_id, &key, stored_at).await?;
                        Ok(CacheAnswer::Stored)
                    })
                })
                .await
            }
        }
    }
}

/// Removes a deployment's expired entries, then its oldest but `kept`
/// until the rest fit [`MAX_TASK_CACHE_BYTES_PER_DEPLOYMENT`] and
/// [`MAX_TASK_CACHE_ENTRIES_PER_DEPLOYMENT`].
async fn keep_within_budget(
    conn: &mut AnyConnection,
    deployment_id: &str,
    kept: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM task_cache WHERE deployment_id = $1 AND expires_at <= $2")
        .bind(deployment_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS entries, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS bytes FROM task_cache \
         WHERE deployment_id = $1",
    )
    .bind(deployment_id)
    .fetch_one(&mut *conn)
    .await?;
    let entries = u64::try_from(row.try_get::<i64, _>("entries")?).unwrap_or_default();
    let bytes = u64::try_from(row.try_get::<i64, _>("bytes")?).unwrap_or_default();
    if entries <= MAX_TASK_CACHE_ENTRIES_PER_DEPLOYMENT
        && bytes <= MAX_TASK_CACHE_BYTES_PER_DEPLOYMENT
    {
        return Ok(());
    }
    // Oldest first, a batch at a time, until what is left fits; the entry
    // just stored stays.
    let (mut entries, mut bytes) = (entries, bytes);
    while entries > MAX_TASK_CACHE_ENTRIES_PER_DEPLOYMENT
        || bytes > MAX_TASK_CACHE_BYTES_PER_DEPLOYMENT
    {
        let oldest = sqlx::query(
            "SELECT key_digest, bytes FROM task_cache WHERE deployment_id = $1 AND key_digest <> $2 \
             ORDER BY stored_at LIMIT 100",
        )
        .bind(deployment_id)
        .bind(kept)
        .fetch_all(&mut *conn)
        .await?;
        if oldest.is_empty() {
            break;
        }
        for row in oldest {
            if entries <= MAX_TASK_CACHE_ENTRIES_PER_DEPLOYMENT
                && bytes <= MAX_TASK_CACHE_BYTES_PER_DEPLOYMENT
            {
                break;
            }
            let key: String = row.try_get("key_digest")?;
            sqlx::query("DELETE FROM task_cache WHERE deployment_id = $1 AND key_digest = $2")
                .bind(deployment_id)
                .bind(key)
                .execute(&mut *conn)
                .await?;
            entries -= 1;
            bytes =
                bytes.saturating_sub(u64::try_from(row.try_get::<i64, _>("bytes")?).unwrap_or(0));
        }
    }
    Ok(())
}
