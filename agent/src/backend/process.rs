//! The `process` backend: each run in a `baton flow exec` child process of
//! its own, which runs the component in a sandbox there under the OS limits
//! the pool's job variables set. The child's death is the run's `CRASHED`,
//! never the agent's.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use baton_proto::v1::{Infrastructure, PoolKind, RunOutcome};
use baton_sandbox::RunLimits;
use serde::Deserialize;
use serde_json::Value;
use tokio::process::{Child, Command};

use super::{Backend, Ended, Job};
use crate::fetch::ComponentSource;
use crate::runner::{self, Rlimits, RunnerJob, RunnerStdin, Staging, StderrTail};

/// Memory a child needs besides its flow's: the runtime, the compiled
/// component, the host's buffers.
const RUNTIME_BYTES: u64 = 256 << 20;
/// How long a child may take to stop once its stdin is closed before it is
/// killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long past its own time limit a child may go on before it is killed
/// (the sandbox in it stops the flow at the limit itself).
const DEADLINE_GRACE: Duration = Duration::from_secs(10);
/// The environment variables a child keeps from the agent's; the rest (the
/// agent's own settings and credentials) are not the flow's.
const INHERITED_ENV: [&str; 4] = ["PATH", "HOME", "TMPDIR", "RUST_LOG"];

pub(crate) struct Process {
    /// Where components are staged for children.
    staging: Arc<Staging>,
    /// The `baton` binary the children run (none in an agent embedded in
    /// another program).
    exe: Option<PathBuf>,
}

/// The job variables of a process pool, as its base job template names
/// them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Variables {
    env: BTreeMap<String, String>,
    working_dir: Option<PathBuf>,
    memory_mib: Option<u64>,
    cpu_seconds: Option<u64>,
}

impl Variables {
    /// The pool's memory limit in bytes, if it sets one.
    fn memory_bytes(&self) -> Option<u64> {
        self.memory_mib.map(|mib| mib.saturating_mul(1 << 20))
    }
}

impl Process {
    pub(crate) fn new(staging: Arc<Staging>, exe: Option<PathBuf>) -> Self {
        Self { staging, exe }
    }

    async fn run(&self, job: Job) -> Ended {
        let Some(exe) = &self.exe else {
            return Ended::Finished(RunOutcome::Crashed {
                message: "this agent runs inside another program, without a `baton` binary to run a process pool's runs: start one with `baton agent start`".to_owned(),
            });
        };
        let staged = tokio::select! {
            staged = self.staging.stage(&job.component) => staged,
            () = job.cancel.cancelled() => return Ended::Finished(RunOutcome::Cancelled),
        };
        if let Err(reason) = staged {
            return Ended::Declined(reason);
        }
        let assignment = &job.assignment;
        let variables: Variables =
            match serde_json::from_value(Value::Object(assignment.job_variables.clone())) {
                Ok(variables) => variables,
                Err(error) => {
                    return Ended::Finished(RunOutcome::Crashed {
                        message: format!("the run's process job variables: {error}"),
                    });
                }
            };
        let memory_bytes = variables
            .memory_bytes()
            .or(assignment.memory_bytes)
            .unwrap_or(RunLimits::default().memory_bytes);
        let runner_job = RunnerJob {
            components: self.staging.components.clone(),
            cache: self.staging.cache.clone(),
            env: variables.env.clone(),
            rlimits: Rlimits {
                data_bytes: variables
                    .memory_bytes()
                    .map(|bytes| bytes.saturating_add(RUNTIME_BYTES)),
                cpu_seconds: variables.cpu_seconds,
            },
            ..RunnerJob::for_assignment(assignment, job.component.digest(), memory_bytes)
        };
        // A fresh working directory unless the pool names one; removed
        // with the run.
        let scratch = match &variables.working_dir {
            Some(_) => None,
            None => match tempfile::Builder::new().prefix("baton-run-").tempdir() {
                Ok(dir) => Some(dir),
                Err(error) => {
                    return Ended::Finished(RunOutcome::Crashed {
                        message: format!("creating the run's working directory: {error}"),
                    });
                }
            },
        };
        let working_dir = variables
            .working_dir
            .clone()
            .or_else(|| scratch.as_ref().map(|dir| dir.path().to_owned()))
            .unwrap_or_default();
        let mut command = Command::new(exe);
        command
            .args(["flow", "exec"])
            .current_dir(&working_dir)
            .env_clear()
            .envs(INHERITED_ENV.iter().filter_map(|name| Some((name, std::env::var_os(name)?))))
            .envs(&variables.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                return Ended::Finished(RunOutcome::Crashed {
                    message: format!(
                        "starting the run's process ({} in {}): {error}",
                        exe.display(),
                        working_dir.display()
                    ),
                });
            }
        };
        let limits = Limits {
            memory_bytes: variables.memory_bytes(),
            cpu_seconds: variables.cpu_seconds,
            timeout_ms: runner_job.timeout_ms,
        };
        let outcome = supervise(child, &runner_job, job, &limits).await;
        drop(scratch);
        Ended::Finished(outcome)
    }
}

/// The limits a child runs under, to name how it ended.
struct Limits {
    /// The pool's memory limit, if it sets one.
    memory_bytes: Option<u64>,
    cpu_seconds: Option<u64>,
    timeout_ms: u64,
}

/// Feeds the child its job, follows it to its end and names that end.
async fn supervise(
    mut child: Child,
    runner_job: &RunnerJob,
    job: Job,
    limits: &Limits,
) -> RunOutcome {
    let pid = child.id();
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return RunOutcome::Crashed { message: "the run's process has no stdio".to_owned() };
    };
    let tail = Arc::new(Mutex::new(StderrTail::default()));
    let stderr_done = tokio::spawn(StderrTail::follow(Arc::clone(&tail), stderr));
    // A child that dies at once is named below, from its exit.
    let _ = runner::send_job(&mut stdin, runner_job).await;
    let stdin = RunnerStdin::start(stdin);
    let infrastructure =
        Infrastructure { kind: PoolKind::Process, id: pid.map(|pid| pid.to_string()), host: None };
    let follow = runner::follow_stdout(
        stdout,
        runner::Follower::new(job.reporter.as_ref(), job.started, infrastructure)
            .relaying_questions(&job.subflows, &job.task_cache, &stdin),
    );
    let deadline = Duration::from_millis(limits.timeout_ms).saturating_add(DEADLINE_GRACE);
    let said = tokio::select! {
        said = follow => said,
        () = job.cancel.cancelled() => {
            // Closing stdin asks it to stop; it has a grace period.
            stdin.close().await;
            let _ = tokio::time::timeout(STOP_GRACE, child.wait()).await;
            let _ = child.kill().await;
            return RunOutcome::Cancelled;
        }
        () = tokio::time::sleep(deadline) => {
            let _ = child.kill().await;
            return RunOutcome::TimedOut { limit_ms: limits.timeout_ms };
        }
    };
    stdin.close().await;
    let status = match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(Ok(status)) => Some(status),
        Ok(Err(_)) | Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    // Its last words, for the message.
    let _ = tokio::time::timeout(Duration::from_secs(1), stderr_done).await;
    let tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
    match said {
        Ok(Some(outcome)) => outcome,
        Ok(None) => died(status, &tail, limits),
        Err(reason) => RunOutcome::Crashed { message: reason },
    }
}

/// The outcome of a child that ended without saying how its run did.
fn died(status: Option<ExitStatus>, tail: &StderrTail, limits: &Limits) -> RunOutcome {
    if let Some(limit) = limits.memory_bytes.filter(|_| tail.out_of_memory()) {
        return RunOutcome::OutOfMemory { limit_bytes: limit };
    }
    let how = match status.and_then(|s| s.signal()) {
        Some(signal) if signal == signals::XCPU => {
            let seconds = limits.cpu_seconds.unwrap_or_default();
            return RunOutcome::Crashed {
                message: format!(
                    "the run's process used its CPU-time limit of {seconds} s (cpu_seconds)"
                ),
            };
        }
        Some(signal) => format!("was killed by signal {signal} ({})", signals::name(signal)),
        None => match status.and_then(|s| s.code()) {
            Some(code) => format!("exited with status {code}"),
            None => "did not exit when its output ended, and was killed".to_owned(),
        },
    };
    let said = tail.text();
    let message = if said.is_empty() {
        format!("the run's process {how} before its run ended")
    } else {
        format!("the run's process {how} before its run ended: {said}")
    };
    RunOutcome::Crashed { message }
}

/// Signal numbers and names as Linux has them.
mod signals {
    pub(super) const XCPU: i32 = 24;

    pub(super) fn name(signal: i32) -> &'static str {
        match signal {
            1 => "SIGHUP",
            2 => "SIGINT",
            6 => "SIGABRT",
            7 => "SIGBUS",
            9 => "SIGKILL",
            11 => "SIGSEGV",
            15 => "SIGTERM",
            XCPU => "SIGXCPU",
            _ => "a signal",
        }
    }
}

impl Backend for Process {
    fn execute(&self, job: Job) -> Pin<Box<dyn Future<Output = Ended> + Send + '_>> {
        Box::pin(self.run(job))
    }

    fn prepare<'a>(
        &'a self,
        component: &'a ComponentSource,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(self.staging.stage(component))
    }
}
