//! Running what the core assigns: a slot, the component (from the cache or
//! fetched from the core and checked against its digest), the sandbox run,
//! and the run's events into the outbox as they happen.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use baton_proto::v1::link::io::{IoError, read_frame, write_frame};
use baton_proto::v1::link::{
    AgentEventBody, Assignment, Execution, Fetch, FetchAnswer, MAX_FRAME_BYTES,
};
use baton_proto::v1::{RunOutcome, RunReport};
use baton_sandbox::{
    CancellationToken, Digest, Grants, LoadError, LoadedFlow, MemoryTaskCache, RunLimits,
    RunReporter, RunRequest,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument as _;

use crate::agent::Shared;
use crate::outbox::Outbox;

/// The largest component fetched from the core.
const MAX_COMPONENT_BYTES: u64 = 64 << 20;
/// How long fetching a component may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

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

/// `sha256:<hex>` (or bare hex) as a digest.
fn parse_digest(artifact: &str) -> Result<Digest, String> {
    let hex = artifact.strip_prefix("sha256:").unwrap_or(artifact);
    hex.parse().map_err(|e| format!("the assignment's artifact `{artifact}` is not a digest: {e}"))
}

/// Runs one assignment to its end, pushing its events.
async fn execute(
    guard: RunGuard,
    assignment: Assignment,
    digest: Digest,
    cancel: CancellationToken,
) {
    let shared = Arc::clone(&guard.shared);
    let outbox = &shared.outbox;
    let execution = guard.execution.clone();
    let flow = match shared.sandbox.load_cached(&digest) {
        Some(flow) => flow,
        None => {
            let fetched = tokio::select! {
                fetched = fetch_and_load(&shared, &assignment.artifact, digest) => fetched,
                () = cancel.cancelled() => {
                    outbox.push(&execution, AgentEventBody::Finished { outcome: RunOutcome::Cancelled });
                    return;
                }
            };
            match fetched {
                Ok(flow) => flow,
                Err(error) => {
                    let reason = match error {
                        FetchError::Missing { reason } => reason,
                        other => other.to_string(),
                    };
                    tracing::warn!(%reason, "declining the run: no component");
                    outbox.push(&execution, AgentEventBody::Declined { reason });
                    return;
                }
            }
        }
    };
    tracing::info!("run started");
    outbox.push(&execution, AgentEventBody::Started);
    let defaults = RunLimits::default();
    let request = RunRequest {
        params: serde_json::Value::Object(assignment.parameters),
        limits: RunLimits {
            memory_bytes: assignment.memory_bytes.unwrap_or(defaults.memory_bytes),
            timeout: assignment.timeout_ms.map_or(defaults.timeout, Duration::from_millis),
        },
        grants: Grants { variables: assignment.variables, secrets: assignment.secrets },
        reporter: Arc::new(OutboxReporter {
            outbox: Arc::clone(&shared.outbox),
            execution: execution.clone(),
        }),
        task_cache: Arc::new(MemoryTaskCache::default()),
        cancel,
    };
    let mut outcome = shared.sandbox.run(&flow, request).await;
    if shared.runs.take_lost(&execution) {
        outcome = RunOutcome::Crashed {
            message: "stopped: the agent heard nothing from the core for longer than its lease, so the run may be running elsewhere".to_owned(),
        };
    }
    tracing::info!(outcome = outcome.name(), "run finished");
    outbox.push(&execution, AgentEventBody::Finished { outcome });
    // The slot is given back and the run leaves `running` only now, after
    // its `Finished` is in the outbox.
    drop(guard);
}

/// Passes a run's reports into the outbox as they happen.
struct OutboxReporter {
    outbox: Arc<Outbox>,
    execution: Execution,
}

impl RunReporter for OutboxReporter {
    fn report(&self, report: RunReport) {
        self.outbox.push(&self.execution, AgentEventBody::Report { report });
    }
}

/// Why a component could not be had.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("the agent is not connected to the core to fetch the component")]
    NotConnected,
    #[error("fetching the component: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("fetching the component: {0}")]
    Frame(#[from] IoError),
    #[error("fetching the component: the core closed the stream without answering")]
    NoAnswer,
    #[error("{reason}")]
    Missing { reason: String },
    #[error("the component is {size} bytes, over the agent's limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("reading the component's bytes: {0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("fetching the component took over {0:?}")]
    TimedOut(Duration),
    #[error(
        "the component fetched for {expected} has digest sha256:{actual}: it was corrupted or replaced"
    )]
    DigestMismatch { expected: String, actual: Digest },
    #[error("loading the component: {0}")]
    Load(#[from] LoadError),
    #[error("loading the component: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Fetches the component from the core, checks its digest and loads it
/// (which also caches it on disk).
async fn fetch_and_load(
    shared: &Shared,
    artifact: &str,
    digest: Digest,
) -> Result<Arc<LoadedFlow>, FetchError> {
    let bytes = tokio::time::timeout(FETCH_TIMEOUT, fetch(shared, artifact))
        .await
        .map_err(|_| FetchError::TimedOut(FETCH_TIMEOUT))??;
    let actual = Digest::of(&bytes);
    if actual != digest {
        return Err(FetchError::DigestMismatch { expected: artifact.to_owned(), actual });
    }
    // Compiling takes tens to hundreds of milliseconds: not on the executor.
    let sandbox = Arc::clone(&shared.sandbox);
    Ok(tokio::task::spawn_blocking(move || sandbox.load(&bytes)).await??)
}

/// Asks the core for a component's bytes on a stream of its own.
async fn fetch(shared: &Shared, artifact: &str) -> Result<Vec<u8>, FetchError> {
    let connection = shared.connection().ok_or(FetchError::NotConnected)?;
    let (mut send, mut recv) = connection.open_bi().await?;
    write_frame(&mut send, &Fetch { digest: artifact.to_owned() }).await?;
    // Nothing more to say on this stream; if it is already gone, reading
    // the answer says why.
    let _ = send.finish();
    let answer = read_frame::<FetchAnswer, _>(&mut recv, MAX_FRAME_BYTES).await?;
    match answer.ok_or(FetchError::NoAnswer)? {
        FetchAnswer::Missing { reason } => Err(FetchError::Missing { reason }),
        FetchAnswer::Found { size } if size > MAX_COMPONENT_BYTES => {
            Err(FetchError::TooLarge { size, limit: MAX_COMPONENT_BYTES })
        }
        FetchAnswer::Found { size } => {
            let len = usize::try_from(size)
                .map_err(|_| FetchError::TooLarge { size, limit: MAX_COMPONENT_BYTES })?;
            let mut bytes = vec![0; len];
            recv.read_exact(&mut bytes).await?;
            Ok(bytes)
        }
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
