//! The `kubernetes` backend: each run in a Job of its own, in the cluster
//! of the agent's in-cluster config or kubeconfig. The runner's job goes
//! in a Secret the pod mounts (`baton flow exec --job-file`); the pod
//! fetches the component from the core's API (it shares no files with the
//! agent), and its log, which the agent follows, carries the runner's
//! messages. The Job and its Secret are deleted after every run, and a
//! reaper deletes what an agent killed mid-run left.

mod manifest;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use baton_proto::v1::link::{Assignment, Execution};
use baton_proto::v1::{Infrastructure, PoolKind, RunOutcome};
use baton_sandbox::{CancellationToken, Digest, RunReporter};
use futures_util::StreamExt as _;
use k8s_openapi::api::batch::v1::Job as KubeJob;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams, WatchEvent, WatchParams};
use tokio::io::BufReader;
use tokio_util::compat::FuturesAsyncReadCompatExt as _;

use self::manifest::Variables;
use super::labels::{AGENT_ID, ATTEMPT, BATON, MANAGED_BY, RUN_ID};
use super::{Backend, Ended, Job, OnStarted, SCRATCH_MOUNT};
use crate::runner::{self, Follower, MAX_LINE_BYTES, RunnerJob, StderrTail};

/// How long past its own time limit a run's pod may go on before its Job
/// is deleted (the sandbox in it stops the flow at the limit itself).
const DEADLINE_GRACE: Duration = Duration::from_secs(10);
/// Seconds one watch of the run's pod lasts before it is made again.
const WATCH_SECONDS: u32 = 60;
/// How often a broken log stream of a running pod is resumed before the
/// run is given up as CRASHED.
const MAX_LOG_RESUMES: u32 = 30;
/// Waiting reasons of the runner's container that do not pass by waiting.
const CANNOT_START: [&str; 4] =
    ["CreateContainerConfigError", "CreateContainerError", "InvalidImageName", "ErrImageNeverPull"];

pub(crate) struct Kubernetes {
    agent_id: String,
    /// The cluster's client, once one could be made.
    client: tokio::sync::Mutex<Option<Client>>,
    /// Namespaces this agent's Jobs went to since it started (reaped
    /// besides the client's default one).
    namespaces: Mutex<BTreeSet<String>>,
}

/// One execution as this backend needs it: no component (the pod fetches
/// it), its digest.
struct Submission {
    assignment: Assignment,
    digest: Digest,
    reporter: Arc<dyn RunReporter>,
    started: OnStarted,
    cancel: CancellationToken,
}

/// The cluster objects of one run, and how it asked them to be run.
struct RunObjects {
    name: String,
    jobs: Api<KubeJob>,
    secrets: Api<Secret>,
    pods: Api<Pod>,
    variables: Variables,
    execution: Execution,
    /// The Job's wall-clock limit, which its pod's `DeadlineExceeded` means.
    active_deadline_seconds: Option<i64>,
}

impl Kubernetes {
    pub(crate) fn new(agent_id: String) -> Self {
        Self { agent_id, client: tokio::sync::Mutex::default(), namespaces: Mutex::default() }
    }

    /// The cluster's client: in-cluster config, else `KUBECONFIG` or
    /// `~/.kube/config`; made on first use and kept once it could be.
    async fn client(&self) -> Result<Client, String> {
        let mut client = self.client.lock().await;
        if let Some(client) = client.as_ref() {
            return Ok(client.clone());
        }
        let made = Client::try_default().await.map_err(|error| {
            format!("no Kubernetes cluster to run in (no in-cluster config or kubeconfig): {error}")
        })?;
        *client = Some(made.clone());
        Ok(made)
    }

    async fn submit(&self, submission: Submission) -> RunOutcome {
        let crashed = |message: String| RunOutcome::Crashed { message };
        let variables: Variables = match serde_json::from_value(serde_json::Value::Object(
            submission.assignment.job_variables.clone(),
        )) {
            Ok(variables) => variables,
            Err(error) => return crashed(format!("the run's kubernetes job variables: {error}")),
        };
        let Some(api_url) = variables.api_url.clone() else {
            return crashed(
                "a kubernetes pool's runs need the job variable `api_url`: the core's HTTP API \
                 as the Job's pod reaches it, where the runner fetches the flow's component"
                    .to_owned(),
            );
        };
        let client = match self.client().await {
            Ok(client) => client,
            Err(reason) => return crashed(reason),
        };
        let namespace = variables.namespace().to_owned();
        self.namespaces.lock().unwrap_or_else(PoisonError::into_inner).insert(namespace.clone());
        let execution = Execution {
            run_id: submission.assignment.run_id.clone(),
            attempt: submission.assignment.attempt,
        };
        // The pod's memory limit is the flow's cap too; without one, the
        // sandbox's largest.
        let memory_bytes = variables
            .memory_limit_bytes()
            .or(submission.assignment.memory_bytes)
            .unwrap_or(baton_proto::v1::MAX_SANDBOX_MEMORY_MIB << 20);
        let runner_job = RunnerJob {
            components: PathBuf::from(manifest::CACHE_MOUNT),
            cache: PathBuf::from(manifest::CACHE_MOUNT),
            env: variables.env.clone(),
            scratch_dir: Some(PathBuf::from(SCRATCH_MOUNT)),
            artifact_url: Some(format!(
                "{}/api/artifacts/sha256:{}/content",
                api_url.trim_end_matches('/'),
                submission.digest
            )),
            run_url: Some(format!(
                "{}/api/runs/{}",
                api_url.trim_end_matches('/'),
                submission.assignment.run_id
            )),
            execution_key: submission.assignment.execution_key.clone(),
            ..RunnerJob::for_assignment(&submission.assignment, &submission.digest, memory_bytes)
        };
        let job_json = match serde_json::to_vec(&runner_job) {
            Ok(json) => json,
            Err(error) => return crashed(format!("writing the runner's job: {error}")),
        };
        let run_time = Duration::from_millis(runner_job.timeout_ms).saturating_add(DEADLINE_GRACE);
        let deadline_seconds = run_time.as_secs().saturating_add(variables.pod_start_seconds());
        let secret = manifest::job_secret(&execution, &self.agent_id, &namespace, &job_json);
        let job = manifest::job(
            &execution,
            &self.agent_id,
            &variables,
            i64::try_from(deadline_seconds).unwrap_or(i64::MAX),
        );
        let objects = RunObjects {
            name: manifest::object_name(&execution),
            jobs: Api::namespaced(client.clone(), &namespace),
            secrets: Api::namespaced(client.clone(), &namespace),
            pods: Api::namespaced(client, &namespace),
            // What the Job was given, the variables' or the default.
            active_deadline_seconds: job
                .spec
                .as_ref()
                .and_then(|spec| spec.active_deadline_seconds),
            variables,
            execution,
        };
        if let Err(error) = objects.secrets.create(&PostParams::default(), &secret).await {
            return crashed(format!(
                "creating the run's Secret {} in namespace {namespace}: {error}",
                objects.name
            ));
        }
        if let Err(error) = objects.jobs.create(&PostParams::default(), &job).await {
            delete(&objects.secrets, &objects.name, &DeleteParams::default()).await;
            return crashed(format!(
                "creating the run's Job {} in namespace {namespace}: {error}",
                objects.name
            ));
        }
        let outcome = objects.supervise(submission, run_time, memory_bytes).await;
        // Torn down whatever happened; the pod gets its grace period.
        let grace = u32::try_from(objects.variables.stop_grace_seconds()).unwrap_or(u32::MAX);
        delete(&objects.jobs, &objects.name, &DeleteParams::foreground().grace_period(grace)).await;
        delete(&objects.secrets, &objects.name, &DeleteParams::default()).await;
        outcome
    }

    /// Deletes this agent's Jobs and Secrets whose execution is not
    /// `running` here: what an agent killed mid-run left behind. Across
    /// the cluster if the agent may list there, else in the namespaces it
    /// knows.
    async fn reap_jobs(&self, running: &[Execution]) {
        let client = match self.client().await {
            Ok(client) => client,
            Err(reason) => {
                tracing::debug!(%reason, "no Kubernetes cluster to reap");
                return;
            }
        };
        let params = ListParams::default()
            .labels(&format!("{MANAGED_BY}={BATON},{AGENT_ID}={}", self.agent_id));
        let everywhere = Api::<KubeJob>::all(client.clone());
        let stale_jobs = match everywhere.list(&params).await {
            Ok(listed) => stale(listed.items, running),
            Err(error) => {
                tracing::debug!("listing this agent's Jobs in every namespace: {error}");
                let mut namespaces =
                    self.namespaces.lock().unwrap_or_else(PoisonError::into_inner).clone();
                namespaces.insert(client.default_namespace().to_owned());
                let mut found = Vec::new();
                for namespace in namespaces {
                    let jobs = Api::<KubeJob>::namespaced(client.clone(), &namespace);
                    match jobs.list(&params).await {
                        Ok(listed) => found.extend(stale(listed.items, running)),
                        Err(error) => tracing::warn!(
                            %namespace,
                            "listing this agent's Jobs to reap: {error}"
                        ),
                    }
                }
                found
            }
        };
        for (namespace, name) in stale_jobs {
            tracing::info!(%namespace, job = %name, "reaping a Job left by an earlier run");
            let jobs = Api::<KubeJob>::namespaced(client.clone(), &namespace);
            delete(&jobs, &name, &DeleteParams::foreground()).await;
            let secrets = Api::<Secret>::namespaced(client.clone(), &namespace);
            delete(&secrets, &name, &DeleteParams::default()).await;
        }
    }
}

/// The (namespace, name) of those of `objects` whose execution is not
/// `running`.
fn stale<K: kube::Resource>(objects: Vec<K>, running: &[Execution]) -> Vec<(String, String)> {
    objects
        .into_iter()
        .filter_map(|object| {
            let meta = object.meta();
            let labels = meta.labels.clone().unwrap_or_default();
            let execution = Execution {
                run_id: labels.get(RUN_ID).cloned().unwrap_or_default(),
                attempt: labels.get(ATTEMPT).and_then(|a| a.parse().ok()).unwrap_or_default(),
            };
            if running.contains(&execution) {
                return None;
            }
            Some((meta.namespace.clone().unwrap_or_default(), meta.name.clone()?))
        })
        .collect()
}

/// Deletes an object; gone already is fine.
async fn delete<K>(api: &Api<K>, name: &str, params: &DeleteParams)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if let Err(error) = api.delete(name, params).await
        && !not_found(&error)
    {
        tracing::warn!(object = %name, kind = %K::kind(&()), "deleting a run's object: {error}");
    }
}

fn not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

impl RunObjects {
    /// Waits for the run's pod, follows its log to the run's end, and
    /// names that end.
    async fn supervise(
        &self,
        submission: Submission,
        run_time: Duration,
        memory_bytes: u64,
    ) -> RunOutcome {
        let Submission { reporter, started, cancel, .. } = submission;
        let start_limit = Duration::from_secs(self.variables.pod_start_seconds());
        let pod = tokio::select! {
            pod = self.wait_for_pod(start_limit) => pod,
            () = cancel.cancelled() => return RunOutcome::Cancelled,
        };
        let pod = match pod {
            Ok(pod) => pod,
            Err(message) => return RunOutcome::Crashed { message },
        };
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let infrastructure = Infrastructure {
            kind: PoolKind::Kubernetes,
            id: Some(self.name.clone()),
            host: pod.spec.as_ref().and_then(|spec| spec.node_name.clone()),
        };
        let tail = Arc::new(Mutex::new(StderrTail::default()));
        let follower = Follower::new(reporter.as_ref(), started, infrastructure)
            .mixed_with_stderr(Arc::clone(&tail));
        let said = tokio::select! {
            said = self.follow_log(&pod_name, follower) => said,
            () = cancel.cancelled() => return RunOutcome::Cancelled,
            () = tokio::time::sleep(run_time) => {
                let limit_ms = u64::try_from(run_time.saturating_sub(DEADLINE_GRACE).as_millis())
                    .unwrap_or(u64::MAX);
                return RunOutcome::TimedOut { limit_ms };
            }
        };
        match said {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                let tail = tail.lock().unwrap_or_else(PoisonError::into_inner).text();
                self.died(&pod_name, memory_bytes, &tail).await
            }
            Err(message) => RunOutcome::Crashed { message },
        }
    }

    /// The run's pod once its runner has started (or ended), watched for at
    /// most `limit`; `Err` says why it will not start.
    async fn wait_for_pod(&self, limit: Duration) -> Result<Pod, String> {
        let deadline = tokio::time::Instant::now() + limit;
        let params = WatchParams::default()
            .labels(&manifest::execution_selector(&self.execution))
            .timeout(WATCH_SECONDS);
        let mut last = "no pod was created".to_owned();
        let did_not_start = |last: &str| {
            format!(
                "the run's pod (Job {}) did not start within {} s: {last}",
                self.name,
                limit.as_secs()
            )
        };
        loop {
            let watched = tokio::time::timeout_at(deadline, self.pods.watch(&params, "0")).await;
            let mut events = match watched {
                Err(_) => return Err(did_not_start(&last)),
                Ok(Ok(events)) => events.boxed(),
                Ok(Err(error)) => {
                    last = format!("watching it failed: {error}");
                    if tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_secs(1)))
                        .await
                        .is_err()
                    {
                        return Err(did_not_start(&last));
                    }
                    continue;
                }
            };
            loop {
                let event = match tokio::time::timeout_at(deadline, events.next()).await {
                    Err(_) => return Err(did_not_start(&last)),
                    Ok(None) => break,
                    Ok(Some(event)) => event,
                };
                match event {
                    Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod)) => {
                        match pod_start(&pod) {
                            PodStart::Started => return Ok(pod),
                            PodStart::Waiting(why) => last = why,
                            PodStart::Cannot(why) => {
                                return Err(format!(
                                    "the run's pod (Job {}) cannot start: {why}",
                                    self.name
                                ));
                            }
                        }
                    }
                    Ok(WatchEvent::Deleted(_)) => {
                        return Err(format!(
                            "the run's pod (Job {}) was deleted before it started",
                            self.name
                        ));
                    }
                    Ok(WatchEvent::Bookmark(_)) => {}
                    Ok(WatchEvent::Error(status)) => {
                        last = format!("watching it failed: {}", status.message);
                        break;
                    }
                    Err(error) => {
                        last = format!("watching it failed: {error}");
                        break;
                    }
                }
            }
        }
    }

    /// Follows the runner's log to its end, resuming a stream that breaks
    /// while the pod runs; the run's outcome if the runner said it.
    async fn follow_log(
        &self,
        pod_name: &str,
        mut follower: Follower<'_>,
    ) -> Result<Option<RunOutcome>, String> {
        let mut cursor = LogCursor::default();
        let mut resumes = 0;
        // Once the runner's container has ended, one last read without
        // following collects what a broken stream may have missed.
        let mut ended = false;
        loop {
            let params = LogParams {
                container: Some(manifest::RUNNER.to_owned()),
                follow: !ended,
                timestamps: true,
                since_time: cursor.since(),
                ..LogParams::default()
            };
            match self.pods.log_stream(pod_name, &params).await {
                Ok(stream) => {
                    cursor.restart();
                    let mut reader = BufReader::new(stream.compat());
                    // A line is the runner's longest and its timestamp.
                    while let Ok(Some(line)) =
                        runner::read_line(&mut reader, MAX_LINE_BYTES + 64).await
                    {
                        if let Some(line) = cursor.take(&line)
                            && let Some(outcome) = follower.take(line)?
                        {
                            return Ok(Some(outcome));
                        }
                    }
                }
                Err(error) if not_found(&error) => return Ok(None),
                Err(error) => tracing::debug!(pod = %pod_name, "following the run's log: {error}"),
            }
            if ended {
                return Ok(None);
            }
            match self.pods.get(pod_name).await {
                Ok(pod) if runner_state(&pod).is_some() || pod_ended(&pod) => ended = true,
                Err(error) if not_found(&error) => return Ok(None),
                _ => {
                    resumes += 1;
                    if resumes > MAX_LOG_RESUMES {
                        return Err(format!(
                            "the log of the run's pod {pod_name} broke off {MAX_LOG_RESUMES} times"
                        ));
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// The outcome of a pod whose runner ended without saying how the run
    /// did.
    async fn died(&self, pod_name: &str, memory_bytes: u64, tail: &str) -> RunOutcome {
        let crashed = |message: String| RunOutcome::Crashed { message };
        let said = if tail.is_empty() { String::new() } else { format!(": {tail}") };
        let pod = match self.pods.get(pod_name).await {
            Ok(pod) => pod,
            Err(error) if not_found(&error) => {
                return crashed(format!(
                    "the run's pod {pod_name} vanished: it was deleted outside Baton{said}"
                ));
            }
            Err(error) => return crashed(format!("reading the run's pod {pod_name}: {error}")),
        };
        let status = pod.status.clone().unwrap_or_default();
        if status.reason.as_deref() == Some("DeadlineExceeded") {
            let limit_ms = self
                .active_deadline_seconds
                .and_then(|seconds| u64::try_from(seconds).ok())
                .map_or(0, |seconds| seconds.saturating_mul(1000));
            return RunOutcome::TimedOut { limit_ms };
        }
        match runner_state(&pod) {
            Some(state) if state.reason.as_deref() == Some("OOMKilled") => {
                RunOutcome::OutOfMemory { limit_bytes: memory_bytes }
            }
            Some(state) => crashed(format!(
                "the run's pod {pod_name} exited with status {}{} before its run ended{said}",
                state.exit_code,
                state.reason.map(|reason| format!(" ({reason})")).unwrap_or_default()
            )),
            None => crashed(format!(
                "the run's pod {pod_name} stopped ({}) before its run ended{said}",
                [status.phase, status.reason, status.message]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ")
            )),
        }
    }
}

/// Where a pod is on its way to running the runner.
enum PodStart {
    /// The runner runs, or ran: its log can be read.
    Started,
    Waiting(String),
    /// It will not run without someone changing something.
    Cannot(String),
}

fn pod_start(pod: &Pod) -> PodStart {
    let status = pod.status.clone().unwrap_or_default();
    if matches!(status.phase.as_deref(), Some("Running" | "Succeeded" | "Failed")) {
        return PodStart::Started;
    }
    let waiting = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .find(|container| container.name == manifest::RUNNER)
        .and_then(|container| container.state?.waiting);
    if let Some(waiting) = waiting {
        let reason = waiting.reason.unwrap_or_default();
        let why = match waiting.message {
            Some(message) => format!("{reason}: {message}"),
            None => reason.clone(),
        };
        return if CANNOT_START.contains(&reason.as_str()) {
            PodStart::Cannot(why)
        } else {
            PodStart::Waiting(why)
        };
    }
    // Not scheduled yet: the scheduler says why.
    let unscheduled = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|condition| condition.type_ == "PodScheduled" && condition.status == "False");
    PodStart::Waiting(match unscheduled {
        Some(condition) => {
            format!("not scheduled: {}", condition.message.or(condition.reason).unwrap_or_default())
        }
        None => format!("the pod is {}", status.phase.unwrap_or_else(|| "Pending".to_owned())),
    })
}

/// Whether the pod is over, its runner having run or not.
fn pod_ended(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|status| status.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

/// How the runner's container ended, once it has.
fn runner_state(pod: &Pod) -> Option<ContainerStateTerminated> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|container| container.name == manifest::RUNNER)?
        .state
        .as_ref()?
        .terminated
        .clone()
}

/// Where in a pod's log the agent is, so that a resumed stream (which
/// starts at a whole second) skips the lines already taken. Each line
/// comes with its timestamp.
#[derive(Default)]
struct LogCursor {
    /// The timestamp of the last line taken, and how many lines had it.
    last: Option<Timestamp>,
    taken_at_last: usize,
    /// Lines with that timestamp seen in the current stream.
    seen_at_last: usize,
}

impl LogCursor {
    /// Where a resumed stream starts: the last line's second.
    fn since(&self) -> Option<Timestamp> {
        self.last.and_then(|last| Timestamp::from_second(last.as_second()).ok())
    }

    /// A new stream begins.
    fn restart(&mut self) {
        self.seen_at_last = 0;
    }

    /// The line without its timestamp, unless it was taken before.
    fn take<'l>(&mut self, line: &'l [u8]) -> Option<&'l [u8]> {
        let (stamp, rest) = match line.iter().position(|b| *b == b' ') {
            Some(space) => (line.get(..space)?, line.get(space + 1..)?),
            None => (line, &[][..]),
        };
        let Some(stamp) = std::str::from_utf8(stamp).ok().and_then(|s| s.parse::<Timestamp>().ok())
        else {
            return Some(line);
        };
        match self.last {
            Some(last) if stamp < last => None,
            Some(last) if stamp == last => {
                self.seen_at_last += 1;
                if self.seen_at_last <= self.taken_at_last {
                    return None;
                }
                self.taken_at_last += 1;
                Some(rest)
            }
            _ => {
                self.last = Some(stamp);
                self.taken_at_last = 1;
                self.seen_at_last = 1;
                Some(rest)
            }
        }
    }
}

impl Backend for Kubernetes {
    fn execute(&self, job: Job) -> Pin<Box<dyn Future<Output = Ended> + Send + '_>> {
        let submission = Submission {
            digest: *job.component.digest(),
            assignment: job.assignment,
            reporter: job.reporter,
            started: job.started,
            cancel: job.cancel,
        };
        Box::pin(async move { Ended::Finished(self.submit(submission).await) })
    }

    fn reap<'a>(
        &'a self,
        running: &'a [Execution],
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.reap_jobs(running))
    }
}
