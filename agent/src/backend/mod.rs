//! Execution backends: where a run's component executes. One trait, one
//! module per backend, none importing another; [`crate::runs`] hands each
//! assignment to a backend and knows nothing of how it executes. A new
//! backend is one module here and one arm where the agent picks it.

pub(crate) mod container;
pub(crate) mod kubernetes;
pub(crate) mod process;
pub(crate) mod wasm;

/// Labels on everything a backend creates outside the agent (containers,
/// Jobs, Secrets), by which it finds them again.
pub mod labels {
    pub const MANAGED_BY: &str = "io.baton.managed-by";
    pub const RUN_ID: &str = "io.baton.run-id";
    pub const ATTEMPT: &str = "io.baton.attempt";
    pub const AGENT_ID: &str = "io.baton.agent-id";
    /// The value of [`MANAGED_BY`].
    pub const BATON: &str = "baton";
}

/// Where a runner in a container or pod makes its runs' scratch
/// directories: a mount of the run's own, capped at its `scratch_mib` (the
/// image's root may be read-only or lack `/tmp`).
pub(crate) const SCRATCH_MOUNT: &str = "/baton/scratch";

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use baton_proto::v1::link::{Assignment, Execution};
use baton_proto::v1::{Infrastructure, RunOutcome};
use baton_sandbox::{CancellationToken, RunReporter, Subflows, TaskCache};

use crate::fetch::ComponentSource;

/// One execution of a run, as a backend gets it.
pub(crate) struct Job {
    /// What the core assigned: parameters, limits, grants.
    pub(crate) assignment: Assignment,
    /// Where its component comes from.
    pub(crate) component: ComponentSource,
    /// Where its log lines, tasks, events and progress go.
    pub(crate) reporter: Arc<dyn RunReporter>,
    /// Where the flow's subflow calls go: the core.
    pub(crate) subflows: Arc<dyn Subflows>,
    /// Where the flow's task cache is: the core's, for its deployment.
    pub(crate) task_cache: Arc<dyn TaskCache>,
    /// Called once, when the flow is about to run (`RUNNING`), with where.
    pub(crate) started: OnStarted,
    /// Cancelled when the run is cancelled, loses its lease, or the agent
    /// stops: the backend ends the execution and answers `Cancelled`.
    pub(crate) cancel: CancellationToken,
}

/// What tells the core a run started, and where.
pub(crate) type OnStarted = Box<dyn FnOnce(Infrastructure) + Send>;

/// How an execution ended.
pub(crate) enum Ended {
    /// It never started (its component could not be had, say): the core
    /// hands the run to another agent.
    Declined(String),
    /// It ran, to this outcome.
    Finished(RunOutcome),
}

/// Executes jobs. Implementations hold what they need across runs (an
/// engine, a client for a container engine); a job holds the rest.
pub(crate) trait Backend: Send + Sync {
    fn execute(&self, job: Job) -> Pin<Box<dyn Future<Output = Ended> + Send + '_>>;

    /// Makes `component` ready for its runs ahead of them (fetched,
    /// compiled), so that none waits for it; by default, nothing to do.
    fn prepare<'a>(
        &'a self,
        component: &'a ComponentSource,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        let _ = component;
        Box::pin(std::future::ready(Ok(())))
    }

    /// Removes what executions that are not `running` left behind (an
    /// agent killed mid-run leaves its containers); called when the agent
    /// starts and now and then after.
    fn reap<'a>(
        &'a self,
        running: &'a [Execution],
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        let _ = running;
        Box::pin(std::future::ready(()))
    }
}
