//! Flow runs: creation (validated parameters, idempotency keys), listing
//! with cursor pagination, state transitions through the orchestration
//! rules, cancellation, logs, and the sweep that marks late and overdue
//! runs.

use baton_proto::v1::{
    ConcurrencyPolicy, CreateRun, Deployment, DeploymentSpec, FlowRun, FlowRunDetail, Page,
    ProposeState, StateChange, StateName, TaskRun, Timestamp, Transition, Verdict, validate_params,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::transitions::{self, DispatchGuard, StateWrite, slots_in_use_sql};
use super::{
    Dialect, Store, StoreError, StoreResult, as_u32, json_column, new_id, now, parsed_column,
    to_json,
};
use crate::orchestration::{self, Decision, RunFacts};

const COLUMNS: &str = "id, deployment_id, flow_name, deployment_name, parameters, tags, state, state_message, \
    state_changed_at, state_seq, scheduled_at, started_at, ended_at, run_count, max_retries, retry_delay_ms, \
    timeout_ms, idempotency_key, output, created_at, work_pool, work_queue, agent_id, attempt";

/// The pool of runs whose deployment names none.
pub const DEFAULT_POOL: &str = "default";

/// Most runs one page holds.
pub const MAX_PAGE: u32 = 500;

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Any of these states (all when empty).
    pub states: Vec<StateName>,
    pub deployment_id: Option<String>,
    pub flow: Option<String>,
    pub tag: Option<String>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Most runs returned; 0 means 50.
    pub limit: u32,
}

/// What one sweep changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    pub marked_late: u32,
    pub timed_out: u32,
}

/// A run row with the bookkeeping the wire type leaves out.
struct RunRow {
    run: FlowRun,
    state_seq: i64,
    retry_delay_ms: i64,
}

fn run_row(row: &AnyRow) -> StoreResult<RunRow> {
    let flow: String = row.try_get("flow_name")?;
    let deployment_name: String = row.try_get("deployment_name")?;
    let output: Option<String> = row.try_get("output")?;
    let run = FlowRun {
        id: row.try_get("id")?,
        deployment: format!("{flow}/{deployment_name}"),
        flow,
        deployment_id: row.try_get("deployment_id")?,
        parameters: json_column(row, "parameters")?,
        state: parsed_column(row, "state")?,
        state_message: row.try_get("state_message")?,
        state_changed_at: Timestamp(row.try_get("state_changed_at")?),
        scheduled_at: Timestamp(row.try_get("scheduled_at")?),
        started_at: row.try_get::<Option<i64>, _>("started_at")?.map(Timestamp),
        ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(Timestamp),
        run_count: as_u32(row.try_get("run_count")?),
        max_retries: as_u32(row.try_get("max_retries")?),
        tags: json_column(row, "tags")?,
        idempotency_key: row.try_get("idempotency_key")?,
        output: output
            .map(|o| serde_json::from_str(&o))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: Timestamp(row.try_get("created_at")?),
        work_pool: row.try_get("work_pool")?,
        work_queue: row.try_get("work_queue")?,
        agent_id: row.try_get("agent_id")?,
        attempt: as_u32(row.try_get("attempt")?),
    };
    Ok(RunRow {
        run,
        state_seq: row.try_get("state_seq")?,
        retry_delay_ms: row.try_get("retry_delay_ms")?,
    })
}

/// A run about to be inserted, with what its row keeps beside the wire
/// type.
pub(super) struct NewRun {
    pub run: FlowRun,
    pub retry_delay_ms: i64,
    pub timeout_ms: Option<i64>,
    pub schedule_id: Option<String>,
    /// The automations whose actions led to it (JSON list), if any.
    pub caused_by: Option<String>,
}

impl NewRun {
    /// A `SCHEDULED` run of `deployment` with `parameters` (merged and
    /// validated by the caller) and the deployment's tags plus `tags`.
    pub(super) fn of(
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
        Self {
            run: FlowRun {
                id: new_id(),
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
                work_queue: spec
                    .work_queue
                    .clone()
                    .unwrap_or_else(|| super::pools::DEFAULT_QUEUE.to_owned()),
                agent_id: None,
                attempt: 0,
            },
            retry_delay_ms: millis(spec.retry_delay_seconds),
            timeout_ms: spec.timeout_seconds.map(millis),
            schedule_id,
            caused_by: None,
        }
    }
}

/// Most runs one INSERT takes (16 values each).
const RUNS_PER_INSERT: usize = 400;

/// Inserts new runs; their first history row and `run.scheduled` event
/// come from the `flow_runs_created` trigger (migration 0005). A run whose
/// idempotency key its deployment has used already is left out. Returns
/// the ids inserted.
pub(super) async fn insert_runs(
    conn: &mut AnyConnection,
    runs: &[NewRun],
) -> StoreResult<Vec<String>> {
    let mut inserted = Vec::with_capacity(runs.len());
    for chunk in runs.chunks(RUNS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = |k: usize| format!("${}", i * 16 + k);
                format!(
                    "({}, {}, {}, {}, {}, {}, 'SCHEDULED', NULL, {}, 1, {}, NULL, NULL, 0, {}, {}, {}, {}, NULL, {}, {}, {}, NULL, 0, {}, {})",
                    p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8), p(9), p(10), p(11), p(12), p(7), p(13), p(14), p(15), p(16)
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO flow_runs ({COLUMNS}, schedule_id, caused_by) VALUES {} \
             ON CONFLICT (deployment_id, idempotency_key) DO NOTHING RETURNING id",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for new in chunk {
            let run = &new.run;
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
                .bind(new.schedule_id.as_deref())
                .bind(new.caused_by.as_deref());
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
    Ok(inserted)
}

/// The execution a proposal comes from: only the run's current attempt, on
/// the agent it was pushed to and while the run is held, may change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub agent_id: String,
    pub attempt: u32,
}

impl Fence {
    /// `Stale` unless this execution still holds `run`.
    fn check(&self, run: &FlowRun) -> StoreResult<()> {
        let held = run.state.holds_slot() || run.state == StateName::Paused;
        if held && run.attempt == self.attempt && run.agent_id.as_deref() == Some(&self.agent_id) {
            Ok(())
        } else {
            Err(StoreError::Stale {
                run: run.id.clone(),
                attempt: self.attempt,
                current: run.attempt,
                state: run.state,
            })
        }
    }
}

/// What the rules' decision means for the store.
enum Plan {
    /// Nothing to write: answer with this verdict and reason.
    Answer(Verdict, Option<String>),
    /// Write this transition; `reason` says why it differs from the proposal.
    Apply(Apply, Option<String>),
}

fn plan(facts: RunFacts, proposal: ProposeState) -> Plan {
    match orchestration::decide(&facts, proposal.state) {
        Decision::Reject { reason } => Plan::Answer(Verdict::Rejected, Some(reason)),
        Decision::Delay { reason } => Plan::Answer(Verdict::Delayed, Some(reason)),
        Decision::Accept { state, reason, retry_in_ms } => {
            let message = match (&reason, proposal.message) {
                (Some(reason), Some(message)) => Some(format!("{message} ({reason})")),
                (reason, message) => message.or_else(|| reason.clone()),
            };
            let apply =
                Apply { to: state, message, output: proposal.output, retry_in_ms, agent_id: None };
            Plan::Apply(apply, reason)
        }
    }
}

/// How a transition is to be applied.
struct Apply {
    to: StateName,
    message: Option<String>,
    output: Option<serde_json::Value>,
    retry_in_ms: Option<i64>,
    /// The agent a dispatch pushes the run to.
    agent_id: Option<String>,
}

impl Apply {
    /// Records `agent_id` if this is a dispatch (`PENDING`).
    fn pushed_to(self, agent_id: Option<String>) -> Self {
        let agent_id = agent_id.filter(|_| self.to == StateName::Pending);
        Self { agent_id, ..self }
    }
}

/// The deployment facts a dispatch (`PENDING`) is decided on; `apply`
/// writes the decision only if they still hold.
struct DispatchFacts {
    /// The deployment's spec as stored (it holds the limit and `paused`).
    spec: String,
    slots_in_use: i64,
    paused: bool,
    concurrency_limit: Option<u32>,
    concurrency_policy: ConcurrencyPolicy,
}

/// Columns giving a dispatch's facts about the deployment of run `r`.
fn dispatch_columns() -> String {
    format!(
        "(SELECT d.spec FROM deployments d WHERE d.id = r.deployment_id) AS deployment_spec, ({}) AS slots",
        slots_in_use_sql("r.deployment_id", "r.id")
    )
}

fn dispatch_facts(row: &AnyRow) -> StoreResult<DispatchFacts> {
    let spec: String = row.try_get("deployment_spec")?;
    let parsed: DeploymentSpec =
        serde_json::from_str(&spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(DispatchFacts {
        spec,
        slots_in_use: row.try_get("slots")?,
        paused: parsed.paused,
        concurrency_limit: parsed.concurrency_limit,
        concurrency_policy: parsed.concurrency_policy,
    })
}

fn run_facts(row: &RunRow, dispatch: Option<&DispatchFacts>) -> RunFacts {
    RunFacts {
        current: row.run.state,
        run_count: row.run.run_count,
        max_retries: row.run.max_retries,
        retry_delay_ms: row.retry_delay_ms,
        deployment_paused: dispatch.is_some_and(|d| d.paused),
        concurrency_limit: dispatch.and_then(|d| d.concurrency_limit),
        concurrency_policy: dispatch.map(|d| d.concurrency_policy).unwrap_or_default(),
        slots_in_use: dispatch.map_or(0, |d| as_u32(d.slots_in_use)),
    }
}

fn changed_meanwhile(run_id: &str) -> StoreError {
    StoreError::Conflict(format!("run {run_id} or its deployment changed meanwhile; propose again"))
}

/// The write of an accepted transition, and the run as it will be once
/// written (so nothing is read back).
fn state_write(
    row: &RunRow,
    apply: Apply,
    dispatch: Option<&DispatchFacts>,
) -> (StateWrite, FlowRun) {
    let run = &row.run;
    let at = now();
    let to = apply.to;
    let resumed = run.state == StateName::Paused && to == StateName::Running;
    let run_count =
        if to == StateName::Running && !resumed { run.run_count + 1 } else { run.run_count };
    let started_at = match (to, run.started_at) {
        (StateName::Running, None) => Some(at),
        (_, started) => started,
    };
    let ended_at = if to.is_terminal() {
        Some(at)
    } else if to == StateName::Scheduled {
        None
    } else {
        run.ended_at
    };
    let scheduled_at = match (to, apply.retry_in_ms) {
        (StateName::AwaitingRetry, Some(delay)) => Timestamp(at.0.saturating_add(delay)),
        (StateName::Scheduled, _) if run.state.is_terminal() => at,
        _ => run.scheduled_at,
    };
    let output = if to == StateName::Completed { apply.output } else { None };
    // Each dispatch is a new attempt: the fencing token of its execution.
    let attempt = if to == StateName::Pending { run.attempt + 1 } else { run.attempt };
    let write = StateWrite {
        run_id: run.id.clone(),
        read_seq: row.state_seq,
        state: to,
        message: apply.message.clone(),
        changed_at: at.0,
        scheduled_at: scheduled_at.0,
        started_at: started_at.map(|t| t.0),
        ended_at: ended_at.map(|t| t.0),
        run_count: i64::from(run_count),
        output: output.as_ref().map(ToString::to_string),
        agent_id: apply.agent_id.clone(),
        attempt: i64::from(attempt),
        // The decision rests on the deployment's spec and on whether a
        // slot was free: both must still hold.
        dispatch: dispatch.map(|d| DispatchGuard {
            deployment_id: run.deployment_id.clone(),
            spec: d.spec.clone(),
            slot: d.concurrency_limit.map(|limit| (limit, to == StateName::Pending)),
        }),
    };
    let run = FlowRun {
        state: to,
        state_message: apply.message,
        state_changed_at: at,
        scheduled_at,
        started_at,
        ended_at,
        run_count,
        output: output.or_else(|| run.output.clone()),
        agent_id: apply.agent_id.or_else(|| run.agent_id.clone()),
        attempt,
        ..run.clone()
    };
    (write, run)
}

impl Store {
    fn lock_clause(&self) -> &'static str {
        // SQLite has one writer at a time already.
        match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

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
        let deployment = self.deployment(flow, name).await?;
        let mut parameters = deployment.spec.parameters.clone();
        parameters.extend(request.parameters);
        validate_params(
            &deployment.parameter_schema,
            &serde_json::Value::Object(parameters.clone()),
        )
        .map_err(StoreError::InvalidParameters)?;
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
        if !caused_by.is_empty() {
            new.caused_by = Some(to_json(&caused_by)?);
        }
        let run = new.run.clone();
        let inserted = self
            .write_transaction(move |_, conn| {
                Box::pin(async move { insert_runs(conn, &[new]).await })
            })
            .await?;
        if inserted.is_empty() {
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

    pub async fn run(&self, id: &str) -> StoreResult<FlowRun> {
        Ok(self.read_run(&self.read, id, false, false).await?.0.run)
    }

    /// A run with its state history and task runs.
    pub async fn run_detail(&self, id: &str) -> StoreResult<FlowRunDetail> {
        let run = self.run(id).await?;
        let states =
            sqlx::query("SELECT state, message, at FROM run_states WHERE run_id = $1 ORDER BY seq")
                .bind(id)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(|row| {
                    Ok(StateChange {
                        state: parsed_column(row, "state")?,
                        message: row.try_get("message")?,
                        at: Timestamp(row.try_get("at")?),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
        let task_runs = sqlx::query(
            "SELECT run_attempt, task_id, name, attempt, max_attempts, state, message, started_at, ended_at \
             FROM task_runs WHERE run_id = $1 ORDER BY run_attempt, task_id",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|row| {
            Ok(TaskRun {
                run_attempt: as_u32(row.try_get("run_attempt")?),
                task_id: u64::try_from(row.try_get::<i64, _>("task_id")?).unwrap_or_default(),
                name: row.try_get("name")?,
                attempt: as_u32(row.try_get("attempt")?),
                max_attempts: as_u32(row.try_get("max_attempts")?),
                state: parsed_column(row, "state")?,
                message: row.try_get("message")?,
                started_at: Timestamp(row.try_get("started_at")?),
                ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(Timestamp),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        let attempts = self.attempts(id).await?;
        Ok(FlowRunDetail { run, states, task_runs, attempts })
    }

    /// Runs, newest first, one page at a time.
    pub async fn runs(&self, filter: &RunFilter) -> StoreResult<Page<FlowRun>> {
        let mut sql = format!("SELECT {COLUMNS} FROM flow_runs r WHERE 1 = 1");
        let mut texts: Vec<String> = Vec::new();
        let mut push_text = |sql: &mut String, clause: &str, value: String| {
            texts.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", texts.len())));
        };
        if !filter.states.is_empty() {
            let names: Vec<String> =
                filter.states.iter().map(|s| format!("'{}'", s.as_str())).collect();
            // State names come from the enum, never from input.
            sql.push_str(&format!(" AND state IN ({})", names.join(", ")));
        }
        if let Some(deployment_id) = &filter.deployment_id {
            push_text(&mut sql, " AND deployment_id = ?", deployment_id.clone());
        }
        if let Some(flow) = &filter.flow {
            push_text(&mut sql, " AND flow_name = ?", flow.clone());
        }
        if let Some(tag) = &filter.tag {
            push_text(
                &mut sql,
                " AND EXISTS (SELECT 1 FROM flow_run_tags t WHERE t.run_id = r.id AND t.tag = ?)",
                tag.clone(),
            );
        }
        if let Some(cursor) = &filter.cursor {
            push_text(&mut sql, " AND id < ?", cursor.clone());
        }
        let numbers_from = texts.len();
        sql.push_str(&format!(
            " AND created_at >= ${} AND created_at < ${} ORDER BY id DESC LIMIT ${}",
            numbers_from + 1,
            numbers_from + 2,
            numbers_from + 3
        ));
        let limit = if filter.limit == 0 { 50 } else { filter.limit.min(MAX_PAGE) };
        let mut query = sqlx::query(&sql);
        for text in &texts {
            query = query.bind(text);
        }
        let rows = query
            .bind(filter.since.map_or(i64::MIN, |t| t.0))
            .bind(filter.until.map_or(i64::MAX, |t| t.0))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.read)
            .await?;
        let mut items =
            rows.iter().map(|r| run_row(r).map(|r| r.run)).collect::<StoreResult<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Runs scheduled in `[since, until)`, counted by `(bucket, state)`
    /// where bucket `i` holds the times from `since + i * bucket`.
    pub async fn run_counts(
        &self,
        since: Timestamp,
        until: Timestamp,
        bucket_millis: i64,
    ) -> StoreResult<Vec<(i64, StateName, u64)>> {
        let rows = sqlx::query(
            "SELECT (scheduled_at - $1) / $3 AS bucket, state, COUNT(*) AS n FROM flow_runs \
             WHERE scheduled_at >= $1 AND scheduled_at < $2 GROUP BY 1, 2",
        )
        .bind(since.0)
        .bind(until.0)
        .bind(bucket_millis.max(1))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                let count: i64 = row.try_get("n")?;
                Ok((
                    row.try_get("bucket")?,
                    parsed_column(row, "state")?,
                    u64::try_from(count).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// The run `id` (locked for this transaction on PostgreSQL when
    /// `lock`), with its dispatch facts when `dispatch`.
    async fn read_run<'e>(
        &self,
        executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
        id: &str,
        lock: bool,
        dispatch: bool,
    ) -> StoreResult<(RunRow, Option<DispatchFacts>)> {
        let lock = if lock { self.lock_clause() } else { "" };
        let extra = if dispatch { format!(", {}", dispatch_columns()) } else { String::new() };
        let row =
            sqlx::query(&format!("SELECT {COLUMNS}{extra} FROM flow_runs r WHERE r.id = $1{lock}"))
                .bind(id)
                .fetch_optional(executor)
                .await?
                .ok_or_else(|| StoreError::not_found(format!("run {id}")))?;
        let facts = if dispatch { Some(dispatch_facts(&row)?) } else { None };
        Ok((run_row(&row)?, facts))
    }

    /// Proposes a transition; the orchestration rules decide.
    ///
    /// On PostgreSQL the run (and for a dispatch its deployment) is locked
    /// while the rules decide. On SQLite, whose single writer is the
    /// bottleneck, the facts are read beside the writer and the writer only
    /// runs the guarded UPDATE: if the run or its deployment's facts
    /// changed since they were read, it writes nothing and the proposal is
    /// decided again. Refusals never reach the writer at all.
    pub async fn propose_state(&self, id: &str, proposal: ProposeState) -> StoreResult<Transition> {
        self.propose(id, proposal, None, None).await
    }

    /// Proposes a transition on behalf of the execution `fence` names;
    /// `Stale` if that execution no longer holds the run.
    pub async fn propose_fenced(
        &self,
        id: &str,
        fence: &Fence,
        proposal: ProposeState,
    ) -> StoreResult<Transition> {
        self.propose(id, proposal, None, Some(fence.clone())).await
    }

    /// Proposes `PENDING` for a run pushed to `agent_id`, which is recorded
    /// with the state.
    pub async fn dispatch_run(&self, id: &str, agent_id: &str) -> StoreResult<Transition> {
        let proposal = ProposeState {
            state: StateName::Pending,
            message: Some(format!("pushed to agent {agent_id}")),
            output: None,
        };
        self.propose(id, proposal, Some(agent_id.to_owned()), None).await
    }

    async fn propose(
        &self,
        id: &str,
        proposal: ProposeState,
        agent_id: Option<String>,
        fence: Option<Fence>,
    ) -> StoreResult<Transition> {
        if self.dialect == Dialect::Postgres {
            let id = id.to_owned();
            return self
                .write_transaction(move |store, conn| {
                    Box::pin(async move {
                        store.propose_locked(conn, &id, proposal, agent_id, fence.as_ref()).await
                    })
                })
                .await;
        }
        for _ in 0..8 {
            let dispatching = proposal.state == StateName::Pending;
            let (row, dispatch) = self.read_run(&self.read, id, false, dispatching).await?;
            if let Some(fence) = &fence {
                fence.check(&row.run)?;
            }
            match plan(run_facts(&row, dispatch.as_ref()), proposal.clone()) {
                Plan::Answer(verdict, reason) => {
                    return Ok(Transition { verdict, reason, run: row.run });
                }
                Plan::Apply(apply, reason) => {
                    let apply = apply.pushed_to(agent_id.clone());
                    let (write, run) = state_write(&row, apply, dispatch.as_ref());
                    if self.write_state(write).await? {
                        return Ok(Transition { verdict: Verdict::Accepted, reason, run });
                    }
                    // The facts changed after we read them: decide again.
                }
            }
        }
        Err(StoreError::Conflict(format!("run {id} kept changing state; propose again")))
    }

    async fn propose_locked(
        &self,
        tx: &mut AnyConnection,
        id: &str,
        proposal: ProposeState,
        agent_id: Option<String>,
        fence: Option<&Fence>,
    ) -> StoreResult<Transition> {
        let (row, _) = self.read_run(&mut *tx, id, true, false).await?;
        if let Some(fence) = fence {
            fence.check(&row.run)?;
        }
        let dispatch = if proposal.state == StateName::Pending {
            // Serialise slot counting per deployment across cores, then count.
            sqlx::query(&format!("SELECT id FROM deployments WHERE id = $1{}", self.lock_clause()))
                .bind(&row.run.deployment_id)
                .execute(&mut *tx)
                .await?;
            let facts = sqlx::query(&format!(
                "SELECT {} FROM flow_runs r WHERE r.id = $1",
                dispatch_columns()
            ))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            Some(dispatch_facts(&facts)?)
        } else {
            None
        };
        match plan(run_facts(&row, dispatch.as_ref()), proposal) {
            Plan::Answer(verdict, reason) => Ok(Transition { verdict, reason, run: row.run }),
            Plan::Apply(apply, reason) => {
                let apply = apply.pushed_to(agent_id);
                let run = self.apply(tx, &row, apply, dispatch.as_ref()).await?;
                Ok(Transition { verdict: Verdict::Accepted, reason, run })
            }
        }
    }

    /// Cancels a run: at once if nothing runs, else `CANCELLING` until its
    /// agent confirms.
    pub async fn cancel_run(&self, id: &str) -> StoreResult<Transition> {
        let id = id.to_owned();
        self.write_transaction(move |store, conn| {
            Box::pin(async move { store.cancel_in(conn, &id).await })
        })
        .await
    }

    async fn cancel_in(&self, tx: &mut AnyConnection, id: &str) -> StoreResult<Transition> {
        let (row, _) = self.read_run(&mut *tx, id, true, false).await?;
        match orchestration::cancel_target(row.run.state) {
            Err(reason) => {
                Ok(Transition { verdict: Verdict::Rejected, reason: Some(reason), run: row.run })
            }
            Ok(to) => {
                let apply = Apply {
                    to,
                    message: Some("cancelled by request".to_owned()),
                    output: None,
                    retry_in_ms: None,
                    agent_id: None,
                };
                let run = self.apply(tx, &row, apply, None).await?;
                Ok(Transition { verdict: Verdict::Accepted, reason: None, run })
            }
        }
    }

    /// Writes an accepted transition in `conn`'s transaction if the facts
    /// it was decided on still hold; else `Conflict`.
    async fn apply(
        &self,
        conn: &mut AnyConnection,
        row: &RunRow,
        apply: Apply,
        dispatch: Option<&DispatchFacts>,
    ) -> StoreResult<FlowRun> {
        let (write, run) = state_write(row, apply, dispatch);
        if transitions::write_states(conn, &[&write]).await?.contains(&write.run_id) {
            Ok(run)
        } else {
            Err(changed_meanwhile(&write.run_id))
        }
    }

    /// Writes an accepted transition in a write transaction of its own (on
    /// SQLite, the next group commit); `false` when its facts changed.
    async fn write_state(&self, write: StateWrite) -> StoreResult<bool> {
        match &self.batcher {
            Some(batcher) => self.note_write(batcher.submit_state(write).await),
            None => {
                self.write_transaction(move |_, conn| {
                    Box::pin(async move {
                        Ok(transitions::write_states(conn, &[&write])
                            .await?
                            .contains(&write.run_id))
                    })
                })
                .await
            }
        }
    }

    /// Marks runs `LATE` whose time passed `late_after_ms` ago undispatched,
    /// and fails `RUNNING` runs past their timeout (their retry policy then
    /// applies).
    pub async fn sweep(&self, late_after_ms: i64) -> StoreResult<Sweep> {
        let at = now().0;
        let mut sweep = Sweep::default();
        let late = sqlx::query(
            "SELECT id FROM flow_runs WHERE state IN ('SCHEDULED', 'AWAITING_RETRY') AND scheduled_at < $1 ORDER BY scheduled_at LIMIT 500",
        )
        .bind(at.saturating_sub(late_after_ms))
        .fetch_all(&self.read)
        .await?;
        for row in late {
            let id: String = row.try_get("id")?;
            let proposal = ProposeState {
                state: StateName::Late,
                message: Some(format!(
                    "not dispatched within {late_after_ms} ms of its scheduled time"
                )),
                output: None,
            };
            if self.propose_state(&id, proposal).await?.verdict == Verdict::Accepted {
                sweep.marked_late += 1;
            }
        }
        let overdue = sqlx::query(
            "SELECT id, timeout_ms FROM flow_runs WHERE state = 'RUNNING' AND timeout_ms IS NOT NULL AND started_at + timeout_ms < $1 LIMIT 500",
        )
        .bind(at)
        .fetch_all(&self.read)
        .await?;
        for row in overdue {
            let id: String = row.try_get("id")?;
            let timeout_ms: i64 = row.try_get("timeout_ms")?;
            let proposal = ProposeState {
                state: StateName::Failed,
                message: Some(format!("timed out after {timeout_ms} ms")),
                output: None,
            };
            if self.propose_state(&id, proposal).await?.verdict == Verdict::Accepted {
                sweep.timed_out += 1;
            }
        }
        Ok(sweep)
    }

    /// The automations whose actions led to a run (empty if none, or if
    /// the run is gone).
    pub async fn run_caused_by(&self, id: &str) -> StoreResult<Vec<String>> {
        let row = sqlx::query("SELECT caused_by FROM flow_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        match row.map(|r| r.try_get::<Option<String>, _>("caused_by")).transpose()?.flatten() {
            Some(text) => {
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
            }
            None => Ok(Vec::new()),
        }
    }

    /// Cancels every `LATE` run (of one deployment, if given), saying they
    /// were skipped; returns how many.
    pub async fn skip_late(&self, deployment: Option<(&str, &str)>) -> StoreResult<u64> {
        let deployment_id = match deployment {
            Some((flow, name)) => Some(self.deployment(flow, name).await?.id),
            None => None,
        };
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM flow_runs WHERE state = 'LATE' \
             AND (CAST($1 AS TEXT) IS NULL OR deployment_id = CAST($1 AS TEXT))",
        )
        .bind(deployment_id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?;
        let mut skipped = 0;
        for id in ids {
            let proposal = ProposeState {
                state: StateName::Cancelled,
                message: Some("skipped: late".to_owned()),
                output: None,
            };
            // One that started meanwhile is left alone.
            if self.propose_state(&id, proposal).await?.verdict == Verdict::Accepted {
                skipped += 1;
            }
        }
        Ok(skipped)
    }
}
