//! Schedules: kept in their deployment's spec. The scheduler's progress on
//! each active one is a row of `schedule_states`; the runs it makes carry
//! the schedule's id and the idempotency key `schedule:ID:MILLIS`, so one
//! schedule time never gets two runs, however many cores tick.

use std::collections::HashSet;

use baton_proto::v1::{
    Deployment, DeploymentSpec, ProposeState, Schedule as ScheduleInfo, ScheduleSpec, StateName,
    Timestamp, validate_params,
};
use sha2::{Digest as _, Sha256};
use sqlx::{AnyConnection, Row};

use super::deployments::{self, COLUMNS};
use super::events::{self, NewEvent};
use super::runs::{NewRun, insert_runs};
use super::{Dialect, Store, StoreError, StoreResult, json_column, now, to_json};
use crate::schedule::{self, Schedule};

/// A schedule's id: a digest of everything in it but `active`, so pausing
/// keeps it and re-deploying the same schedule finds it again.
pub fn schedule_id(spec: &ScheduleSpec) -> String {
    let mut content = spec.clone();
    content.active = true;
    let text = serde_json::to_string(&content).unwrap_or_default();
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(digest.iter().take(6).copied().collect::<Vec<u8>>())
}

/// Checks a deployment's schedules: each readable, none repeated, and the
/// parameters of each one's runs (its own over the deployment's) valid.
pub(super) fn check_schedules(
    schema: &serde_json::Value,
    spec: &DeploymentSpec,
) -> StoreResult<()> {
    let mut seen = HashSet::new();
    for (i, schedule) in spec.schedules.iter().enumerate() {
        Schedule::parse(schedule)
            .map_err(|e| StoreError::Invalid(format!("schedules[{i}]: {e}")))?;
        if !seen.insert(schedule_id(schedule)) {
            return Err(StoreError::Invalid(format!("schedules[{i}] repeats an earlier schedule")));
        }
        let mut parameters = spec.parameters.clone();
        parameters.extend(schedule.parameters.clone());
        validate_params(schema, &serde_json::Value::Object(parameters)).map_err(|e| {
            StoreError::Invalid(format!(
                "schedules[{i}]: its runs would have invalid parameters: {e}"
            ))
        })?;
    }
    Ok(())
}

/// Brings the scheduler's rows in line with a deployment's schedules: a
/// schedule that is no longer active (or whose deployment is paused) loses
/// its row and the runs it planned that have not started; a new one gets a
/// row, planned from now. With `replan` (the deployment changed), every
/// planned future run is withdrawn and planned again.
pub(super) async fn sync_states(
    conn: &mut AnyConnection,
    deployment_id: &str,
    spec: &DeploymentSpec,
    replan: bool,
) -> StoreResult<()> {
    let at = now();
    let active: Vec<String> = if spec.paused {
        Vec::new()
    } else {
        spec.schedules.iter().filter(|s| s.active).map(schedule_id).collect()
    };
    // Planned runs of other schedules (or all, to plan again) go.
    let keep = if replan { Vec::new() } else { active.clone() };
    let mut sql = String::from(
        "DELETE FROM flow_runs WHERE deployment_id = $1 AND schedule_id IS NOT NULL \
         AND state = 'SCHEDULED' AND scheduled_at > $2",
    );
    if !keep.is_empty() {
        let list: Vec<String> = (0..keep.len()).map(|i| format!("${}", i + 3)).collect();
        sql.push_str(&format!(" AND schedule_id NOT IN ({})", list.join(", ")));
    }
    let mut query = sqlx::query(&sql).bind(deployment_id).bind(at.0);
    for id in &keep {
        query = query.bind(id);
    }
    query.execute(&mut *conn).await?;

    let existing: Vec<String> =
        sqlx::query("SELECT schedule_id FROM schedule_states WHERE deployment_id = $1")
            .bind(deployment_id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| row.try_get("schedule_id"))
            .collect::<Result<_, _>>()?;
    for gone in existing.iter().filter(|id| !active.contains(id)) {
        sqlx::query("DELETE FROM schedule_states WHERE deployment_id = $1 AND schedule_id = $2")
            .bind(deployment_id)
            .bind(gone)
            .execute(&mut *conn)
            .await?;
    }
    if replan {
        sqlx::query(
            "UPDATE schedule_states SET planned_until = $1, next_look = 0 WHERE deployment_id = $2",
        )
        .bind(at.0)
        .bind(deployment_id)
        .execute(&mut *conn)
        .await?;
    }
    for schedule in &spec.schedules {
        let id = schedule_id(schedule);
        if !active.contains(&id) || existing.contains(&id) {
            continue;
        }
        sqlx::query(
            "INSERT INTO schedule_states (deployment_id, schedule_id, planned_until, next_look, spec) \
             VALUES ($1, $2, $3, 0, $4) ON CONFLICT DO NOTHING",
        )
        .bind(deployment_id)
        .bind(&id)
        .bind(at.0)
        .bind(to_json(schedule)?)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A schedule the scheduler must look at.
#[derive(Debug, Clone)]
pub struct DueSchedule {
    pub deployment_id: String,
    pub schedule_id: String,
    pub spec: ScheduleSpec,
    pub planned_until: Timestamp,
}

/// What the scheduler decided for one schedule.
#[derive(Debug, Clone)]
pub struct ScheduleUpdate {
    pub due: DueSchedule,
    /// Times that get a run.
    pub create: Vec<Timestamp>,
    pub planned_until: Timestamp,
    pub next_look: Timestamp,
}

/// Most schedules one progress UPDATE takes.
const PROGRESS_PER_UPDATE: usize = 5000;

/// Whether a progress write reports which schedules it wrote (only those
/// that make runs need to know: returning rows costs as much as writing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    Written,
    Nothing,
}

/// Writes the progress of `updates` in as few statements as possible, each
/// only if no other core moved that schedule since it was read; returns
/// the schedules written. The rows travel as one JSON array (one bound
/// value: binding five values a row costs more than the update itself).
async fn write_progress(
    conn: &mut AnyConnection,
    dialect: Dialect,
    updates: &[&ScheduleUpdate],
    report: Report,
) -> StoreResult<HashSet<(String, String)>> {
    let rows = match dialect {
        Dialect::Sqlite => {
            "SELECT json_extract(value, '$[0]') AS deployment_id, json_extract(value, '$[1]') AS schedule_id, \
             json_extract(value, '$[2]') AS read_until, json_extract(value, '$[3]') AS planned_until, \
             json_extract(value, '$[4]') AS next_look FROM json_each($1)"
        }
        Dialect::Postgres => {
            "SELECT x->>0 AS deployment_id, x->>1 AS schedule_id, (x->>2)::BIGINT AS read_until, \
             (x->>3)::BIGINT AS planned_until, (x->>4)::BIGINT AS next_look \
             FROM jsonb_array_elements(CAST($1 AS JSONB)) AS x"
        }
    };
    let sql = format!(
        "WITH v AS ({rows}) \
         UPDATE schedule_states SET planned_until = v.planned_until, next_look = v.next_look \
         FROM v WHERE schedule_states.deployment_id = v.deployment_id \
         AND schedule_states.schedule_id = v.schedule_id AND schedule_states.planned_until = v.read_until{}",
        match report {
            Report::Written =>
                " RETURNING schedule_states.deployment_id, schedule_states.schedule_id",
            Report::Nothing => "",
        }
    );
    let mut written = HashSet::new();
    for chunk in updates.chunks(PROGRESS_PER_UPDATE) {
        let values: Vec<serde_json::Value> = chunk
            .iter()
            .map(|u| {
                serde_json::json!([
                    u.due.deployment_id,
                    u.due.schedule_id,
                    u.due.planned_until.0,
                    u.planned_until.0,
                    u.next_look.0
                ])
            })
            .collect();
        let query = sqlx::query(&sql).bind(serde_json::Value::Array(values).to_string());
        if report == Report::Nothing {
            query.execute(&mut *conn).await?;
            continue;
        }
        for row in query.fetch_all(&mut *conn).await? {
            written.insert((row.try_get("deployment_id")?, row.try_get("schedule_id")?));
        }
    }
    Ok(written)
}

/// The run a schedule of `deployment` makes for `at`.
fn scheduled_run(deployment: &Deployment, due: &DueSchedule, at: Timestamp) -> NewRun {
    let mut parameters = deployment.spec.parameters.clone();
    parameters.extend(due.spec.parameters.clone());
    NewRun::of(
        deployment,
        parameters,
        at,
        &[],
        Some(format!("schedule:{}:{}", due.schedule_id, at.0)),
        Some(due.schedule_id.clone()),
    )
}

/// The runs wanted for schedules' times, with their deployments read in
/// `conn`; a deployment deleted meanwhile makes none.
async fn runs_for<'a>(
    conn: &mut AnyConnection,
    wanted: impl Iterator<Item = (&'a DueSchedule, &'a [Timestamp])>,
) -> StoreResult<Vec<NewRun>> {
    let wanted: Vec<_> = wanted.filter(|(_, times)| !times.is_empty()).collect();
    let mut deployments = std::collections::HashMap::new();
    for (due, _) in &wanted {
        if deployments.contains_key(&due.deployment_id) {
            continue;
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM deployments WHERE id = $1"))
            .bind(&due.deployment_id)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            deployments.insert(due.deployment_id.clone(), deployments::deployment(&row)?);
        }
    }
    Ok(wanted
        .into_iter()
        .filter_map(|(due, times)| deployments.get(&due.deployment_id).map(|d| (d, due, times)))
        .flat_map(|(deployment, due, times)| {
            times.iter().map(move |at| scheduled_run(deployment, due, *at))
        })
        .collect())
}

impl Store {
    /// A deployment's schedules, with the next times of the active ones.
    pub async fn schedules(&self, flow: &str, name: &str) -> StoreResult<Vec<ScheduleInfo>> {
        let deployment = self.deployment(flow, name).await?;
        let at = schedule::instant(now());
        Ok(deployment
            .spec
            .schedules
            .iter()
            .map(|spec| {
                let next = match Schedule::parse(spec) {
                    Ok(parsed) if spec.active && !deployment.spec.paused => parsed
                        .times(at, at + chrono::Duration::days(400), 3)
                        .into_iter()
                        .map(schedule::timestamp)
                        .collect(),
                    _ => Vec::new(),
                };
                ScheduleInfo { id: schedule_id(spec), spec: spec.clone(), next }
            })
            .collect())
    }

    /// Changes a deployment's schedules with `edit`, checked like a
    /// deployment's, in one transaction; returns the deployment's
    /// schedules afterwards and what `edit` returned.
    pub async fn edit_schedules<R>(
        &self,
        flow: &str,
        name: &str,
        edit: impl FnOnce(&mut Vec<ScheduleSpec>) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let mut tx = self.write.begin().await?;
        let Some(mut deployment) = deployments::find(&mut *tx, flow, name).await? else {
            return Err(self.missing_with_hint(flow, name).await);
        };
        let result = edit(&mut deployment.spec.schedules)?;
        check_schedules(&deployment.parameter_schema, &deployment.spec)?;
        sqlx::query("UPDATE deployments SET spec = $1, updated_at = $2 WHERE id = $3")
            .bind(to_json(&deployment.spec)?)
            .bind(now().0)
            .bind(&deployment.id)
            .execute(&mut *tx)
            .await?;
        sync_states(&mut tx, &deployment.id, &deployment.spec, false).await?;
        events::record(
            &mut tx,
            NewEvent {
                name: "deployment.updated",
                resource: format!("deployment/{flow}/{name}"),
                related: Vec::new(),
                payload: serde_json::json!({ "changed": ["schedules"] }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(result)
    }

    /// Adds a schedule to a deployment; returns its id.
    pub async fn add_schedule(
        &self,
        flow: &str,
        name: &str,
        spec: ScheduleSpec,
    ) -> StoreResult<String> {
        let id = schedule_id(&spec);
        self.edit_schedules(flow, name, |schedules| {
            if schedules.iter().any(|s| schedule_id(s) == id) {
                return Err(StoreError::Conflict(format!(
                    "deployment {flow}/{name} has this schedule already ({id})"
                )));
            }
            schedules.push(spec);
            Ok(())
        })
        .await?;
        Ok(id)
    }

    /// Pauses or resumes one schedule of a deployment.
    pub async fn set_schedule_active(
        &self,
        flow: &str,
        name: &str,
        id: &str,
        active: bool,
    ) -> StoreResult<()> {
        self.edit_schedules(flow, name, |schedules| {
            let schedule = schedules
                .iter_mut()
                .find(|s| schedule_id(s) == id)
                .ok_or_else(|| StoreError::not_found(format!("schedule {id} of {flow}/{name}")))?;
            schedule.active = active;
            Ok(())
        })
        .await
    }

    /// Deletes one schedule of a deployment (with the runs it planned that
    /// have not started).
    pub async fn delete_schedule(&self, flow: &str, name: &str, id: &str) -> StoreResult<()> {
        self.edit_schedules(flow, name, |schedules| {
            let before = schedules.len();
            schedules.retain(|s| schedule_id(s) != id);
            if schedules.len() == before {
                return Err(StoreError::not_found(format!("schedule {id} of {flow}/{name}")));
            }
            Ok(())
        })
        .await
    }

    /// Schedules whose `next_look` has come, of deployments not paused,
    /// most overdue first.
    pub async fn schedules_due(&self, at: Timestamp, limit: u32) -> StoreResult<Vec<DueSchedule>> {
        // The rows come back as one JSON array in one row: sqlx hands each
        // row over from its worker thread, which costs more than the row.
        let due = "SELECT s.deployment_id, s.schedule_id, s.spec, s.planned_until FROM schedule_states s \
                   JOIN deployments d ON d.id = s.deployment_id \
                   WHERE s.next_look <= $1 AND d.paused = 0 ORDER BY s.next_look LIMIT $2";
        let sql = match self.dialect() {
            Dialect::Sqlite => format!(
                "SELECT json_group_array(json_array(deployment_id, schedule_id, json(spec), planned_until)) \
                 AS due FROM ({due})"
            ),
            Dialect::Postgres => format!(
                "SELECT COALESCE(json_agg(json_build_array(deployment_id, schedule_id, \
                 CAST(spec AS JSON), planned_until)), '[]')::TEXT AS due FROM ({due}) AS due"
            ),
        };
        let row = sqlx::query(&sql).bind(at.0).bind(i64::from(limit)).fetch_one(&self.read).await?;
        let due: Vec<(String, String, ScheduleSpec, i64)> = json_column(&row, "due")?;
        Ok(due
            .into_iter()
            .map(|(deployment_id, schedule_id, spec, planned_until)| DueSchedule {
                deployment_id,
                schedule_id,
                spec,
                planned_until: Timestamp(planned_until),
            })
            .collect())
    }

    /// Writes the scheduler's decisions in one transaction: each schedule's
    /// progress (unless another core moved it meanwhile) and its new runs.
    /// Returns how many runs were created.
    pub async fn apply_schedule_updates(&self, updates: Vec<ScheduleUpdate>) -> StoreResult<usize> {
        if updates.is_empty() {
            return Ok(0);
        }
        self.write_transaction(move |store, conn| {
            Box::pin(async move {
                let (creating, quiet): (Vec<_>, Vec<_>) =
                    updates.iter().partition(|u| !u.create.is_empty());
                write_progress(conn, store.dialect(), &quiet, Report::Nothing).await?;
                let written =
                    write_progress(conn, store.dialect(), &creating, Report::Written).await?;
                let wanted = updates
                    .iter()
                    .filter(|u| {
                        written.contains(&(u.due.deployment_id.clone(), u.due.schedule_id.clone()))
                    })
                    .map(|u| (&u.due, u.create.as_slice()));
                let runs = runs_for(conn, wanted).await?;
                insert_runs(conn, &runs).await
            })
        })
        .await
        .map(|inserted| self.note_created(inserted))
    }

    /// When a scheduler last ticked, if ever.
    pub async fn last_tick(&self) -> StoreResult<Option<Timestamp>> {
        let row = sqlx::query("SELECT last_tick FROM scheduler_clock WHERE id = 1")
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get("last_tick")).transpose()?.map(Timestamp))
    }

    pub async fn record_tick(&self, at: Timestamp) -> StoreResult<()> {
        self.write_transaction(move |_, conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO scheduler_clock (id, last_tick) VALUES (1, $1) \
                     ON CONFLICT (id) DO UPDATE SET last_tick = $1",
                )
                .bind(at.0)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Every active schedule of a deployment that is not paused, as the
    /// scheduler sees it (for catching up).
    pub async fn active_schedules(&self) -> StoreResult<Vec<DueSchedule>> {
        self.schedules_due(Timestamp(i64::MAX), u32::MAX).await
    }

    /// Runs a schedule planned for times in `(after, until]` that have not
    /// started: `(id, scheduled_at)`, oldest first.
    pub async fn planned_runs(
        &self,
        due: &DueSchedule,
        after: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Vec<(String, Timestamp)>> {
        let rows = sqlx::query(
            "SELECT id, scheduled_at FROM flow_runs WHERE deployment_id = $1 AND schedule_id = $2 \
             AND scheduled_at > $3 AND scheduled_at <= $4 AND state IN ('SCHEDULED', 'LATE') \
             ORDER BY scheduled_at",
        )
        .bind(&due.deployment_id)
        .bind(&due.schedule_id)
        .bind(after.0)
        .bind(until.0)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, Timestamp(row.try_get("scheduled_at")?))))
            .collect()
    }

    /// Cancels a planned run the catch-up policy skips, saying why.
    pub async fn skip_missed_run(&self, run_id: &str, why: String) -> StoreResult<()> {
        self.propose_state(
            run_id,
            ProposeState { state: StateName::Cancelled, message: Some(why), output: None },
        )
        .await?;
        Ok(())
    }

    /// Records `schedule.fired` for the runs schedules made whose time is in
    /// `(after, until]` and that were not withdrawn; once per run, however
    /// many cores record it.
    pub async fn record_fired(&self, after: Timestamp, until: Timestamp) -> StoreResult<()> {
        let rows = sqlx::query(
            "SELECT id, flow_name, deployment_name, schedule_id, scheduled_at FROM flow_runs \
             WHERE schedule_id IS NOT NULL AND scheduled_at > $1 AND scheduled_at <= $2 AND state <> 'CANCELLED'",
        )
        .bind(after.0)
        .bind(until.0)
        .fetch_all(&self.read)
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut fired = Vec::with_capacity(rows.len());
        for row in &rows {
            let run: String = row.try_get("id")?;
            let flow: String = row.try_get("flow_name")?;
            let deployment: String = row.try_get("deployment_name")?;
            let schedule: String = row.try_get("schedule_id")?;
            let at = Timestamp(row.try_get("scheduled_at")?);
            fired.push((run, format!("deployment/{flow}/{deployment}"), schedule, at));
        }
        self.write_transaction(move |_, conn| {
            Box::pin(async move {
                for (run, deployment, schedule, at) in fired {
                    events::record_once(
                        conn,
                        &format!("fired:{run}"),
                        at,
                        NewEvent {
                            name: "schedule.fired",
                            resource: format!("schedule/{schedule}"),
                            related: vec![deployment, format!("run/{run}")],
                            payload: serde_json::json!({ "run_id": run, "scheduled_at": at }),
                        },
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Creates the runs a catch-up policy wants for missed times.
    pub async fn create_missed_runs(
        &self,
        due: &DueSchedule,
        times: &[Timestamp],
    ) -> StoreResult<usize> {
        let (due, times) = (due.clone(), times.to_vec());
        self.write_transaction(move |_, conn| {
            Box::pin(async move {
                let runs = runs_for(conn, std::iter::once((&due, times.as_slice()))).await?;
                insert_runs(conn, &runs).await
            })
        })
        .await
        .map(|inserted| self.note_created(inserted))
    }
}
