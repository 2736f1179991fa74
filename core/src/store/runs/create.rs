//! Creating runs: validated parameters, idempotency keys, many runs per INSERT.

use baton_proto::v1::run_names::run_name;
use baton_proto::v1::{
    CreateRun, Deployment, FlowRun, MAX_SANDBOX_MEMORY_MIB, PoolKind, StateName, Timestamp,
    resolve_job_variables, validate_params,
};
use baton_telemetry::{RunSpan, RunSpanKind, at_ms};
use sqlx::AnyConnection;
use sqlx::Row;

use super::{COLUMNS, DEFAULT_POOL, run_row};
use crate::metrics::DeploymentLabels;
use crate::store::{
    DEFAULT_QUEUE, ESCALATED, Store, StoreError, StoreResult, new_id, now, to_json,
};

/// A run about to be inserted, with what its row keeps beside the wire
/// type.
pub(crate) struct NewRun {
    pub run: FlowRun,
    pub retry_delay_ms: i64,
    pub timeout_ms: Option<i64>,
    pub schedule_id: Option<String>,
    /// The automations whose actions led to it (JSON list), if any.
    pub caused_by: Option<String>,
    /// How deep it is in its chain of parents (0: no parent).
    pub subflow_depth: u32,
    /// Whether its parent waits for it.
    pub parent_waits: bool,
}

impl NewRun {
    /// A `SCHEDULED` run of `deployment` with `parameters` (merged and
    /// validated by the caller) and the deployment's tags plus `tags`.
    pub(crate) fn of(
        deployment: &Deployment,
        parameters: serde_json::Map<String, serde_json::Value>,
        scheduled_at: Timestamp,
        tags: &[String],
        idempotency_key: Option<String>,
        schedule_id: Option<String>,
    ) -> Self {
        let spec = &deployment.spec;
        let at = now();
        let mut all_tags = spec.tags.clone();
        all_tags.extend(tags.iter().filter(|t| !spec.tags.contains(t)).cloned());
        let millis = |seconds: u64| i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        let id = new_id();
        Self {
            run: FlowRun {
                name: run_name(&id),
                id,
                flow: deployment.flow.clone(),
                deployment: deployment.full_name(),
                deployment_id: deployment.id.clone(),
                parameters,
                state: StateName::Scheduled,
                state_message: None,
                state_changed_at: at,
                scheduled_at,
                started_at: None,
                ended_at: None,
                run_count: 0,
                max_retries: spec.retries,
                tags: all_tags,
                idempotency_key,
                output: None,
                created_at: at,
                work_pool: spec.work_pool.clone().unwrap_or_else(|| DEFAULT_POOL.to_owned()),
                work_queue: spec.work_queue.clone().unwrap_or_else(|| DEFAULT_QUEUE.to_owned()),
                agent_id: None,
                attempt: 0,
                job_variables: serde_json::Map::new(),
                infrastructure: None,
                parent_id: None,
                retry_of: None,
                progress: None,
            },
            retry_delay_ms: millis(spec.retry_delay_seconds),
            timeout_ms: spec.timeout_seconds.map(millis),
            schedule_id,
            caused_by: None,
            subflow_depth: 0,
            parent_waits: false,
        }
    }
}

/// Values bound per run inserted.
const VALUES_PER_RUN: usize = 22;
/// Most runs one INSERT takes.
const RUNS_PER_INSERT: usize = 400;

/// Inserts new runs; their first history row and `run.scheduled` event
/// come from the `flow_runs_created` trigger (migration 0005). A run whose
/// idempotency key its deployment has used already is left out. Returns
/// the runs inserted.
pub(crate) async fn insert_runs(
    conn: &mut AnyConnection,
    runs: &[NewRun],
) -> StoreResult<Inserted> {
    let mut inserted = Vec::with_capacity(runs.len());
    for chunk in runs.chunks(RUNS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = |k: usize| format!("${}", i * VALUES_PER_RUN + k);
                format!(
                    "({}, {}, {}, {}, {}, {}, 'SCHEDULED', {}, {}, 1, {}, NULL, NULL, 0, {}, {}, {}, {}, NULL, {}, {}, {}, NULL, 0, {}, NULL, {}, {}, NULL, NULL, NULL, {}, {}, {}, {})",
                    p(1), p(2), p(3), p(4), p(5), p(6), p(18), p(7), p(8), p(9), p(10), p(11), p(12), p(7), p(13), p(14), p(15), p(19), p(22), p(16), p(17), p(20), p(21)
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO flow_runs ({COLUMNS}, schedule_id, caused_by, parent_waits, subflow_depth) VALUES {} \
             ON CONFLICT (deployment_id, idempotency_key) DO NOTHING RETURNING id",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for new in chunk {
            let run = &new.run;
            let job_variables = match run.job_variables.is_empty() {
                true => None,
                false => Some(to_json(&run.job_variables)?),
            };
            query = query
                .bind(&run.id)
                .bind(&run.deployment_id)
                .bind(&run.flow)
                .bind(run.deployment.split_once('/').map_or("", |(_, name)| name))
                .bind(serde_json::Value::Object(run.parameters.clone()).to_string())
                .bind(to_json(&run.tags)?)
                .bind(run.created_at.0)
                .bind(run.scheduled_at.0)
                .bind(i64::from(run.max_retries))
                .bind(new.retry_delay_ms)
                .bind(new.timeout_ms)
                .bind(run.idempotency_key.as_deref())
                .bind(&run.work_pool)
                .bind(&run.work_queue)
                .bind(job_variables)
                .bind(new.schedule_id.as_deref())
                .bind(new.caused_by.as_deref())
                .bind(run.state_message.as_deref())
                .bind(run.parent_id.as_deref())
                .bind(i64::from(new.parent_waits))
                .bind(i64::from(new.subflow_depth))
                .bind(run.retry_of.as_deref());
        }
        for row in query.fetch_all(&mut *conn).await? {
            inserted.push(row.try_get::<String, _>("id")?);
        }
    }
    let fresh: std::collections::HashSet<&str> = inserted.iter().map(String::as_str).collect();
    let tags: Vec<(&str, &str)> = runs
        .iter()
        .filter(|new| fresh.contains(new.run.id.as_str()))
        .flat_map(|new| new.run.tags.iter().map(|tag| (new.run.id.as_str(), tag.as_str())))
        .collect();
    for chunk in tags.chunks(RUNS_PER_INSERT) {
        let values: Vec<String> =
            (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
        let sql = format!(
            "INSERT INTO flow_run_tags (run_id, tag) VALUES {} ON CONFLICT DO NOTHING",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (run_id, tag) in chunk {
            query = query.bind(*run_id).bind(*tag);
        }
        query.execute(&mut *conn).await?;
    }
    let runs = runs
        .iter()
        .filter(|new| fresh.contains(new.run.id.as_str()))
        .map(|new| InsertedRun {
            id: new.run.id.clone(),
            deployment: new.run.deployment.clone(),
            created_at: new.run.created_at,
        })
        .collect();
    Ok(Inserted { runs })
}

/// The runs an INSERT created (not those whose idempotency key was used),
/// counted and traced by [`Store::note_created`] once committed.
#[must_use]
pub(crate) struct Inserted {
    runs: Vec<InsertedRun>,
}

struct InsertedRun {
    id: String,
    /// `FLOW/NAME`.
    deployment: String,
    created_at: Timestamp,
}

impl Store {
    /// Counts committed new runs in the metrics and traces their creation;
    /// returns how many.
    pub(crate) fn note_created(&self, inserted: Inserted) -> usize {
        for run in &inserted.runs {
            let labels = DeploymentLabels { deployment: run.deployment.clone() };
            self.metrics().runs_created.get_or_create(&labels).inc();
            if let Some(tracer) = self.tracer() {
                tracer.record(RunSpan {
                    run_id: run.id.clone(),
                    kind: RunSpanKind::Create,
                    name: None,
                    start: at_ms(run.created_at.0),
                    end: std::time::SystemTime::now(),
                    attributes: vec![("baton.deployment", run.deployment.clone())],
                    error: None,
                });
            }
        }
        inserted.runs.len()
    }
}

/// Where a run comes from, beside the request that creates it.
#[derive(Default)]
pub(crate) struct RunOrigin<'a> {
    /// The automations whose actions led to it.
    pub caused_by: &'a [String],
    /// The run whose flow started it.
    pub parent: Option<ParentLink>,
    /// The run it retries by hand.
    pub retry_of: Option<String>,
}

/// A child run's link to its parent.
pub(crate) struct ParentLink {
    pub id: String,
    /// Whether the parent waits for it.
    pub waits: bool,
    /// The child's depth: its parent's plus one.
    pub depth: u32,
}

impl Store {
    /// Creates a run of `flow/name`, `SCHEDULED` for now or for
    /// `request.scheduled_at`. With an idempotency key already used for this
    /// deployment, returns that run instead (`false`: not created).
    pub async fn create_run(
        &self,
        flow: &str,
        name: &str,
        request: CreateRun,
    ) -> StoreResult<(FlowRun, bool)> {
        self.create_run_caused_by(flow, name, request, &[]).await
    }

    /// Creates a run that the actions of the automations `caused_by` led
    /// to (none: a run asked for directly).
    pub async fn create_run_caused_by(
        &self,
        flow: &str,
        name: &str,
        request: CreateRun,
        caused_by: &[String],
    ) -> StoreResult<(FlowRun, bool)> {
        self.create_run_from(flow, name, request, RunOrigin { caused_by, ..RunOrigin::default() })
            .await
    }

    /// Creates a run that retries the ended run `id` by hand: the same
    /// deployment, parameters, tags and job variables, linked to it.
    pub async fn retry_run(&self, id: &str) -> StoreResult<FlowRun> {
        let run = self.run(id).await?;
        if !run.state.is_terminal() {
            return Err(StoreError::Conflict(format!(
                "run {id} is {}: only a run that has ended can be retried",
                run.state
            )));
        }
        let (flow, name) = run.deployment.split_once('/').ok_or_else(|| {
            StoreError::Corrupt(format!("run {id} names deployment `{}`", run.deployment))
        })?;
        let request = CreateRun {
            parameters: run.parameters,
            tags: run.tags,
            job_variables: run.job_variables,
            ..CreateRun::default()
        };
        let origin = RunOrigin { retry_of: Some(run.id), ..RunOrigin::default() };
        let (retry, _) = self.create_run_from(flow, name, request, origin).await?;
        Ok(retry)
    }

    /// Creates a run of `flow/name` that came from `origin`.
    pub(crate) async fn create_run_from(
        &self,
        flow: &str,
        name: &str,
        request: CreateRun,
        origin: RunOrigin<'_>,
    ) -> StoreResult<(FlowRun, bool)> {
        let RunOrigin { caused_by, parent, retry_of } = origin;
        let deployment = self.deployment(flow, name).await?;
        if deployment.spec.paused {
            // Its runs would wait, unsaid, until someone resumed it.
            let full = deployment.full_name();
            return Err(StoreError::Conflict(format!(
                "deployment {full} is paused, so nothing would run it: resume it first (`baton deployment resume {full}`)"
            )));
        }
        let mut parameters = deployment.spec.parameters.clone();
        parameters.extend(request.parameters);
        super::super::check_parameters_size(&parameters)?;
        validate_params(
            &deployment.parameter_schema,
            &serde_json::Value::Object(parameters.clone()),
        )
        .map_err(StoreError::InvalidParameters)?;
        // Only a run that sets job variables pays for checking them here;
        // the rest have its deployment's, checked at deploy.
        let mut escalated = None;
        if !request.job_variables.is_empty() {
            super::super::check_job_variables_size(&request.job_variables)?;
            let pool = deployment.spec.work_pool.as_deref();
            let (kind, template) = self.job_template(pool).await?;
            let resolved = resolve_job_variables(
                &template,
                &[&deployment.spec.job_variables, &request.job_variables],
            )
            .map_err(StoreError::Invalid)?;
            let memory_mib = resolved.get("memory_mib").and_then(serde_json::Value::as_u64);
            if kind == PoolKind::Wasm
                && let Some(mib) = memory_mib.filter(|mib| *mib > MAX_SANDBOX_MEMORY_MIB)
            {
                escalated = self.escalation_of_pool(pool.unwrap_or(DEFAULT_POOL)).await?.map(|to| {
                    let message = format!(
                        "{ESCALATED}{to}: job variable memory_mib asks for {mib} MiB, over the sandbox's {MAX_SANDBOX_MEMORY_MIB} MiB"
                    );
                    (to, message)
                });
            }
        }
        if let Some(key) = &request.idempotency_key
            && let Some(existing) = self.run_by_key(&deployment.id, key).await?
        {
            return Ok((existing, false));
        }
        let mut new = NewRun::of(
            &deployment,
            parameters,
            request.scheduled_at.unwrap_or_else(now),
            &request.tags,
            request.idempotency_key,
            None,
        );
        new.run.job_variables = request.job_variables;
        new.run.retry_of = retry_of;
        if let Some((pool, message)) = escalated {
            new.run.work_pool = pool;
            new.run.work_queue = DEFAULT_QUEUE.to_owned();
            new.run.state_message = Some(message);
        }
        if !caused_by.is_empty() {
            new.caused_by = Some(to_json(&caused_by)?);
        }
        if let Some(parent) = parent {
            new.run.parent_id = Some(parent.id);
            new.parent_waits = parent.waits;
            new.subflow_depth = parent.depth;
        }
        let run = new.run.clone();
        let inserted = self
            .write_transaction(move |_, conn| {
                Box::pin(async move { insert_runs(conn, &[new]).await })
            })
            .await?;
        if self.note_created(inserted) == 0 {
            // Another create with the same key came first.
            let key = run.idempotency_key.as_deref().unwrap_or_default();
            let existing = self.run_by_key(&run.deployment_id, key).await?;
            return existing
                .map(|run| (run, false))
                .ok_or_else(|| StoreError::Corrupt(format!("run with key {key} vanished")));
        }
        Ok((run, true))
    }

    async fn run_by_key(&self, deployment_id: &str, key: &str) -> StoreResult<Option<FlowRun>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM flow_runs WHERE deployment_id = $1 AND idempotency_key = $2"
        ))
        .bind(deployment_id)
        .bind(key)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| run_row(&r).map(|r| r.run)).transpose()
    }
}
