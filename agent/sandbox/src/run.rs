//! One call into a flow: a fresh store and instance, the limits, and the
//! mapping of however the call ended onto exactly one outcome.

use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::limits::{MAX_MESSAGE_BYTES, MAX_OUTPUT_BYTES, over_limit};
use baton_proto::v1::{LogLevel, RunOutcome};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use crate::bindings::{FlowError, FlowInfo};
use crate::host::{FlowHost, Grants, LimitExceeded, RunLog, RunReporter};
use crate::http::{HttpHooks, HttpLimits};
use crate::limits::MemoryCap;
use crate::sandbox::{LoadError, LoadedFlow, RunState, Sandbox, one_line};
use crate::scratch::{GUEST_PATH, Scratch};
use crate::stdio::GuestOutput;
use crate::subflows::{NoSubflows, Subflows};
use crate::task_cache::{MemoryTaskCache, TaskCache};

/// Limits of `describe`, which must be quick and small.
pub(crate) const DESCRIBE_LIMITS: RunLimits =
    RunLimits { memory_bytes: 128 << 20, timeout: Duration::from_secs(2), scratch_bytes: 0 };

/// What one run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Linear memory the flow may grow to, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time from the start of instantiation.
    pub timeout: Duration,
    /// What the run's scratch directory may hold, in bytes.
    pub scratch_bytes: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            timeout: Duration::from_secs(3600),
            scratch_bytes: 256 << 20,
        }
    }
}

/// Everything one run needs besides the flow itself.
pub struct RunRequest {
    /// Parameters, already validated against the flow's schema.
    pub params: serde_json::Value,
    pub limits: RunLimits,
    pub grants: Grants,
    pub reporter: Arc<dyn RunReporter>,
    pub task_cache: Arc<dyn TaskCache>,
    /// Where its `run-deployment` calls go (refused with [`NoSubflows`]).
    pub subflows: Arc<dyn Subflows>,
    /// Cancelling it stops the flow wherever it is.
    pub cancel: CancellationToken,
    /// Environment variables the flow sees (none unless its pool gives
    /// some).
    pub env: Vec<(String, String)>,
}

impl RunRequest {
    /// A request with default limits, no grants, a private task cache, no
    /// subflows and no cancellation.
    pub fn new(params: serde_json::Value, reporter: Arc<dyn RunReporter>) -> Self {
        Self {
            params,
            limits: RunLimits::default(),
            grants: Grants::default(),
            reporter,
            task_cache: Arc::new(MemoryTaskCache::default()),
            subflows: Arc::new(NoSubflows::default()),
            cancel: CancellationToken::new(),
            env: Vec::new(),
        }
    }
}

enum Call {
    Describe,
    Run {
        params: String,
        env: Vec<(String, String)>,
        /// Held until the call ends, then removed.
        scratch: Option<Scratch>,
    },
}

enum Returned {
    Describe(FlowInfo),
    Run(Result<String, FlowError>),
}

/// How a call ended, before it is named as an outcome.
enum CallEnd {
    Returned(Returned),
    /// The flow sent the host something over a size limit.
    OverLimit {
        message: String,
    },
    Trapped {
        message: String,
    },
    OutOfMemory,
    TimedOut,
    Cancelled,
}

impl Sandbox {
    /// Runs the flow once; always returns, whatever the flow does.
    pub async fn run(&self, flow: &LoadedFlow, request: RunRequest) -> RunOutcome {
        let limits = RunLimits {
            memory_bytes: request.limits.memory_bytes.min(self.max_memory_bytes),
            ..request.limits
        };
        let log = Arc::new(RunLog::new(request.reporter, &request.grants));
        let scratch = match self.scratch.take(limits.scratch_bytes, Arc::clone(&log)) {
            Ok(scratch) => scratch,
            Err(error) => {
                return RunOutcome::Crashed {
                    message: format!(
                        "making the run's scratch directory under {}: {error}",
                        self.scratch.root().display()
                    ),
                };
            }
        };
        let mut host =
            FlowHost::new(Arc::clone(&log), request.task_cache, request.grants, request.subflows);
        host.set_scratch(scratch.path());
        let call = Call::Run {
            params: request.params.to_string(),
            env: request.env,
            scratch: Some(scratch),
        };
        let end = self.call(flow, call, limits, host, &request.cancel).await;
        log.finish();
        // Whatever text the flow chose or caused leaves the sandbox cut to
        // size and without granted secrets.
        match end {
            CallEnd::Returned(Returned::Run(Ok(output))) if output.len() > MAX_OUTPUT_BYTES => {
                RunOutcome::Failed {
                    message: over_limit("output", output.len(), MAX_OUTPUT_BYTES),
                    details: None,
                }
            }
            CallEnd::Returned(Returned::Run(Ok(output))) => match serde_json::from_str(&output) {
                Ok(output) => RunOutcome::Completed { output: log.redact_json(output) },
                Err(e) => RunOutcome::Crashed {
                    message: format!("the flow returned output that is not JSON: {e}"),
                },
            },
            CallEnd::Returned(Returned::Run(Err(error))) => RunOutcome::Failed {
                message: log.redact(&error.message),
                // Details are for diagnosis: over the message limit they are
                // left out rather than carried.
                details: error
                    .details
                    .filter(|d| d.len() <= MAX_MESSAGE_BYTES)
                    .and_then(|d| serde_json::from_str(&log.redact(&d)).ok()),
            },
            CallEnd::Returned(Returned::Describe(_)) => RunOutcome::Crashed {
                message: "internal error: describe answered a run".to_owned(),
            },
            CallEnd::OverLimit { message } => RunOutcome::Failed { message, details: None },
            CallEnd::Trapped { message } => RunOutcome::Crashed { message: log.redact(&message) },
            CallEnd::OutOfMemory => RunOutcome::OutOfMemory { limit_bytes: limits.memory_bytes },
            CallEnd::TimedOut => RunOutcome::TimedOut {
                limit_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
            },
            CallEnd::Cancelled => RunOutcome::Cancelled,
        }
    }

    pub(crate) async fn call_describe(&self, flow: &LoadedFlow) -> Result<FlowInfo, LoadError> {
        let grants = Grants::default();
        let log = Arc::new(RunLog::new(Arc::new(crate::ReportCollector::default()), &grants));
        let no_subflows = Arc::new(NoSubflows("describe may not start runs".to_owned()));
        let host = FlowHost::new(log, Arc::new(MemoryTaskCache::default()), grants, no_subflows);
        let cancel = CancellationToken::new();
        match self.call(flow, Call::Describe, DESCRIBE_LIMITS, host, &cancel).await {
            CallEnd::Returned(Returned::Describe(info)) => Ok(info),
            CallEnd::Returned(Returned::Run(_)) => {
                Err(LoadError::NotAFlow("internal error: run answered describe".to_owned()))
            }
            CallEnd::Trapped { message } | CallEnd::OverLimit { message } => {
                Err(LoadError::NotAFlow(format!("its `describe` export failed: {message}")))
            }
            CallEnd::OutOfMemory => Err(LoadError::NotAFlow(format!(
                "its `describe` export needs more than {} MiB of memory",
                DESCRIBE_LIMITS.memory_bytes >> 20
            ))),
            CallEnd::TimedOut | CallEnd::Cancelled => Err(LoadError::NotAFlow(format!(
                "its `describe` export did not return within {:?}",
                DESCRIBE_LIMITS.timeout
            ))),
        }
    }

    async fn call(
        &self,
        flow: &LoadedFlow,
        mut call: Call,
        limits: RunLimits,
        host: FlowHost,
        cancel: &CancellationToken,
    ) -> CallEnd {
        let deadline = Instant::now() + limits.timeout;
        // Wait for a pooled instance slot, still honouring the deadline and
        // cancellation.
        let _slot = tokio::select! {
            slot = self.slots.acquire() => match slot {
                Ok(slot) => slot,
                Err(_) => return CallEnd::Trapped { message: "the sandbox is shutting down".to_owned() },
            },
            () = tokio::time::sleep_until(deadline) => return CallEnd::TimedOut,
            () = cancel.cancelled() => return CallEnd::Cancelled,
        };

        let stdout = GuestOutput::new(Arc::clone(host.log()), LogLevel::Info);
        let stderr = GuestOutput::new(Arc::clone(host.log()), LogLevel::Warn);
        // Nothing is granted but the run's scratch directory: no other
        // files, no sockets, no arguments, and no environment but what the
        // run's pool gives.
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        if let Call::Run { env, scratch, .. } = &call {
            wasi.envs(env);
            let opened = scratch
                .as_ref()
                .map(|dir| wasi.preopened_dir(dir.path(), GUEST_PATH, FsPerms::ReadWrite));
            if let Some(Err(error)) = opened {
                return CallEnd::Trapped {
                    message: format!("opening the run's scratch directory: {error:#}"),
                };
            }
        }
        let scratch = match &mut call {
            Call::Run { scratch, .. } => scratch.take(),
            Call::Describe => None,
        };
        let wasi = wasi.build();
        let http_hooks = HttpHooks::new(
            host.outgoing_hosts().clone(),
            HttpLimits::default(),
            Arc::clone(host.log()),
        );
        let state = RunState {
            wasi,
            table: ResourceTable::new(),
            cap: MemoryCap::new(limits.memory_bytes),
            host,
            http: WasiHttpCtx::new(),
            http_hooks,
            scratch,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.cap);
        // Yield to the executor every epoch tick, so that the deadline and
        // cancellation below are noticed however busy the guest is.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));

        let result = {
            let execution = async {
                let instance = flow.pre.instantiate_async(&mut store).await?;
                let guest = instance.baton_flow_flow();
                Ok::<_, wasmtime::Error>(match call {
                    Call::Describe => Returned::Describe(guest.call_describe(&mut store).await?),
                    Call::Run { params, .. } => {
                        Returned::Run(guest.call_run(&mut store, &params).await?)
                    }
                })
            };
            tokio::select! {
                result = execution => Some(result),
                () = tokio::time::sleep_until(deadline) => None,
                () = cancel.cancelled() => None,
            }
        };

        stdout.finish();
        stderr.finish();
        let state = store.data();
        match result {
            Some(Ok(returned)) => CallEnd::Returned(returned),
            Some(Err(_)) if state.cap.exceeded() => CallEnd::OutOfMemory,
            Some(Err(error)) => match error.downcast_ref::<LimitExceeded>() {
                Some(LimitExceeded(message)) => CallEnd::OverLimit { message: message.clone() },
                None => CallEnd::Trapped { message: trap_message(&error, &stderr.tail()) },
            },
            None if cancel.is_cancelled() => CallEnd::Cancelled,
            None => CallEnd::TimedOut,
        }
    }
}

/// Names a trap for people, with the guest's panic message when it printed one.
fn trap_message(error: &wasmtime::Error, stderr: &str) -> String {
    let what = match error.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => {
            "the flow trapped: stack overflow (too deep a recursion?)".to_owned()
        }
        // A stack kept in linear memory (Rust, C) that overflows runs off
        // the start of memory: wasmtime sees only the bad access.
        Some(Trap::MemoryOutOfBounds) => {
            format!("the flow trapped: {}", Trap::MemoryOutOfBounds)
                + " (a stack overflow, if the flow keeps its stack in memory, or a bad pointer)"
        }
        Some(trap) => format!("the flow trapped: {trap}"),
        None => format!("the flow crashed: {}", one_line(error)),
    };
    match panic_message(stderr) {
        Some(panic) => format!("{what}; {panic}"),
        None => what,
    }
}

/// Extracts `panicked at FILE:LINE:COL: MESSAGE` from a Rust guest's stderr.
fn panic_message(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines();
    let header = lines.find(|l| l.contains("panicked at"))?;
    let location =
        header.split("panicked at").nth(1).unwrap_or_default().trim().trim_end_matches(':');
    let message: Vec<&str> =
        lines.take_while(|l| !l.starts_with("note: ")).map(str::trim).collect();
    Some(format!("panicked at {location}: {}", message.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_panic_output_becomes_one_line() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:11:5:\nthis flow panics on purpose\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("panicked at src/lib.rs:11:5: this flow panics on purpose")
        );
        assert_eq!(panic_message("memory allocation of 8 bytes failed"), None);
    }
}
