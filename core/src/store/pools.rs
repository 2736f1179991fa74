//! Work pools and their queues.

use baton_proto::v1::{
    PoolKind, PoolSpec, Timestamp, WorkPool, WorkQueue, check_base_job_template,
    default_base_job_template,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::deployments::check_name;
use super::events::{self, NewEvent};
use super::{
    DEFAULT_POOL, Store, StoreError, StoreResult, as_u32, found, json_column, now, to_json,
};

/// The queue every pool has.
pub const DEFAULT_QUEUE: &str = baton_proto::v1::DEFAULT_WORK_QUEUE;

impl Store {
    /// Makes sure a pool of this name exists (a `wasm` pool with defaults
    /// if it is new), for agents and tokens that name one.
    pub async fn ensure_pool(&self, name: &str) -> StoreResult<()> {
        match self.pool(name).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound { .. }) => {
                let spec = PoolSpec { name: name.to_owned(), ..PoolSpec::default() };
                match self.create_pool(spec).await {
                    // Made meanwhile by someone else: there it is.
                    Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The type and base job template of the pool `name` (the `default`
    /// pool when `None`); a pool that does not exist yet is the `wasm` pool
    /// [`Self::ensure_pool`] will make.
    pub async fn job_template(
        &self,
        name: Option<&str>,
    ) -> StoreResult<(PoolKind, serde_json::Map<String, serde_json::Value>)> {
        let row = sqlx::query("SELECT spec FROM work_pools WHERE name = $1")
            .bind(name.unwrap_or(DEFAULT_POOL))
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(row) => {
                let spec: PoolSpec = json_column(&row, "spec")?;
                // Pools made before templates existed have none: their type's.
                let template = match spec.base_job_template.is_empty() {
                    true => default_base_job_template(spec.kind),
                    false => spec.base_job_template,
                };
                Ok((spec.kind, template))
            }
            None => Ok((PoolKind::Wasm, default_base_job_template(PoolKind::Wasm))),
        }
    }

    /// The pool a run of a wasm pool that ran out of sandbox memory is
    /// resubmitted to: its pool's `escalate_to`, unless the run was
    /// escalated once already.
    pub async fn escalation_for(&self, run_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(&format!(
            "SELECT p.spec AS spec, (SELECT COUNT(*) FROM run_states s WHERE s.run_id = r.id \
             AND s.message LIKE '{ESCALATED}%') AS escalated \
             FROM flow_runs r JOIN work_pools p ON p.name = r.work_pool WHERE r.id = $1"
        ))
        .bind(run_id)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let escalated: i64 = row.try_get("escalated")?;
        Ok(escalates_to(&row)?.filter(|_| escalated == 0))
    }

    /// The `escalate_to` of the wasm pool `name`, if it has one.
    pub(crate) async fn escalation_of_pool(&self, name: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT spec FROM work_pools WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(escalates_to).transpose().map(Option::flatten)
    }

    /// Creates a pool with its `default` queue; one without a base job
    /// template gets its type's.
    pub async fn create_pool(&self, mut spec: PoolSpec) -> StoreResult<WorkPool> {
        check_name("work pool", &spec.name)?;
        if spec.base_job_template.is_empty() {
            spec.base_job_template = default_base_job_template(spec.kind);
        }
        super::check_job_template_size(&spec.base_job_template)?;
        check_base_job_template(&spec.base_job_template).map_err(StoreError::Invalid)?;
        let mut tx = self.write.begin().await?;
        if let Some(target) = &spec.escalate_to {
            check_escalation(&mut tx, &spec, target).await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO work_pools (name, spec, paused, created_at) VALUES ($1, $2, 0, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&spec.name)
        .bind(to_json(&spec)?)
        .bind(now().0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict(format!("work pool `{}` already exists", spec.name)));
        }
        sqlx::query("INSERT INTO work_queues (pool, name, priority, concurrency_limit, paused) VALUES ($1, $2, 1, NULL, 0)")
            .bind(&spec.name)
            .bind(DEFAULT_QUEUE)
            .execute(&mut *tx)
            .await?;
        events::record(
            &mut tx,
            NewEvent {
                name: "pool.created",
                resource: format!("pool/{}", spec.name),
                related: Vec::new(),
                payload: serde_json::Value::Null,
            },
        )
        .await?;
        tx.commit().await?;
        self.pool(&spec.name).await
    }

    pub async fn pool(&self, name: &str) -> StoreResult<WorkPool> {
        let row =
            sqlx::query("SELECT name, spec, paused, created_at FROM work_pools WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.read)
                .await?
                .ok_or_else(|| StoreError::not_found(format!("work pool {name}")))?;
        self.pool_from(&row).await
    }

    async fn pool_from(&self, row: &AnyRow) -> StoreResult<WorkPool> {
        let name: String = row.try_get("name")?;
        let queues = sqlx::query(
            "SELECT name, priority, concurrency_limit, paused FROM work_queues WHERE pool = $1 ORDER BY priority, name",
        )
        .bind(&name)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|q| {
            Ok(WorkQueue {
                name: q.try_get("name")?,
                priority: as_u32(q.try_get("priority")?),
                concurrency_limit: q.try_get::<Option<i64>, _>("concurrency_limit")?.map(as_u32),
                paused: q.try_get::<i64, _>("paused")? != 0,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        Ok(WorkPool {
            spec: json_column(row, "spec")?,
            paused: row.try_get::<i64, _>("paused")? != 0,
            queues,
            created_at: Timestamp(row.try_get("created_at")?),
        })
    }

    pub async fn pools(&self) -> StoreResult<Vec<WorkPool>> {
        let rows =
            sqlx::query("SELECT name, spec, paused, created_at FROM work_pools ORDER BY name")
                .fetch_all(&self.read)
                .await?;
        let mut pools = Vec::with_capacity(rows.len());
        for row in &rows {
            pools.push(self.pool_from(row).await?);
        }
        Ok(pools)
    }

    /// Creates or updates a queue of `pool`.
    pub async fn upsert_queue(&self, pool: &str, queue: &WorkQueue) -> StoreResult<WorkPool> {
        check_name("work queue", &queue.name)?;
        self.pool(pool).await?;
        sqlx::query(
            "INSERT INTO work_queues (pool, name, priority, concurrency_limit, paused) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (pool, name) DO UPDATE SET priority = $3, concurrency_limit = $4, paused = $5",
        )
        .bind(pool)
        .bind(&queue.name)
        .bind(i64::from(queue.priority))
        .bind(queue.concurrency_limit.map(i64::from))
        .bind(i64::from(queue.paused))
        .execute(&self.write)
        .await?;
        self.pool(pool).await
    }

    pub async fn set_pool_paused(&self, name: &str, paused: bool) -> StoreResult<WorkPool> {
        let mut tx = self.write.begin().await?;
        let updated = sqlx::query("UPDATE work_pools SET paused = $1 WHERE name = $2")
            .bind(i64::from(paused))
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        found(updated, || format!("work pool {name}"))?;
        events::record(
            &mut tx,
            NewEvent {
                name: if paused { "pool.paused" } else { "pool.resumed" },
                resource: format!("pool/{name}"),
                related: Vec::new(),
                payload: serde_json::Value::Null,
            },
        )
        .await?;
        tx.commit().await?;
        self.pool(name).await
    }

    /// Deletes a pool; refused while deployments use it.
    pub async fn delete_pool(&self, name: &str) -> StoreResult<()> {
        let users = self
            .deployments(&super::deployments::DeploymentFilter::default())
            .await?
            .into_iter()
            .filter(|d| d.spec.work_pool.as_deref() == Some(name))
            .map(|d| d.full_name())
            .collect::<Vec<_>>();
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "work pool `{name}` is used by deployments {}",
                users.join(", ")
            )));
        }
        let deleted = sqlx::query("DELETE FROM work_pools WHERE name = $1")
            .bind(name)
            .execute(&self.write)
            .await?
            .rows_affected();
        found(deleted, || format!("work pool {name}"))?;
        Ok(())
    }
}

/// The pool the pool in `row`'s `spec` column escalates to: only a wasm
/// pool does.
fn escalates_to(row: &AnyRow) -> StoreResult<Option<String>> {
    let spec: PoolSpec = json_column(row, "spec")?;
    Ok(spec.escalate_to.filter(|_| spec.kind == PoolKind::Wasm))
}

/// How an escalation begins in a run's state history (and how one is
/// recognised there).
pub const ESCALATED: &str = "escalated to pool ";

/// A pool may escalate only from the sandbox, to another pool that exists.
async fn check_escalation(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    spec: &PoolSpec,
    target: &str,
) -> StoreResult<()> {
    if spec.kind != PoolKind::Wasm {
        return Err(StoreError::Invalid(format!(
            "escalate_to: only a wasm pool escalates (this one is {})",
            spec.kind.as_str()
        )));
    }
    if target == spec.name {
        return Err(StoreError::Invalid(
            "escalate_to: a pool cannot escalate to itself".to_owned(),
        ));
    }
    let exists = sqlx::query("SELECT name FROM work_pools WHERE name = $1")
        .bind(target)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if !exists {
        return Err(StoreError::Invalid(format!(
            "escalate_to: there is no work pool `{target}` (create it first)"
        )));
    }
    Ok(())
}
