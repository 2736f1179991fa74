//! The `container` backend: each run in a container of its own, created
//! from the job's image through the Docker Engine API (Docker's or
//! Podman's), running `baton flow exec` with the same sandbox inside. The
//! runner's job goes in on the attached stdin and its messages come back on
//! stdout, so logs stream while the run runs; the container is removed
//! after every run, and a reaper removes what an agent killed mid-run left.

pub mod engine;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use baton_proto::v1::link::Execution;
use baton_proto::v1::{DEFAULT_SCRATCH_MIB, Infrastructure, PoolKind, RunOutcome};
use bollard::Docker;
use bollard::container::{AttachContainerResults, LogOutput};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions, ListContainersOptions,
    RemoveContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use self::engine::not_found;
use super::labels::{AGENT_ID, ATTEMPT, BATON, MANAGED_BY, RUN_ID};
use super::{Backend, Ended, Job, SCRATCH_MOUNT};
use crate::fetch::ComponentSource;
use crate::runner::{self, RunnerJob, RunnerStdin, Staging, StderrTail};

/// Where the agent's staged components and precompiled artifacts appear
/// inside a container (read-only).
const COMPONENTS_MOUNT: &str = "/baton/components";
const CACHE_MOUNT: &str = "/baton/cache";
/// How long past its own time limit a container may go on before it is
/// killed (the sandbox in it stops the flow at the limit itself).
const DEADLINE_GRACE: Duration = Duration::from_secs(10);
/// How long a container may take to exit once its runner has said how the
/// run ended.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// Exit status of a process killed by SIGKILL: with a memory limit and no
/// kill of ours, the kernel's OOM killer (Podman never sets `OOMKilled`).
const KILLED: i64 = 128 + 9;

pub(crate) struct Container {
    /// Where components are staged on the agent's machine (mounted into
    /// every container).
    staging: Arc<Staging>,
    agent_id: String,
    /// The agent's engine (`--docker-host`, `DOCKER_HOST`, a usual socket),
    /// or why there is none.
    host: Result<String, String>,
    /// Engines connected so far, by address (a pool may name its own).
    engines: tokio::sync::Mutex<HashMap<String, Docker>>,
}

/// A container pool's job variables, as its base job template names them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Variables {
    image: Option<String>,
    env: BTreeMap<String, String>,
    command: Option<Vec<String>>,
    cpu: Option<f64>,
    memory_mib: Option<u64>,
    network_mode: Option<String>,
    volumes: Vec<String>,
    labels: BTreeMap<String, String>,
    user: Option<String>,
    stop_grace_seconds: Option<u64>,
    pull_policy: Option<String>,
    engine_socket: Option<String>,
    scratch_mib: Option<u64>,
}

impl Container {
    pub(crate) fn new(staging: Arc<Staging>, agent_id: String, docker_host: Option<&str>) -> Self {
        let host = engine::resolve_host(docker_host).map_err(|error| error.to_string());
        Self { staging, agent_id, host, engines: tokio::sync::Mutex::default() }
    }

    /// The engine at `host`, connected once.
    async fn engine(&self, host: &str) -> Result<Docker, String> {
        let mut engines = self.engines.lock().await;
        if let Some(docker) = engines.get(host) {
            return Ok(docker.clone());
        }
        let docker = engine::connect(host).await.map_err(|error| error.to_string())?;
        engines.insert(host.to_owned(), docker.clone());
        Ok(docker)
    }

    async fn run(&self, job: Job) -> Ended {
        let crashed = |message: String| Ended::Finished(RunOutcome::Crashed { message });
        let variables: Variables = match serde_json::from_value(serde_json::Value::Object(
            job.assignment.job_variables.clone(),
        )) {
            Ok(variables) => variables,
            Err(error) => return crashed(format!("the run's container job variables: {error}")),
        };
        let staged = tokio::select! {
            staged = self.staging.stage(&job.component) => staged,
            () = job.cancel.cancelled() => return Ended::Finished(RunOutcome::Cancelled),
        };
        if let Err(reason) = staged {
            return Ended::Declined(reason);
        }
        let host = match variables.engine_socket.clone().map_or_else(|| self.host.clone(), Ok) {
            Ok(host) => host,
            Err(reason) => return crashed(reason),
        };
        let docker = match self.engine(&host).await {
            Ok(docker) => docker,
            Err(reason) => return crashed(reason),
        };
        let image = variables.image.clone().unwrap_or_else(|| engine::RUNNER_IMAGE.to_owned());
        if let Err(reason) = ensure_image(&docker, &image, variables.pull_policy.as_deref()).await {
            return crashed(reason);
        }
        let execution =
            Execution { run_id: job.assignment.run_id.clone(), attempt: job.assignment.attempt };
        let body = self.container_body(&execution, &image, &variables);
        let name = format!("baton-{}-{}", execution.run_id, execution.attempt);
        let options =
            CreateContainerOptions { name: Some(name), ..CreateContainerOptions::default() };
        let id = match docker.create_container(Some(options), body).await {
            Ok(created) => created.id,
            Err(error) => {
                return crashed(format!(
                    "creating the run's container from {image} on {host}: {error}"
                ));
            }
        };
        let outcome = self.supervise(&docker, &id, &host, &variables, job).await;
        // Torn down whatever happened.
        remove(&docker, &id).await;
        Ended::Finished(outcome)
    }

    fn container_body(
        &self,
        execution: &Execution,
        image: &str,
        variables: &Variables,
    ) -> ContainerCreateBody {
        let mut labels: HashMap<String, String> = variables.labels.clone().into_iter().collect();
        labels.insert(MANAGED_BY.to_owned(), BATON.to_owned());
        labels.insert(RUN_ID.to_owned(), execution.run_id.clone());
        labels.insert(ATTEMPT.to_owned(), execution.attempt.to_string());
        labels.insert(AGENT_ID.to_owned(), self.agent_id.clone());
        let mut binds = vec![
            format!("{}:{COMPONENTS_MOUNT}:ro", self.staging.components.display()),
            format!("{}:{CACHE_MOUNT}:ro", self.staging.cache.display()),
        ];
        binds.extend(variables.volumes.iter().cloned());
        let memory =
            variables.memory_mib.and_then(|mib| i64::try_from(mib.saturating_mul(1 << 20)).ok());
        ContainerCreateBody {
            image: Some(image.to_owned()),
            // The command replaces the image's entrypoint and command: its
            // program is the entrypoint (Podman takes an empty entrypoint
            // as none given, and would keep the image's).
            entrypoint: variables.command.as_ref().map(|c| c.iter().take(1).cloned().collect()),
            cmd: variables.command.as_ref().map(|c| c.iter().skip(1).cloned().collect()),
            env: Some(variables.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            user: variables.user.clone(),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(true),
            stdin_once: Some(true),
            host_config: Some(HostConfig {
                memory,
                // No swap: the limit is the limit.
                memory_swap: memory,
                nano_cpus: variables.cpu.map(|cpus| (cpus * 1e9) as i64),
                network_mode: Some(
                    variables.network_mode.clone().unwrap_or_else(|| "none".to_owned()),
                ),
                binds: Some(binds),
                // Writable by whatever user the container runs as.
                tmpfs: Some(HashMap::from([(
                    SCRATCH_MOUNT.to_owned(),
                    format!(
                        "rw,size={},mode=1777",
                        variables
                            .scratch_mib
                            .unwrap_or(DEFAULT_SCRATCH_MIB)
                            .saturating_mul(1 << 20)
                    ),
                )])),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        }
    }

    /// Starts the container, feeds its runner the job and follows it to its
    /// end; names that end.
    async fn supervise(
        &self,
        docker: &Docker,
        id: &str,
        host: &str,
        variables: &Variables,
        job: Job,
    ) -> RunOutcome {
        let crashed = |message: String| RunOutcome::Crashed { message };
        let attach = AttachContainerOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            stream: true,
            ..AttachContainerOptions::default()
        };
        let AttachContainerResults { output, mut input } =
            match docker.attach_container(id, Some(attach)).await {
                Ok(attached) => attached,
                Err(error) => {
                    return crashed(format!("attaching to the run's container {id}: {error}"));
                }
            };
        let (stdout_in, stdout) = tokio::io::duplex(1 << 16);
        let (stderr_in, stderr) = tokio::io::duplex(1 << 16);
        let demux = tokio::spawn(demultiplex(output, stdout_in, stderr_in));
        let tail = Arc::new(Mutex::new(StderrTail::default()));
        let stderr_done = tokio::spawn(StderrTail::follow(Arc::clone(&tail), stderr));
        if let Err(error) = docker.start_container(id, None).await {
            demux.abort();
            return crashed(format!("starting the run's container {id}: {error}"));
        }
        let memory_limit = variables.memory_mib.map(|mib| mib.saturating_mul(1 << 20));
        // The container is the limit: without one, the sandbox's largest.
        let memory_bytes = memory_limit
            .or(job.assignment.memory_bytes)
            .unwrap_or(baton_proto::v1::MAX_SANDBOX_MEMORY_MIB << 20);
        let runner_job = RunnerJob {
            components: PathBuf::from(COMPONENTS_MOUNT),
            cache: PathBuf::from(CACHE_MOUNT),
            env: variables.env.clone(),
            scratch_dir: Some(PathBuf::from(SCRATCH_MOUNT)),
            ..RunnerJob::for_assignment(&job.assignment, job.component.digest(), memory_bytes)
        };
        let timeout_ms = runner_job.timeout_ms;
        if let Err(reason) = runner::send_job(&mut input, &runner_job).await {
            return crashed(format!("giving the run's container {id} its job: {reason}"));
        }
        let input = RunnerStdin::start(input);
        let infrastructure = Infrastructure {
            kind: PoolKind::Container,
            id: Some(id.chars().take(12).collect()),
            host: Some(host.to_owned()),
        };
        let follow = runner::follow_stdout(
            stdout,
            runner::Follower::new(job.reporter.as_ref(), job.started, infrastructure)
                .relaying_questions(&job.subflows, &job.task_cache, &input),
        );
        let grace = variables.stop_grace_seconds.unwrap_or(10);
        let deadline = Duration::from_millis(timeout_ms).saturating_add(DEADLINE_GRACE);
        let said = tokio::select! {
            said = follow => said,
            () = job.cancel.cancelled() => {
                // The runner stops at stdin's end or SIGTERM; the engine
                // kills it after the grace period.
                input.close().await;
                stop(docker, id, grace).await;
                return RunOutcome::Cancelled;
            }
            () = tokio::time::sleep(deadline) => {
                stop(docker, id, 0).await;
                return RunOutcome::TimedOut { limit_ms: timeout_ms };
            }
        };
        input.close().await;
        let exited = tokio::time::timeout(EXIT_GRACE, docker.wait_container(id, None).next()).await;
        if exited.is_err() {
            stop(docker, id, 0).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), stderr_done).await;
        demux.abort();
        match said {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                let tail = tail.lock().unwrap_or_else(PoisonError::into_inner).text();
                self.died(docker, id, memory_limit, &tail).await
            }
            Err(reason) => crashed(reason),
        }
    }

    /// The outcome of a container that ended without its runner saying how
    /// the run did.
    async fn died(
        &self,
        docker: &Docker,
        id: &str,
        memory_limit: Option<u64>,
        tail: &str,
    ) -> RunOutcome {
        let state = match docker.inspect_container(id, None).await {
            Ok(inspected) => inspected.state.unwrap_or_default(),
            Err(error) if not_found(&error) => {
                return RunOutcome::Crashed {
                    message: format!(
                        "the run's container {id} vanished: it was removed outside Baton"
                    ),
                };
            }
            Err(error) => {
                return RunOutcome::Crashed {
                    message: format!("inspecting the run's container {id}: {error}"),
                };
            }
        };
        let code = state.exit_code.unwrap_or(-1);
        if let Some(limit) =
            memory_limit.filter(|_| state.oom_killed == Some(true) || code == KILLED)
        {
            return RunOutcome::OutOfMemory { limit_bytes: limit };
        }
        let said = if tail.is_empty() { String::new() } else { format!(": {tail}") };
        // Killed with no memory limit and no stop of ours: from outside
        // (`podman rm -f`, `docker kill`).
        let how = if code == KILLED {
            format!("was killed (exit status {code})")
        } else {
            format!("exited with status {code}")
        };
        RunOutcome::Crashed {
            message: format!("the run's container {id} {how} before its run ended{said}"),
        }
    }

    /// Removes this agent's containers whose execution is not `running`
    /// here: what an agent killed mid-run left behind, in its own engine
    /// and in those its pools named since it started.
    async fn reap_containers(&self, running: &[Execution]) {
        let mut hosts: Vec<String> = self.engines.lock().await.keys().cloned().collect();
        if let Ok(host) = &self.host
            && !hosts.contains(host)
        {
            hosts.push(host.clone());
        }
        for host in hosts {
            match self.engine(&host).await {
                Ok(docker) => self.reap_in(&docker, &host, running).await,
                Err(reason) => tracing::debug!(%reason, "no container engine to reap"),
            }
        }
    }

    async fn reap_in(&self, docker: &Docker, host: &str, running: &[Execution]) {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("{MANAGED_BY}={BATON}"), format!("{AGENT_ID}={}", self.agent_id)],
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..ListContainersOptions::default()
        };
        let listed = match docker.list_containers(Some(options)).await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(%host, "listing this agent's containers to reap: {error}");
                return;
            }
        };
        for container in listed {
            let labels = container.labels.unwrap_or_default();
            let execution = Execution {
                run_id: labels.get(RUN_ID).cloned().unwrap_or_default(),
                attempt: labels.get(ATTEMPT).and_then(|a| a.parse().ok()).unwrap_or_default(),
            };
            if running.contains(&execution) {
                continue;
            }
            if let Some(id) = container.id {
                tracing::info!(run_id = %execution.run_id, attempt = execution.attempt, container = %id, %host, "reaping a container left by an earlier run");
                remove(docker, &id).await;
            }
        }
    }
}

/// Makes sure `image` is in the engine, pulling it as the policy says.
async fn ensure_image(docker: &Docker, image: &str, policy: Option<&str>) -> Result<(), String> {
    let present = match docker.inspect_image(image).await {
        Ok(_) => true,
        Err(error) if not_found(&error) => false,
        Err(error) => return Err(format!("looking for the image {image}: {error}")),
    };
    match policy.unwrap_or("missing") {
        "never" if !present => Err(format!(
            "the image {image} is not in the container engine, and pull_policy is `never`"
        )),
        "always" => pull(docker, image).await,
        _ if present => Ok(()),
        _ => pull(docker, image).await,
    }
}

async fn pull(docker: &Docker, image: &str) -> Result<(), String> {
    let options =
        CreateImageOptions { from_image: Some(image.to_owned()), ..CreateImageOptions::default() };
    let mut pulling = docker.create_image(Some(options), None, None);
    while let Some(step) = pulling.next().await {
        let step = step.map_err(|error| format!("pulling the image {image}: {error}"))?;
        if let Some(error) = step.error_detail.and_then(|detail| detail.message) {
            return Err(format!("pulling the image {image}: {error}"));
        }
    }
    Ok(())
}

/// Splits the attached stream into the runner's stdout and stderr.
async fn demultiplex(
    mut output: Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    mut stdout: tokio::io::DuplexStream,
    mut stderr: tokio::io::DuplexStream,
) {
    while let Some(Ok(chunk)) = output.next().await {
        let written = match chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                stdout.write_all(&message).await
            }
            LogOutput::StdErr { message } => stderr.write_all(&message).await,
            LogOutput::StdIn { .. } => Ok(()),
        };
        if written.is_err() {
            return;
        }
    }
}

/// Stops a container: SIGTERM, then SIGKILL after `grace` seconds.
async fn stop(docker: &Docker, id: &str, grace: u64) {
    let options = StopContainerOptions {
        t: Some(i32::try_from(grace).unwrap_or(i32::MAX)),
        ..StopContainerOptions::default()
    };
    if let Err(error) = docker.stop_container(id, Some(options)).await
        && !not_found(&error)
    {
        tracing::warn!(container = %id, "stopping a run's container: {error}");
    }
}

/// Removes a container, running or not; gone already is fine.
async fn remove(docker: &Docker, id: &str) {
    let options =
        RemoveContainerOptions { force: true, v: true, ..RemoveContainerOptions::default() };
    if let Err(error) = docker.remove_container(id, Some(options)).await
        && !not_found(&error)
    {
        tracing::warn!(container = %id, "removing a run's container: {error}");
    }
}

impl Backend for Container {
    fn execute(&self, job: Job) -> Pin<Box<dyn Future<Output = Ended> + Send + '_>> {
        Box::pin(self.run(job))
    }

    fn prepare<'a>(
        &'a self,
        component: &'a ComponentSource,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(self.staging.stage(component))
    }

    fn reap<'a>(
        &'a self,
        running: &'a [Execution],
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.reap_containers(running))
    }
}
