//! Running what the core assigns: a slot, a backend to execute it
//! ([`crate::backend`]), and the run's events into the outbox as they
//! happen.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use baton_proto::v1::link::{AgentEventBody, Assignment, Execution};
use baton_proto::v1::{Infrastructure, PoolKind, RunOutcome, RunReport};
use baton_sandbox::{CancellationToken, Digest, RunReporter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument as _;

use crate::agent::Shared;
use crate::asking::LinkAsker;
use crate::backend::{Backend, Ended, Job};
use crate::fetch::ComponentSource;
use crate::metrics::OutcomeLabels;
use crate::outbox::Outbox;
use crate::traces::ExecutionTrace;

/// The runs in progress and the slots they hold.
pub(crate) struct Runs {
    slots: Arc<Semaphore>,
    capacity: u32,
    /// Each running execution's cancellation.
    active: Mutex<BTreeMap<Execution, CancellationToken>>,
    /// Executions stopped because the agent lost its lease: they end
    /// `CRASHED`, not `CANCELLED` (nobody asked for it).
    lost: Mutex<std::collections::BTreeSet<Execution>>,
}

/// An execution's place: its slot and its entry among the active ones, both
/// given up when it is dropped.
struct RunGuard {
    shared: Arc<Shared>,
    execution: Execution,
    _slot: OwnedSemaphorePermit,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.shared.runs.lock().remove(&self.execution);
    }
}

enum Refusal {
    AlreadyRunning,
    NoFreeSlot,
}

impl Runs {
    pub(crate) fn new(slots: u32) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(usize::try_from(slots).unwrap_or(usize::MAX))),
            capacity: slots,
            active: Mutex::new(BTreeMap::new()),
            lost: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Execution, CancellationToken>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The executions in progress.
    pub(crate) fn running(&self) -> Vec<Execution> {
        self.lock().keys().cloned().collect()
    }

    /// Stops an execution (cancelled, or no longer holding its run); false
    /// if it is not running here.
    pub(crate) fn cancel(&self, execution: &Execution) -> bool {
        match self.lock().get(execution) {
            Some(cancel) => {
                cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Stops every execution: the agent lost its lease. Returns how many.
    pub(crate) fn lose_all(&self) -> usize {
        let active = self.lock();
        let mut lost = self.lost.lock().unwrap_or_else(PoisonError::into_inner);
        let mut count = 0;
        for (execution, cancel) in active.iter() {
            if lost.insert(execution.clone()) {
                cancel.cancel();
                count += 1;
            }
        }
        count
    }

    /// Whether `execution` was stopped for a lost lease (forgotten after).
    fn take_lost(&self, execution: &Execution) -> bool {
        self.lost.lock().unwrap_or_else(PoisonError::into_inner).remove(execution)
    }

    /// Waits until no run holds a slot.
    pub(crate) async fn all_ended(&self) {
        // Holding every slot at once means no run holds one; the permits
        // go back at once.
        let _all = self.slots.acquire_many(self.capacity).await;
    }

    /// Takes a slot for `execution`, with a cancellation that the agent's
    /// stop cancels too. Earlier attempts of its run still here are stopped:
    /// a newer attempt holds the run now.
    fn begin(
        shared: &Arc<Shared>,
        execution: &Execution,
    ) -> Result<(RunGuard, CancellationToken), Refusal> {
        let mut active = shared.runs.lock();
        if active.contains_key(execution) {
            return Err(Refusal::AlreadyRunning);
        }
        for (earlier, cancel) in active
            .iter()
            .filter(|(e, _)| e.run_id == execution.run_id && e.attempt < execution.attempt)
        {
            tracing::warn!(run_id = %earlier.run_id, attempt = earlier.attempt, "stopping an earlier attempt: attempt {} holds the run now", execution.attempt);
            cancel.cancel();
        }
        let slot =
            Arc::clone(&shared.runs.slots).try_acquire_owned().map_err(|_| Refusal::NoFreeSlot)?;
        let cancel = shared.stop.child_token();
        active.insert(execution.clone(), cancel.clone());
        let guard =
            RunGuard { shared: Arc::clone(shared), execution: execution.clone(), _slot: slot };
        Ok((guard, cancel))
    }
}

/// Starts an assigned run if a slot is free; else declines it.
pub(crate) fn assign(shared: &Arc<Shared>, assignment: Assignment) {
    let execution = Execution { run_id: assignment.run_id.clone(), attempt: assignment.attempt };
    let run_id = &execution.run_id;
    let decline = |reason: String| {
        tracing::info!(%run_id, deployment = %assignment.deployment, %reason, "declining a run");
        shared.outbox.push(&execution, AgentEventBody::Declined { reason });
    };
    if shared.stop.is_cancelled() {
        return decline("the agent is stopping".to_owned());
    }
    let digest = match parse_digest(&assignment.artifact) {
        Ok(digest) => digest,
        Err(reason) => return decline(reason),
    };
    match Runs::begin(shared, &execution) {
        Ok((guard, cancel)) => {
            let span = tracing::info_span!("run", run_id = %run_id, attempt = execution.attempt, deployment = %assignment.deployment);
            tokio::spawn(execute(guard, assignment, digest, cancel).instrument(span));
        }
        Err(Refusal::NoFreeSlot) => decline("no free slot".to_owned()),
        Err(Refusal::AlreadyRunning) => {
            tracing::debug!(%run_id, "assigned a run that is already running here");
        }
    }
}

/// Fetches and compiles a component deployed to the agent's pool, in the
/// background: its runs find it ready. A failure is only logged (its runs
/// will say why, if it persists).
pub(crate) fn prepare(shared: &Arc<Shared>, artifact: String, pool_kind: PoolKind) {
    let digest = match parse_digest(&artifact) {
        Ok(digest) => digest,
        Err(reason) => return tracing::warn!(%reason, "not preparing a component"),
    };
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let component = ComponentSource::new(Arc::clone(&shared), artifact.clone(), digest);
        let began = std::time::Instant::now();
        match backend_for(&shared, pool_kind).prepare(&component).await {
            Ok(()) => {
                let took_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
                tracing::info!(%artifact, took_ms, "component prepared");
                shared.add_prepared(artifact);
            }
            Err(error) => tracing::warn!(%artifact, "could not prepare the component: {error}"),
        }
    });
}

/// `sha256:<hex>` (or bare hex) as a digest.
fn parse_digest(artifact: &str) -> Result<Digest, String> {
    let hex = artifact.strip_prefix("sha256:").unwrap_or(artifact);
    hex.parse().map_err(|e| format!("the assignment's artifact `{artifact}` is not a digest: {e}"))
}

/// The backend for runs of a pool of `kind`.
fn backend_for(shared: &Shared, kind: PoolKind) -> &dyn Backend {
    match kind {
        PoolKind::Wasm => &shared.wasm,
        PoolKind::Process => &shared.process,
        PoolKind::Container => &shared.container,
        PoolKind::Kubernetes => &shared.kubernetes,
    }
}

/// Runs one assignment to its end, pushing its events.
async fn execute(
    guard: RunGuard,
    assignment: Assignment,
    digest: Digest,
    cancel: CancellationToken,
) {
    let shared = Arc::clone(&guard.shared);
    let execution = guard.execution.clone();
    let reporter = Arc::new(OutboxReporter {
        outbox: Arc::clone(&shared.outbox),
        execution: execution.clone(),
        trace: ExecutionTrace::new(shared.tracer.clone(), execution.clone()),
    });
    let started = {
        let reporter = Arc::clone(&reporter);
        Box::new(move |infrastructure: Infrastructure| {
            tracing::info!(?infrastructure, "run started");
            reporter.outbox.push(&reporter.execution, AgentEventBody::Started { infrastructure });
        })
    };
    let asker = Arc::new(LinkAsker { shared: Arc::clone(&shared), execution: execution.clone() });
    let job = Job {
        component: ComponentSource::new(Arc::clone(&shared), assignment.artifact.clone(), digest),
        assignment,
        reporter: Arc::clone(&reporter) as _,
        subflows: asker.clone(),
        task_cache: asker,
        started,
        cancel,
    };
    let began = std::time::Instant::now();
    let ended = backend_for(&shared, job.assignment.pool_kind).execute(job).await;
    let body = match ended {
        Ended::Declined(reason) => {
            tracing::warn!(%reason, "declining the run");
            reporter.trace.ended(&shared.agent_id, "declined", Some(reason.clone()));
            AgentEventBody::Declined { reason }
        }
        Ended::Finished(mut outcome) => {
            if shared.runs.take_lost(&execution) {
                outcome = RunOutcome::Crashed {
                    message: "stopped: the agent heard nothing from the core for longer than its lease, so the run may be running elsewhere".to_owned(),
                };
            }
            let took = began.elapsed();
            let took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
            tracing::info!(outcome = outcome.name(), took_ms, "run finished");
            shared.metrics.run_duration.observe(took.as_secs_f64());
            let labels = OutcomeLabels { outcome: outcome.name().to_owned() };
            shared.metrics.runs_finished.get_or_create(&labels).inc();
            let error = match &outcome {
                RunOutcome::Completed { .. } => None,
                RunOutcome::Failed { message, .. } | RunOutcome::Crashed { message } => {
                    Some(message.clone())
                }
                other => Some(other.name().to_owned()),
            };
            reporter.trace.ended(&shared.agent_id, outcome.name(), error);
            AgentEventBody::Finished { outcome }
        }
    };
    shared.outbox.push(&execution, body);
    // The slot is given back and the run leaves `running` only now, after
    // its last event is in the outbox.
    drop(guard);
}

/// Passes a run's reports into the outbox as they happen (and its task
/// runs into its trace).
struct OutboxReporter {
    outbox: Arc<Outbox>,
    execution: Execution,
    trace: ExecutionTrace,
}

impl RunReporter for OutboxReporter {
    fn report(&self, report: RunReport) {
        self.trace.report(&report);
        self.outbox.push(&self.execution, AgentEventBody::Report { report });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_read_with_or_without_their_prefix() {
        let digest = Digest::of(b"x");
        assert_eq!(parse_digest(&format!("sha256:{digest}")).unwrap(), digest);
        assert_eq!(parse_digest(&digest.to_string()).unwrap(), digest);
        let error = parse_digest("sha256:nope").unwrap_err();
        assert!(error.contains("is not a digest"), "{error}");
    }
}
