//! Subflows: the runs a flow starts (`run_deployment`), recorded with
//! their parent, and the children a cancelled parent takes with it.

use baton_proto::v1::{
    ChildRun, ChildStart, CreateRun, FlowRun, MAX_SUBFLOW_DEPTH, StateName, child_key,
};
use sqlx::Row;

use super::runs::{ParentLink, RunOrigin};
use super::{Asker, Store, StoreError, StoreResult};

/// A run as its parent sees it.
pub fn child_run(run: FlowRun) -> ChildRun {
    ChildRun {
        id: run.id,
        deployment: run.deployment,
        state: run.state,
        state_message: run.state_message,
        created_at: run.created_at,
        started_at: run.started_at,
        ended_at: run.ended_at,
        output: run.output,
    }
}

impl Store {
    /// Starts the child of `start.call` in attempt `attempt` of run
    /// `parent_id`, which `asker` must hold; the same call asked
    /// again returns the child it started. The run may still be `PENDING`
    /// here: its start travels in the agent's outbox, the call on a stream
    /// of its own, and either may arrive first.
    pub async fn start_child(
        &self,
        asker: Asker<'_>,
        parent_id: &str,
        attempt: u32,
        start: ChildStart,
    ) -> StoreResult<(ChildRun, bool)> {
        let depth = self.held_execution(asker, parent_id, attempt).await?.subflow_depth;
        if depth >= MAX_SUBFLOW_DEPTH {
            return Err(StoreError::Invalid(format!(
                "run {parent_id} is {depth} subflows deep, the limit: a run it starts would be \
                 {} deep (does a flow start itself without end?)",
                depth + 1
            )));
        }
        let (flow, name) = start.deployment.split_once('/').ok_or_else(|| {
            StoreError::Invalid(format!("deployment `{}` is not FLOW/NAME", start.deployment))
        })?;
        let request = CreateRun {
            parameters: start.parameters,
            idempotency_key: Some(child_key(parent_id, attempt, start.call)),
            ..CreateRun::default()
        };
        let parent = ParentLink { id: parent_id.to_owned(), waits: start.wait, depth: depth + 1 };
        let origin = RunOrigin { parent: Some(parent), ..RunOrigin::default() };
        let (run, created) = self.create_run_from(flow, name, request, origin).await?;
        Ok((child_run(run), created))
    }

    /// The children of `parent_id` that it waits for and that have not
    /// ended.
    pub async fn waited_children(&self, parent_id: &str) -> StoreResult<Vec<String>> {
        let terminal: Vec<String> = StateName::ALL
            .iter()
            .filter(|state| state.is_terminal())
            .map(|state| format!("'{}'", state.as_str()))
            .collect();
        // State names come from the enum, never from input.
        let rows = sqlx::query(&format!(
            "SELECT id FROM flow_runs WHERE parent_id = $1 AND parent_waits = 1 \
             AND state NOT IN ({})",
            terminal.join(", ")
        ))
        .bind(parent_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|row| Ok(row.try_get("id")?)).collect()
    }
}
