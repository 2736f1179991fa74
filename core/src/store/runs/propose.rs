//! Changing a run's state: proposals decided by the orchestration rules,
//! fenced by attempt when they come from an execution, dispatch and cancel.

use baton_proto::v1::{
    ConcurrencyPolicy, DeploymentSpec, FlowRun, Infrastructure, ProposeState, StateName, Timestamp,
    Transition, Verdict,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{COLUMNS, RunRow, run_row};
use crate::orchestration::{self, Decision, RunFacts};
use crate::store::transitions::{self, DispatchGuard, StateWrite, slots_in_use_sql};
use crate::store::{Dialect, Store, StoreError, StoreResult, as_u32, now};

/// The execution a proposal comes from: only the run's current attempt, on
/// the agent it was pushed to and while the run is held, may change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub agent_id: String,
    pub attempt: u32,
    /// The execution's event that proposes (its sequence number on the
    /// agent's link), recorded with the change it makes; `None` for the
    /// core's own verdicts on the execution.
    pub event_seq: Option<u64>,
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

/// Where a proposal comes from, and what it records besides the state.
#[derive(Debug, Clone, Default)]
struct Origin {
    /// A dispatch's: the agent the run is pushed to.
    pushed_to: Option<String>,
    /// An execution's: it applies only while that execution holds the run.
    fence: Option<Fence>,
    /// A start's: where it runs.
    infrastructure: Option<Infrastructure>,
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
            let apply = Apply {
                to: state,
                message,
                output: proposal.output,
                retry_in_ms,
                agent_id: None,
                infrastructure: None,
                event_seq: None,
            };
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
    /// Where a start runs.
    infrastructure: Option<Infrastructure>,
    /// The execution's event that makes the change.
    event_seq: Option<u64>,
}

impl Apply {
    /// Records the agent of a dispatch (`PENDING`), where a start
    /// (`RUNNING`) runs and the execution's event that made it.
    fn from(self, origin: &Origin) -> Self {
        let agent_id = origin.pushed_to.clone().filter(|_| self.to == StateName::Pending);
        let infrastructure =
            origin.infrastructure.clone().filter(|_| self.to == StateName::Running);
        let event_seq = origin.fence.as_ref().and_then(|fence| fence.event_seq);
        Self { agent_id, infrastructure, event_seq, ..self }
    }
}

/// The deployment facts a dispatch (`PENDING`) is decided on; `apply`
/// writes the decision only if they still hold.
pub(super) struct DispatchFacts {
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
        infrastructure: apply.infrastructure.as_ref().and_then(|i| serde_json::to_string(i).ok()),
        agent_seq: apply.event_seq.map(|seq| i64::try_from(seq).unwrap_or(i64::MAX)),
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
        infrastructure: match to {
            StateName::Pending => None,
            _ => apply.infrastructure.or_else(|| run.infrastructure.clone()),
        },
        ..run.clone()
    };
    (write, run)
}

impl Store {
    /// The run `id` (locked for this transaction on PostgreSQL when
    /// `lock`), with its dispatch facts when `dispatch`.
    pub(super) async fn read_run<'e>(
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
        self.propose(id, proposal, Origin::default()).await
    }

    /// Proposes a transition on behalf of the execution `fence` names;
    /// `Stale` if that execution no longer holds the run.
    pub async fn propose_fenced(
        &self,
        id: &str,
        fence: &Fence,
        proposal: ProposeState,
    ) -> StoreResult<Transition> {
        let origin = Origin { fence: Some(fence.clone()), ..Origin::default() };
        self.propose(id, proposal, origin).await
    }

    /// Proposes `RUNNING` on behalf of the execution `fence` names, which
    /// runs on `infrastructure`.
    pub async fn propose_started(
        &self,
        id: &str,
        fence: &Fence,
        infrastructure: Infrastructure,
    ) -> StoreResult<Transition> {
        let proposal = ProposeState { state: StateName::Running, message: None, output: None };
        let origin = Origin {
            fence: Some(fence.clone()),
            infrastructure: Some(infrastructure),
            ..Origin::default()
        };
        self.propose(id, proposal, origin).await
    }

    /// Proposes `PENDING` for a run pushed to `agent_id`, which is recorded
    /// with the state.
    pub async fn dispatch_run(&self, id: &str, agent_id: &str) -> StoreResult<Transition> {
        let proposal = ProposeState {
            state: StateName::Pending,
            message: Some(format!("pushed to agent {agent_id}")),
            output: None,
        };
        let origin = Origin { pushed_to: Some(agent_id.to_owned()), ..Origin::default() };
        self.propose(id, proposal, origin).await
    }

    async fn propose(
        &self,
        id: &str,
        proposal: ProposeState,
        origin: Origin,
    ) -> StoreResult<Transition> {
        let transition = self.decide(id, proposal, origin).await?;
        self.note_transition(&transition);
        Ok(transition)
    }

    async fn decide(
        &self,
        id: &str,
        proposal: ProposeState,
        origin: Origin,
    ) -> StoreResult<Transition> {
        if self.dialect == Dialect::Postgres {
            let id = id.to_owned();
            return self
                .write_transaction(move |store, conn| {
                    Box::pin(
                        async move { store.propose_locked(conn, &id, proposal, &origin).await },
                    )
                })
                .await;
        }
        for _ in 0..8 {
            let dispatching = proposal.state == StateName::Pending;
            let (row, dispatch) = self.read_run(&self.read, id, false, dispatching).await?;
            if let Some(fence) = &origin.fence {
                fence.check(&row.run)?;
            }
            match plan(run_facts(&row, dispatch.as_ref()), proposal.clone()) {
                Plan::Answer(verdict, reason) => {
                    return Ok(Transition { verdict, reason, run: row.run });
                }
                Plan::Apply(apply, reason) => {
                    let apply = apply.from(&origin);
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
        origin: &Origin,
    ) -> StoreResult<Transition> {
        let (row, _) = self.read_run(&mut *tx, id, true, false).await?;
        if let Some(fence) = &origin.fence {
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
                let apply = apply.from(origin);
                let run = self.apply(tx, &row, apply, dispatch.as_ref()).await?;
                Ok(Transition { verdict: Verdict::Accepted, reason, run })
            }
        }
    }

    /// Resubmits a run its execution (`fence`) could not finish for want
    /// of sandbox memory to the pool `pool`: `SCHEDULED` there, `message`
    /// saying why. Outside the rules' transitions, as a cancel is: only the
    /// execution holding the run escalates it, once (the caller checks).
    pub async fn escalate_run(
        &self,
        id: &str,
        fence: &Fence,
        pool: &str,
        message: String,
    ) -> StoreResult<Transition> {
        let (id, fence, pool) = (id.to_owned(), fence.clone(), pool.to_owned());
        self.write_transaction(move |store, conn| {
            Box::pin(async move {
                let (row, _) = store.read_run(&mut *conn, &id, true, false).await?;
                fence.check(&row.run)?;
                sqlx::query("UPDATE flow_runs SET work_pool = $1, work_queue = $2 WHERE id = $3")
                    .bind(&pool)
                    .bind(crate::store::DEFAULT_QUEUE)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
                let apply = Apply {
                    to: StateName::Scheduled,
                    message: Some(message),
                    output: None,
                    retry_in_ms: None,
                    agent_id: None,
                    infrastructure: None,
                    event_seq: fence.event_seq,
                };
                let mut run = store.apply(conn, &row, apply, None).await?;
                run.work_pool = pool;
                run.work_queue = crate::store::DEFAULT_QUEUE.to_owned();
                Ok(Transition { verdict: Verdict::Accepted, reason: None, run })
            })
        })
        .await
    }

    /// Cancels a run: at once if nothing runs, else `CANCELLING` until its
    /// agent confirms.
    pub async fn cancel_run(&self, id: &str) -> StoreResult<Transition> {
        let id = id.to_owned();
        let transition = self
            .write_transaction(move |store, conn| {
                Box::pin(async move { store.cancel_in(conn, &id).await })
            })
            .await?;
        self.note_transition(&transition);
        Ok(transition)
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
                    infrastructure: None,
                    event_seq: None,
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
            Some(batcher) => {
                let began = std::time::Instant::now();
                let written = batcher.submit_state(write).await;
                self.metrics().store_write.observe(began.elapsed().as_secs_f64());
                self.note_write(written)
            }
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
}
