//! Writing accepted run-state transitions. Each write carries the facts its
//! decision rested on (the run's `state_seq`; for a dispatch, its
//! deployment's spec and whether a slot was free) and lands only if they
//! still hold. Many writes go in one statement, so SQLite's writer pays one
//! round trip for a whole batch of transitions.

use std::collections::HashSet;

use baton_proto::v1::StateName;
use sqlx::{AnyConnection, Row};

use super::StoreResult;

/// One accepted transition, ready to write.
#[derive(Debug, Clone)]
pub(crate) struct StateWrite {
    pub run_id: String,
    /// The `state_seq` the decision read; the write makes it one more.
    pub read_seq: i64,
    pub state: StateName,
    pub message: Option<String>,
    pub changed_at: i64,
    pub scheduled_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub run_count: i64,
    /// Replaces the stored output when set.
    pub output: Option<String>,
    /// The agent a dispatch pushes the run to.
    pub agent_id: Option<String>,
    /// The run's attempt once written (one more than before for a dispatch).
    pub attempt: i64,
    /// Where a start runs (JSON); a dispatch clears the last one.
    pub infrastructure: Option<String>,
    /// The execution's event that made the change (recorded in the run's
    /// history, so that the event sent again is known as applied).
    pub agent_seq: Option<i64>,
    pub dispatch: Option<DispatchGuard>,
}

/// What a dispatch's decision read of its deployment.
#[derive(Debug, Clone)]
pub(crate) struct DispatchGuard {
    pub deployment_id: String,
    /// The spec as stored (it holds the limit, the policy and `paused`).
    pub spec: String,
    /// The concurrency limit, and whether the write takes a slot
    /// (`PENDING`: one was free) or not (cancel-new: none was).
    pub slot: Option<(u32, bool)>,
}

/// SQL counting the runs of deployment `deployment` other than `run` that
/// hold a slot.
pub(super) fn slots_in_use_sql(deployment: &str, run: &str) -> String {
    format!(
        "SELECT COUNT(*) FROM flow_runs WHERE deployment_id = {deployment} AND id <> {run} \
         AND state IN {}",
        holding_states!()
    )
}

/// The columns of one write, with the types PostgreSQL needs to read the
/// bound values of a `VALUES` list.
const COLUMNS: [(&str, &str); 18] = [
    ("id", "TEXT"),
    ("read_seq", "BIGINT"),
    ("state", "TEXT"),
    ("message", "TEXT"),
    ("changed_at", "BIGINT"),
    ("scheduled_at", "BIGINT"),
    ("started_at", "BIGINT"),
    ("ended_at", "BIGINT"),
    ("run_count", "BIGINT"),
    ("output", "TEXT"),
    ("deployment_id", "TEXT"),
    ("spec", "TEXT"),
    ("slot_limit", "BIGINT"),
    ("takes_slot", "BIGINT"),
    ("agent_id", "TEXT"),
    ("attempt", "BIGINT"),
    ("infrastructure", "TEXT"),
    ("agent_seq", "BIGINT"),
];

fn update_sql(rows: usize) -> String {
    let names: Vec<&str> = COLUMNS.iter().map(|(name, _)| *name).collect();
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let cells: Vec<String> = COLUMNS
                .iter()
                .enumerate()
                .map(|(i, (_, ty))| format!("CAST(${} AS {ty})", row * COLUMNS.len() + i + 1))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    // The `flow_runs_history` trigger (migration 0003) adds each run's
    // history row and event in this same statement.
    format!(
        "WITH v ({}) AS (VALUES {}) \
         UPDATE flow_runs SET state = v.state, state_message = v.message, state_changed_at = v.changed_at, \
         state_seq = v.read_seq + 1, scheduled_at = v.scheduled_at, started_at = v.started_at, \
         ended_at = v.ended_at, run_count = v.run_count, output = COALESCE(v.output, flow_runs.output), \
         agent_id = COALESCE(v.agent_id, flow_runs.agent_id), attempt = v.attempt, \
         infrastructure = CASE WHEN v.state = 'PENDING' THEN NULL \
         ELSE COALESCE(v.infrastructure, flow_runs.infrastructure) END, agent_seq = v.agent_seq, \
         progress_at = CASE WHEN v.state = 'PENDING' THEN NULL ELSE flow_runs.progress_at END \
         FROM v WHERE flow_runs.id = v.id AND flow_runs.state_seq = v.read_seq \
         AND (v.spec IS NULL OR v.spec = (SELECT d.spec FROM deployments d WHERE d.id = v.deployment_id)) \
         AND (v.slot_limit IS NULL OR (v.takes_slot = 1) = (({}) < v.slot_limit)) \
         RETURNING flow_runs.id",
        names.join(", "),
        values.join(", "),
        slots_in_use_sql("v.deployment_id", "v.id"),
    )
}

/// Applies `writes` in one statement; returns the ids of the runs whose
/// write held. The caller must keep two writes of one run, or two
/// slot-guarded writes of one deployment, out of one call (`statements`):
/// their guards are checked before either lands.
pub(super) async fn write_states(
    conn: &mut AnyConnection,
    writes: &[&StateWrite],
) -> StoreResult<HashSet<String>> {
    if writes.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = update_sql(writes.len());
    let mut query = sqlx::query(&sql);
    for write in writes {
        let dispatch = write.dispatch.as_ref();
        let slot = dispatch.and_then(|d| d.slot);
        query = query
            .bind(write.run_id.clone())
            .bind(write.read_seq)
            .bind(write.state.as_str())
            .bind(write.message.clone())
            .bind(write.changed_at)
            .bind(write.scheduled_at)
            .bind(write.started_at)
            .bind(write.ended_at)
            .bind(write.run_count)
            .bind(write.output.clone())
            .bind(dispatch.map(|d| d.deployment_id.clone()))
            .bind(dispatch.map(|d| d.spec.clone()))
            .bind(slot.map(|(limit, _)| i64::from(limit)))
            .bind(slot.map(|(_, takes)| i64::from(takes)))
            .bind(write.agent_id.clone())
            .bind(write.attempt)
            .bind(write.infrastructure.clone())
            .bind(write.agent_seq);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(|row| Ok(row.try_get::<String, _>("id")?)).collect()
}

/// Splits writes (by index) into groups that may share one statement.
pub(super) fn statements(writes: &[&StateWrite]) -> Vec<Vec<usize>> {
    #[derive(Default)]
    struct Group {
        members: Vec<usize>,
        runs: HashSet<String>,
        slot_guarded: HashSet<String>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for (index, write) in writes.iter().enumerate() {
        let guarded = write.dispatch.as_ref().filter(|d| d.slot.is_some());
        let fits = |group: &Group| {
            !group.runs.contains(&write.run_id)
                && guarded.is_none_or(|d| !group.slot_guarded.contains(&d.deployment_id))
        };
        let position = groups.iter().position(fits).unwrap_or_else(|| {
            groups.push(Group::default());
            groups.len() - 1
        });
        let Some(group) = groups.get_mut(position) else { continue };
        group.members.push(index);
        group.runs.insert(write.run_id.clone());
        if let Some(d) = guarded {
            group.slot_guarded.insert(d.deployment_id.clone());
        }
    }
    groups.into_iter().map(|g| g.members).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(run: &str, slot_deployment: Option<&str>) -> StateWrite {
        StateWrite {
            run_id: run.to_owned(),
            read_seq: 1,
            state: StateName::Pending,
            message: None,
            changed_at: 0,
            scheduled_at: 0,
            started_at: None,
            ended_at: None,
            run_count: 0,
            output: None,
            agent_id: None,
            attempt: 0,
            infrastructure: None,
            agent_seq: None,
            dispatch: slot_deployment.map(|d| DispatchGuard {
                deployment_id: d.to_owned(),
                spec: String::new(),
                slot: Some((1, true)),
            }),
        }
    }

    #[test]
    fn writes_that_could_interfere_go_in_separate_statements() {
        let writes =
            [write("a", None), write("b", Some("d")), write("a", None), write("c", Some("d"))];
        let refs: Vec<&StateWrite> = writes.iter().collect();
        assert_eq!(statements(&refs), vec![vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn independent_writes_share_one_statement() {
        let writes = [write("a", None), write("b", Some("d")), write("c", Some("e"))];
        let refs: Vec<&StateWrite> = writes.iter().collect();
        assert_eq!(statements(&refs), vec![vec![0, 1, 2]]);
    }
}
