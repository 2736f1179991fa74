//! Deployments: upsert by `flow/name`, read, list with filters, pause,
//! delete.

use baton_proto::v1::suggest::did_you_mean;
use baton_proto::v1::{
    Artifact, ConcurrencyPolicy, Deployment, DeploymentSpec, DeploymentUpserted, Timestamp,
    resolve_job_variables, validate_params,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::events::{self, NewEvent};
use super::schedules;
use super::{Store, StoreError, StoreResult, json_column, new_id, now, to_json};

pub(super) const COLUMNS: &str = "id, flow_name, name, spec, parameter_schema, created_at, updated_at, \
    (SELECT a.flow_version FROM artifacts a WHERE a.digest = artifact_digest) AS flow_version";

/// Which deployments to list.
#[derive(Debug, Clone, Default)]
pub struct DeploymentFilter {
    pub flow: Option<String>,
    pub tag: Option<String>,
    pub paused: Option<bool>,
}

pub(super) fn deployment(row: &AnyRow) -> StoreResult<Deployment> {
    Ok(Deployment {
        id: row.try_get("id")?,
        flow: row.try_get("flow_name")?,
        name: row.try_get("name")?,
        spec: json_column(row, "spec")?,
        parameter_schema: json_column(row, "parameter_schema")?,
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
        flow_version: row.try_get::<Option<String>, _>("flow_version")?.unwrap_or_default(),
    })
}

/// The deployment `flow/name`, read through `executor` (a pool, or the
/// transaction that is about to change it).
pub(super) async fn find<'e, E>(
    executor: E,
    flow: &str,
    name: &str,
) -> StoreResult<Option<Deployment>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!("SELECT {COLUMNS} FROM deployments WHERE flow_name = $1 AND name = $2"))
        .bind(flow)
        .bind(name)
        .fetch_optional(executor)
        .await?
        .map(|row| deployment(&row))
        .transpose()
}

/// The limit a due run of this deployment waits for (the dispatcher skips
/// runs of a deployment at it); none under `cancel-new`, whose excess runs
/// must reach the rules to be cancelled.
fn enqueue_limit(spec: &DeploymentSpec) -> Option<i64> {
    match spec.concurrency_policy {
        ConcurrencyPolicy::Enqueue => spec.concurrency_limit.map(i64::from),
        ConcurrencyPolicy::CancelNew => None,
    }
}

/// Checks a deployment's default parameters: each must fit the schema,
/// but required ones may be left to each run.
fn check_defaults(schema: &serde_json::Value, spec: &DeploymentSpec) -> StoreResult<()> {
    let mut lenient = schema.clone();
    if let Some(object) = lenient.as_object_mut() {
        object.remove("required");
    }
    validate_params(&lenient, &serde_json::Value::Object(spec.parameters.clone()))
        .map_err(StoreError::InvalidParameters)
}

/// A deployment or flow name people type: letters, digits, `-`, `_`, `.`.
pub(crate) fn check_name(what: &str, name: &str) -> StoreResult<()> {
    baton_proto::v1::limits::check_name(what, name).map_err(StoreError::Invalid)
}

/// Top-level fields of `old` and `new` whose values differ.
fn changed_fields(old: &DeploymentSpec, new: &DeploymentSpec) -> StoreResult<Vec<String>> {
    let (old, new) = (serde_json::to_value(old), serde_json::to_value(new));
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) = (old, new)
    else {
        return Err(StoreError::Corrupt("a deployment spec is not an object".into()));
    };
    Ok(new
        .iter()
        .filter(|(key, value)| old.get(*key) != Some(value))
        .map(|(key, _)| key.clone())
        .collect())
}

impl Store {
    /// Checks what `upsert_deployment` would write, writing nothing: the
    /// names, the artifact's flow, sizes, grants, default parameters,
    /// schedules, the pool and job variables.
    pub async fn check_deployment(
        &self,
        flow: &str,
        name: &str,
        spec: &DeploymentSpec,
        artifact: &Artifact,
    ) -> StoreResult<()> {
        check_name("flow", flow)?;
        check_name("deployment", name)?;
        if artifact.flow.name != flow {
            return Err(StoreError::Invalid(format!(
                "artifact {} holds flow `{}`, not `{flow}`",
                artifact.digest, artifact.flow.name
            )));
        }
        super::check_parameters_size(&spec.parameters)?;
        spec.capabilities.check().map_err(StoreError::Invalid)?;
        check_defaults(&artifact.flow.parameters, spec)?;
        schedules::check_schedules(&artifact.flow.parameters, spec)?;
        if let Some(pool) = &spec.work_pool {
            self.pool(pool).await?;
        }
        if !spec.job_variables.is_empty() {
            super::check_job_variables_size(&spec.job_variables)?;
            let (_, template) = self.job_template(spec.work_pool.as_deref()).await?;
            resolve_job_variables(&template, &[&spec.job_variables])
                .map_err(StoreError::Invalid)?;
        }
        Ok(())
    }

    /// Creates or updates the deployment `flow/name` of `artifact`.
    pub async fn upsert_deployment(
        &self,
        flow: &str,
        name: &str,
        spec: DeploymentSpec,
        artifact: &Artifact,
    ) -> StoreResult<DeploymentUpserted> {
        self.check_deployment(flow, name, &spec, artifact).await?;
        let mut tx = self.write.begin().await?;
        let existing = find(&mut *tx, flow, name).await?;
        let at = now();
        let (id, created, changed) = match &existing {
            None => (new_id(), true, Vec::new()),
            Some(old) => (old.id.clone(), false, changed_fields(&old.spec, &spec)?),
        };
        if created {
            sqlx::query(
                "INSERT INTO deployments (id, flow_name, name, spec, artifact_digest, parameter_schema, paused, created_at, updated_at, enqueue_limit) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
            )
            .bind(&id)
            .bind(flow)
            .bind(name)
            .bind(to_json(&spec)?)
            .bind(&artifact.digest)
            .bind(artifact.flow.parameters.to_string())
            .bind(i64::from(spec.paused))
            .bind(at.0)
            .bind(enqueue_limit(&spec))
            .execute(&mut *tx)
            .await?;
        } else if !changed.is_empty() {
            sqlx::query(
                "UPDATE deployments SET spec = $1, artifact_digest = $2, parameter_schema = $3, paused = $4, updated_at = $5, \
                 enqueue_limit = $7 WHERE id = $6",
            )
            .bind(to_json(&spec)?)
            .bind(&artifact.digest)
            .bind(artifact.flow.parameters.to_string())
            .bind(i64::from(spec.paused))
            .bind(at.0)
            .bind(&id)
            .bind(enqueue_limit(&spec))
            .execute(&mut *tx)
            .await?;
        }
        if created || changed.contains(&"tags".to_owned()) {
            sqlx::query("DELETE FROM deployment_tags WHERE deployment_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            for tag in &spec.tags {
                sqlx::query("INSERT INTO deployment_tags (deployment_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(&id)
                    .bind(tag)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // A changed deployment's planned runs are planned again with what
        // changed (parameters, pool, retries...).
        schedules::sync_states(&mut tx, &id, &spec, !changed.is_empty()).await?;
        if created || !changed.is_empty() {
            events::record(
                &mut tx,
                NewEvent {
                    name: if created { "deployment.created" } else { "deployment.updated" },
                    resource: format!("deployment/{flow}/{name}"),
                    related: vec![format!("artifact/{}", artifact.digest)],
                    payload: serde_json::json!({ "changed": changed }),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(DeploymentUpserted { deployment: self.deployment(flow, name).await?, created, changed })
    }

    pub async fn deployment(&self, flow: &str, name: &str) -> StoreResult<Deployment> {
        match find(&self.read, flow, name).await? {
            Some(deployment) => Ok(deployment),
            None => Err(self.missing_with_hint(flow, name).await),
        }
    }

    /// `NotFound` for `flow/name`, naming the deployment nearest to it.
    pub(super) async fn missing_with_hint(&self, flow: &str, name: &str) -> StoreError {
        let rows = sqlx::query("SELECT flow_name || '/' || name AS full FROM deployments")
            .fetch_all(&self.read)
            .await;
        let names: Vec<String> = rows
            .map(|rows| rows.iter().filter_map(|row| row.try_get("full").ok()).collect())
            .unwrap_or_default();
        let hint = did_you_mean(&format!("{flow}/{name}"), names.iter().map(String::as_str));
        StoreError::NotFound { what: format!("deployment {flow}/{name}"), hint }
    }

    /// Deployments sorted by flow and name.
    pub async fn deployments(&self, filter: &DeploymentFilter) -> StoreResult<Vec<Deployment>> {
        // Lists leave the parameter schema out (each may be up to 256 KiB):
        // one deployment's answer has it.
        let columns = COLUMNS.replace("parameter_schema", "'null' AS parameter_schema");
        let mut sql = format!("SELECT {columns} FROM deployments d WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(flow) = &filter.flow {
            binds.push(flow.clone());
            sql.push_str(&format!(" AND flow_name = ${}", binds.len()));
        }
        if let Some(tag) = &filter.tag {
            binds.push(tag.clone());
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM deployment_tags t WHERE t.deployment_id = d.id AND t.tag = ${})",
                binds.len()
            ));
        }
        if let Some(paused) = filter.paused {
            sql.push_str(if paused { " AND paused = 1" } else { " AND paused = 0" });
        }
        sql.push_str(" ORDER BY flow_name, name");
        let mut query = sqlx::query(&sql);
        for bind in &binds {
            query = query.bind(bind);
        }
        query.fetch_all(&self.read).await?.iter().map(deployment).collect()
    }

    /// Pauses or resumes a deployment: a paused one gets nothing dispatched
    /// and its schedules make no runs.
    pub async fn set_deployment_paused(
        &self,
        flow: &str,
        name: &str,
        paused: bool,
    ) -> StoreResult<Deployment> {
        let mut current = self.deployment(flow, name).await?;
        if current.spec.paused != paused {
            current.spec.paused = paused;
            let mut tx = self.write.begin().await?;
            sqlx::query(
                "UPDATE deployments SET spec = $1, paused = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(to_json(&current.spec)?)
            .bind(i64::from(paused))
            .bind(now().0)
            .bind(&current.id)
            .execute(&mut *tx)
            .await?;
            // Paused: its planned runs are withdrawn; resumed: planned anew.
            schedules::sync_states(&mut tx, &current.id, &current.spec, false).await?;
            events::record(
                &mut tx,
                NewEvent {
                    name: if paused { "deployment.paused" } else { "deployment.resumed" },
                    resource: format!("deployment/{flow}/{name}"),
                    related: Vec::new(),
                    payload: serde_json::Value::Null,
                },
            )
            .await?;
            tx.commit().await?;
        }
        self.deployment(flow, name).await
    }

    /// Deletes a deployment and its runs.
    pub async fn delete_deployment(&self, flow: &str, name: &str) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let deleted = sqlx::query("DELETE FROM deployments WHERE flow_name = $1 AND name = $2")
            .bind(flow)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(self.missing_with_hint(flow, name).await);
        }
        events::record(
            &mut tx,
            NewEvent {
                name: "deployment.deleted",
                resource: format!("deployment/{flow}/{name}"),
                related: Vec::new(),
                payload: serde_json::Value::Null,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
