//! Flow runs: what a run row holds and how runs are read (one, a page with
//! a cursor, counts by state); creating them ([`create`]), changing their
//! state ([`propose`]) and the sweeps ([`sweep`]) are submodules that share
//! the row helpers here.

mod create;
mod propose;
mod sweep;

pub(crate) use create::{NewRun, ParentLink, RunOrigin, insert_runs};
pub use propose::Fence;
pub use sweep::{Sweep, SweepConfig};

use std::sync::LazyLock;

use baton_proto::v1::{FlowRun, FlowRunDetail, Page, RunProgress, StateName, TaskRun, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Dialect, Store, StoreError, StoreResult, as_u32, attempts, json_column, now, parsed_column,
};

const COLUMNS: &str = "id, deployment_id, flow_name, deployment_name, parameters, tags, state, state_message, \
    state_changed_at, state_seq, scheduled_at, started_at, ended_at, run_count, max_retries, retry_delay_ms, \
    timeout_ms, idempotency_key, output, created_at, work_pool, work_queue, agent_id, attempt, job_variables, infrastructure, \
    parent_id, retry_of, progress_fraction, progress_message, progress_at";

/// The pool of runs whose deployment names none.
pub const DEFAULT_POOL: &str = baton_proto::v1::DEFAULT_WORK_POOL;

/// Most runs (or task runs) one page holds.
pub const MAX_PAGE: u32 = 500;

/// Most task runs a run's detail carries; the rest are paged.
const DETAIL_TASK_RUNS: u32 = 500;
/// The artifacts `GET /api/runs/{id}` includes; the rest through
/// `GET /api/runs/{id}/artifacts`.
const DETAIL_ARTIFACTS: u32 = 100;
/// The children `GET /api/runs/{id}` includes; the rest through
/// `GET /api/runs?parent_id=...`.
const DETAIL_CHILDREN: u32 = 100;

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Any of these states (all when empty).
    pub states: Vec<StateName>,
    pub deployment_id: Option<String>,
    pub flow: Option<String>,
    pub tag: Option<String>,
    /// Started by this run's flow.
    pub parent_id: Option<String>,
    /// `Some(true)`: only runs planned for later (`SCHEDULED` with a time
    /// still to come); `Some(false)`: all but those; `None`: all.
    pub upcoming: Option<bool>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Most runs returned; 0 means 50.
    pub limit: u32,
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
    let id: String = row.try_get("id")?;
    let run = FlowRun {
        name: baton_proto::v1::run_names::run_name(&id),
        id,
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
        job_variables: match row.try_get::<Option<String>, _>("job_variables")? {
            Some(text) => {
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?
            }
            None => serde_json::Map::new(),
        },
        infrastructure: row
            .try_get::<Option<String>, _>("infrastructure")?
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        parent_id: row.try_get("parent_id")?,
        retry_of: row.try_get("retry_of")?,
        progress: match row.try_get::<Option<i64>, _>("progress_at")? {
            Some(at) => Some(RunProgress {
                fraction: row.try_get::<Option<f64>, _>("progress_fraction")?.unwrap_or_default(),
                message: row.try_get::<Option<String>, _>("progress_message")?.unwrap_or_default(),
                at: Timestamp(at),
            }),
            None => None,
        },
    };
    Ok(RunRow {
        run,
        state_seq: row.try_get("state_seq")?,
        retry_delay_ms: row.try_get("retry_delay_ms")?,
    })
}

impl Store {
    fn lock_clause(&self) -> &'static str {
        // SQLite has one writer at a time already.
        match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    pub async fn run(&self, id: &str) -> StoreResult<FlowRun> {
        Ok(self.read_run(&self.read, id, false, false).await?.0.run)
    }

    /// A run with its state history, first task runs and attempts, read
    /// in one statement: clients poll this while a run is in flight, and
    /// every statement is a round trip to the database.
    pub async fn run_detail(&self, id: &str) -> StoreResult<FlowRunDetail> {
        let row = sqlx::query(detail_sql(self.dialect))
            .bind(id)
            .bind(i64::from(DETAIL_TASK_RUNS) + 1)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("run {id}")))?;
        let Page { items: task_runs, next_cursor: task_runs_next_cursor } =
            page_of(json_column(&row, "detail_task_runs")?, DETAIL_TASK_RUNS, task_run_cursor);
        let history: Vec<attempts::HistoryRow> = json_column(&row, "detail_history")?;
        Ok(FlowRunDetail {
            run: run_row(&row)?.run,
            states: history.iter().map(attempts::HistoryRow::change).collect(),
            task_runs,
            task_runs_next_cursor,
            attempts: attempts::from_history(&history, json_column(&row, "detail_stale")?),
            artifacts: json_column(&row, "detail_artifacts")?,
            children: json_column(&row, "detail_children")?,
        })
    }

    /// A run's task runs by attempt and task id, `limit` (at most
    /// [`MAX_PAGE`]) after `cursor` (a page's `next_cursor`: `ATTEMPT.TASK`).
    pub async fn task_runs(
        &self,
        id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> StoreResult<Page<TaskRun>> {
        let after = match cursor {
            None => (0, -1),
            Some(cursor) => cursor
                .split_once('.')
                .and_then(|(a, t)| Some((a.parse::<i64>().ok()?, t.parse::<i64>().ok()?)))
                .ok_or_else(|| {
                    StoreError::Invalid(format!("`{cursor}` is not a task-run cursor"))
                })?,
        };
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = sqlx::query(
            "SELECT run_attempt, task_id, name, attempt, max_attempts, state, message, started_at, ended_at, \
             cached_from FROM task_runs WHERE run_id = $1 AND (run_attempt > $2 OR (run_attempt = $2 AND task_id > $3)) \
             ORDER BY run_attempt, task_id LIMIT $4",
        )
        .bind(id)
        .bind(after.0)
        .bind(after.1)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.read)
        .await?;
        let items = rows
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
                    cached_from: row.try_get("cached_from")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        if items.is_empty() && cursor.is_none() {
            // Tell an unknown run from one without tasks.
            self.run(id).await?;
        }
        Ok(page_of(items, limit, task_run_cursor))
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
        if let Some(parent_id) = &filter.parent_id {
            push_text(&mut sql, " AND parent_id = ?", parent_id.clone());
        }
        if let Some(upcoming) = filter.upcoming {
            // A number of our own, not input.
            let planned = format!("(state = 'SCHEDULED' AND scheduled_at > {})", now().0);
            sql.push_str(&if upcoming {
                format!(" AND {planned}")
            } else {
                format!(" AND NOT {planned}")
            });
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
        let items =
            rows.iter().map(|r| run_row(r).map(|r| r.run)).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_of(items, limit, |run| run.id.clone()))
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
}

/// Where a page of task runs ending with `task` leaves off.
fn task_run_cursor(task: &TaskRun) -> String {
    format!("{}.{}", task.run_attempt, task.task_id)
}

/// `SELECT` of a run (`$1`) with its history, first task runs (at most
/// `$2`) and stale outcomes as JSON arrays of objects.
fn detail_sql(dialect: Dialect) -> &'static str {
    static SQLITE: LazyLock<String> = LazyLock::new(|| detail_select(Dialect::Sqlite));
    static POSTGRES: LazyLock<String> = LazyLock::new(|| detail_select(Dialect::Postgres));
    match dialect {
        Dialect::Sqlite => &SQLITE,
        Dialect::Postgres => &POSTGRES,
    }
}

fn detail_select(dialect: Dialect) -> String {
    // Outputs are stored as JSON text; they go in as JSON, not as strings.
    let output = match dialect {
        Dialect::Sqlite => "CASE WHEN json_valid(output) THEN json(output) END",
        Dialect::Postgres => "output::json",
    };
    let history = json_rows(
        dialect,
        &[
            ("state", "state"),
            ("message", "message"),
            ("at", "at"),
            ("attempt", "attempt"),
            ("agent_id", "agent_id"),
            ("output", output),
        ],
        "run_states WHERE run_id = r.id",
        "seq",
    );
    let task_runs = json_rows(
        dialect,
        &[
            ("run_attempt", "run_attempt"),
            ("task_id", "task_id"),
            ("name", "name"),
            ("attempt", "attempt"),
            ("max_attempts", "max_attempts"),
            ("state", "state"),
            ("message", "message"),
            ("started_at", "started_at"),
            ("ended_at", "ended_at"),
            ("cached_from", "cached_from"),
        ],
        "(SELECT * FROM task_runs WHERE run_id = r.id ORDER BY run_attempt, task_id LIMIT $2) t",
        "run_attempt, task_id",
    );
    let stale = json_rows(
        dialect,
        &[("attempt", "attempt"), ("said", "said")],
        "stale_outcomes WHERE run_id = r.id",
        "attempt",
    );
    let content = match dialect {
        Dialect::Sqlite => "json(content)",
        Dialect::Postgres => "content::json",
    };
    let artifacts = json_rows(
        dialect,
        &[
            ("run_id", "run_id"),
            ("attempt", "attempt"),
            ("key", "artifact_key"),
            ("kind", "kind"),
            ("description", "description"),
            ("content", content),
            ("created_at", "created_at"),
        ],
        &format!(
            "(SELECT * FROM run_artifacts WHERE run_id = r.id ORDER BY attempt, seq LIMIT {DETAIL_ARTIFACTS}) a"
        ),
        "attempt, seq",
    );
    let children = json_rows(
        dialect,
        &[
            ("id", "id"),
            ("deployment", "flow_name || '/' || deployment_name"),
            ("state", "state"),
            ("state_message", "state_message"),
            ("created_at", "created_at"),
            ("started_at", "started_at"),
            ("ended_at", "ended_at"),
        ],
        &format!(
            "(SELECT * FROM flow_runs WHERE parent_id = r.id ORDER BY created_at, id LIMIT {DETAIL_CHILDREN}) c"
        ),
        "created_at, id",
    );
    format!(
        "SELECT {COLUMNS}, {history} AS detail_history, {task_runs} AS detail_task_runs, \
         {stale} AS detail_stale, {artifacts} AS detail_artifacts, {children} AS detail_children \
         FROM flow_runs r WHERE r.id = $1"
    )
}

/// A subquery giving the rows of `source` in `order` as a JSON array (text)
/// of objects made of `fields` (name, expression).
fn json_rows(dialect: Dialect, fields: &[(&str, &str)], source: &str, order: &str) -> String {
    let pairs: Vec<String> =
        fields.iter().map(|(name, expr)| format!("'{name}', {expr}")).collect();
    let pairs = pairs.join(", ");
    match dialect {
        Dialect::Sqlite => {
            format!(
                "(SELECT json_group_array(json_object({pairs}) ORDER BY {order}) FROM {source})"
            )
        }
        Dialect::Postgres => format!(
            "(SELECT COALESCE(json_agg(json_build_object({pairs}) ORDER BY {order}), '[]'::json)::text FROM {source})"
        ),
    }
}

/// A page of `items`, read with one more than `limit` to tell whether more
/// follow; the cursor names the last item kept.
fn page_of<T>(mut items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Page<T> {
    let limit = limit as usize;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next_cursor }
}
