//! The `wasm` backend: the run in this agent's wasmtime sandbox, the
//! component compiled once and cached on disk.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::outgoing::OutgoingHosts;
use baton_proto::v1::{Infrastructure, RunOutcome, scratch_bytes};
use baton_sandbox::{CommandGrant, Grants, LoadedFlow, RunLimits, RunRequest, Sandbox};

use super::{Backend, Ended, Job};
use crate::fetch::ComponentSource;

pub(crate) struct Wasm {
    sandbox: Arc<Sandbox>,
}

impl Wasm {
    pub(crate) fn new(sandbox: Arc<Sandbox>) -> Self {
        Self { sandbox }
    }

    /// The compiled component: from the sandbox's cache, else fetched and
    /// compiled (which caches it on disk), once however many ask at once.
    async fn load(&self, component: &ComponentSource) -> Result<Arc<LoadedFlow>, String> {
        if let Some(flow) = self.sandbox.load_cached(component.digest()) {
            return Ok(flow);
        }
        let _turn = component.turn().await;
        if let Some(flow) = self.sandbox.load_cached(component.digest()) {
            return Ok(flow);
        }
        let bytes = component.fetch().await.map_err(|error| error.to_string())?;
        // Compiling takes tens to hundreds of milliseconds: not on the executor.
        let sandbox = Arc::clone(&self.sandbox);
        match tokio::task::spawn_blocking(move || sandbox.load(&bytes)).await {
            Ok(Ok(flow)) => Ok(flow),
            Ok(Err(error)) => Err(format!("loading the component: {error}")),
            Err(error) => Err(format!("loading the component: {error}")),
        }
    }

    async fn run(&self, job: Job) -> Ended {
        let flow = tokio::select! {
            loaded = self.load(&job.component) => match loaded {
                Ok(flow) => flow,
                Err(reason) => return Ended::Declined(reason),
            },
            () = job.cancel.cancelled() => return Ended::Finished(RunOutcome::Cancelled),
        };
        // Checked at deploy; an agent of another version could still differ.
        let outgoing_hosts = match OutgoingHosts::parse(&job.assignment.outgoing_hosts) {
            Ok(hosts) => hosts,
            Err(message) => return Ended::Finished(RunOutcome::Crashed { message }),
        };
        (job.started)(Infrastructure::sandbox());
        let assignment = job.assignment;
        let defaults = RunLimits::default();
        // The wasm pool's job variable; the sandbox caps it at its own limit.
        let memory_mib =
            assignment.job_variables.get("memory_mib").and_then(serde_json::Value::as_u64);
        let request = RunRequest {
            params: serde_json::Value::Object(assignment.parameters),
            limits: RunLimits {
                memory_bytes: memory_mib
                    .map(|mib| mib.saturating_mul(1 << 20))
                    .or(assignment.memory_bytes)
                    .unwrap_or(defaults.memory_bytes),
                timeout: assignment.timeout_ms.map_or(defaults.timeout, Duration::from_millis),
                scratch_bytes: scratch_bytes(&assignment.job_variables),
            },
            grants: Grants {
                variables: assignment.variables,
                secrets: assignment.secrets,
                outgoing_hosts,
                commands: CommandGrant::default(),
            },
            reporter: job.reporter,
            subflows: job.subflows,
            task_cache: job.task_cache,
            cancel: job.cancel,
            env: Vec::new(),
        };
        Ended::Finished(self.sandbox.run(&flow, request).await)
    }
}

impl Backend for Wasm {
    fn execute(&self, job: Job) -> Pin<Box<dyn Future<Output = Ended> + Send + '_>> {
        Box::pin(self.run(job))
    }

    fn prepare<'a>(
        &'a self,
        component: &'a ComponentSource,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async { self.load(component).await.map(drop) })
    }
}
