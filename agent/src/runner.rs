//! Running a flow outside the agent's process: the protocol between a
//! backend that starts a *runner* (a child process, a container) and the
//! runner itself (`baton flow exec`), which runs the component in a
//! sandbox of its own, and both of their ends.
//!
//! The backend writes one JSON line, a [`RunnerJob`], to the runner's
//! stdin and keeps stdin open: its closing is the cancellation (as is
//! SIGTERM), so a runner whose agent died stops by itself. Where there is
//! no stdin to attach (a Kubernetes pod), the job is a file and SIGTERM
//! alone cancels. The runner answers with JSON lines of [`RunnerMessage`]
//! on stdout; its own diagnostics go to stderr. A flow's subflow calls go
//! out the same way ([`RunnerMessage::Child`]) and their answers come back
//! on stdin as [`RunnerInput`] lines after the job (not in a pod: there
//! the flow is told subflows are not available).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::link::{Assignment, MAX_FRAME_BYTES};
use baton_proto::v1::outgoing::OutgoingHosts;
use baton_proto::v1::{
    CacheAnswer, CacheOp, ChildAnswer, ChildOp, DEFAULT_SCRATCH_MIB, Infrastructure, RunOutcome,
    RunReport, scratch_bytes,
};
use baton_sandbox::{
    CacheAnswerFuture, CancellationToken, ChildAnswerFuture, CommandGrant, Digest, Grants,
    MemoryTaskCache, NoSubflows, RunLimits, RunReporter, RunRequest, Sandbox, SandboxConfig,
    Subflows, TaskCache,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::asking::ApiAsker;
use crate::backend::OnStarted;
use crate::fetch::ComponentSource;

/// The longest line either end reads: a report or an outcome fits a frame
/// to the core, and a job's parameters and grants fit one too.
pub(crate) const MAX_LINE_BYTES: usize = MAX_FRAME_BYTES as usize + 4096;

/// Stderr lines of a runner kept to explain its death.
const STDERR_TAIL_LINES: usize = 8;
/// The longest stderr line kept.
const MAX_STDERR_LINE_BYTES: usize = 2048;

/// What a runner is asked to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunnerJob {
    /// The component's sha256, hex.
    pub digest: String,
    /// Where `<digest>.wasm` is.
    pub components: PathBuf,
    /// Where the agent keeps precompiled components (same engine, same
    /// artifacts); a runner of another build compiles the wasm instead.
    pub cache: PathBuf,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub memory_bytes: u64,
    pub timeout_ms: u64,
    #[serde(default)]
    pub variables: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Option<String>>,
    /// Where the flow may send HTTP requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outgoing_hosts: Vec<String>,
    /// Native programs the flow may start here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// The flow's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// What the run's scratch directory may hold.
    #[serde(default = "default_scratch_bytes")]
    pub scratch_bytes: u64,
    /// Where the runner makes it (the system's temporary directory if
    /// unset): a writable mount in a container or pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_dir: Option<PathBuf>,
    /// OS limits the runner puts on its own process.
    #[serde(default)]
    pub rlimits: Rlimits,
    /// Where the runner fetches the component when it is in neither
    /// `components` nor `cache`: the core's `GET /api/artifacts/{digest}/content`,
    /// with the token in [`API_TOKEN_ENV`] if set (a pod shares no files
    /// with its agent).
    #[serde(default)]
    pub artifact_url: Option<String>,
    /// Where a runner with no stdin to hear answers on (a pod) asks the
    /// core what the flow asks (`{run_url}/children` for subflows,
    /// `{run_url}/task-cache`), with `execution_key`: the core's
    /// `/api/runs/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_key: Option<String>,
    /// The attempt of the run this is: the one `execution_key` is for.
    #[serde(default)]
    pub attempt: u32,
}

fn default_scratch_bytes() -> u64 {
    DEFAULT_SCRATCH_MIB << 20
}

/// The runner's environment variable holding the API token it fetches
/// the component with.
pub const API_TOKEN_ENV: &str = "BATON_API_TOKEN";

/// The largest component a runner fetches.
const MAX_FETCHED_COMPONENT_BYTES: usize = 512 << 20;

impl RunnerJob {
    /// The job of `assignment`'s run, whose component is `digest`, with a
    /// memory cap of `memory_bytes`; where the runner finds the component,
    /// its environment and its OS limits are the backend's to set.
    pub(crate) fn for_assignment(
        assignment: &Assignment,
        digest: &Digest,
        memory_bytes: u64,
    ) -> Self {
        let default_timeout = RunLimits::default().timeout;
        Self {
            digest: digest.to_string(),
            components: PathBuf::new(),
            cache: PathBuf::new(),
            params: assignment.parameters.clone(),
            memory_bytes,
            timeout_ms: assignment
                .timeout_ms
                .unwrap_or(u64::try_from(default_timeout.as_millis()).unwrap_or(u64::MAX)),
            variables: assignment.variables.clone(),
            secrets: assignment.secrets.clone(),
            outgoing_hosts: assignment.outgoing_hosts.clone(),
            commands: assignment.commands.clone(),
            env: BTreeMap::new(),
            scratch_bytes: scratch_bytes(&assignment.job_variables),
            scratch_dir: None,
            rlimits: Rlimits::default(),
            artifact_url: None,
            run_url: None,
            execution_key: None,
            attempt: assignment.attempt,
        }
    }
}

/// Limits a runner sets on itself before it loads anything.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rlimits {
    /// RLIMIT_DATA: its writable memory.
    pub data_bytes: Option<u64>,
    /// RLIMIT_CPU: its CPU time.
    pub cpu_seconds: Option<u64>,
}

/// What a runner says, one JSON line each.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunnerMessage {
    /// The flow is about to run.
    Started,
    Report {
        report: RunReport,
    },
    /// The run ended; nothing follows.
    Finished {
        outcome: RunOutcome,
    },
    /// The flow asks about its children (the agent asks the core); the
    /// answer comes back with the same `id`.
    Child {
        id: u64,
        op: ChildOp,
    },
    /// The flow asks its task cache (the agent asks the core); the answer
    /// comes back with the same `id`.
    Cache {
        id: u64,
        op: CacheOp,
    },
}

/// What the backend writes on a runner's stdin after its job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunnerInput {
    Child { id: u64, answer: ChildAnswer },
    Cache { id: u64, answer: CacheAnswer },
}

impl RunnerInput {
    fn id(&self) -> u64 {
        match self {
            Self::Child { id, .. } | Self::Cache { id, .. } => *id,
        }
    }
}

/// The file a component is staged in for runners.
pub(crate) fn component_file(components: &Path, digest: &Digest) -> PathBuf {
    components.join(format!("{digest}.wasm"))
}

/// Where an agent stages components for its runners: their wasm in
/// `components`, their precompiled form in `cache`, the sandbox's own
/// cache (so that runners, built from the same binary, only map it).
pub(crate) struct Staging {
    pub(crate) sandbox: Arc<Sandbox>,
    pub(crate) components: PathBuf,
    pub(crate) cache: PathBuf,
}

impl Staging {
    /// Puts a run's component where runners read it.
    pub(crate) async fn stage(&self, component: &ComponentSource) -> Result<(), String> {
        let path = component_file(&self.components, component.digest());
        let staged = || self.sandbox.load_cached(component.digest()).is_some() && path.exists();
        if staged() {
            return Ok(());
        }
        let _turn = component.turn().await;
        if staged() {
            return Ok(());
        }
        let cached = self.sandbox.load_cached(component.digest()).is_some();
        let bytes = component.fetch().await.map_err(|error| error.to_string())?;
        let sandbox = Arc::clone(&self.sandbox);
        let components = self.components.clone();
        let staged = tokio::task::spawn_blocking(move || -> Result<(), String> {
            std::fs::create_dir_all(&components)
                .map_err(|e| format!("creating {}: {e}", components.display()))?;
            // Atomic: a runner never reads half a file.
            let partial = path.with_extension(format!("partial-{}", std::process::id()));
            std::fs::write(&partial, &bytes)
                .and_then(|()| std::fs::rename(&partial, &path))
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            if !cached {
                sandbox.load(&bytes).map_err(|e| format!("loading the component: {e}"))?;
            }
            Ok(())
        });
        staged.await.map_err(|e| format!("staging the component: {e}"))?
    }
}

/// Writes the runner's job, one line, on its stdin (kept open after).
pub(crate) async fn send_job(
    input: &mut (impl AsyncWrite + Unpin),
    job: &RunnerJob,
) -> Result<(), String> {
    let mut line = serde_json::to_vec(job).map_err(|e| e.to_string())?;
    line.push(b'\n');
    input.write_all(&line).await.map_err(|e| e.to_string())?;
    input.flush().await.map_err(|e| e.to_string())
}

/// A runner's stdin once its job is in: [`RunnerInput`] lines go in as
/// they come. Closing it, or dropping it, ends stdin: the cancellation.
pub(crate) struct RunnerStdin {
    lines: tokio::sync::mpsc::UnboundedSender<RunnerInput>,
    close: CancellationToken,
    writer: tokio::task::JoinHandle<()>,
}

impl RunnerStdin {
    pub(crate) fn start(mut input: impl AsyncWrite + Unpin + Send + 'static) -> Self {
        let (lines, mut receive) = tokio::sync::mpsc::unbounded_channel::<RunnerInput>();
        let close = CancellationToken::new();
        let closed = close.clone();
        let writer = tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = closed.cancelled() => break,
                    message = receive.recv() => match message {
                        Some(message) => message,
                        None => break,
                    },
                };
                let Ok(mut line) = serde_json::to_vec(&message) else { continue };
                line.push(b'\n');
                if input.write_all(&line).await.is_err() || input.flush().await.is_err() {
                    break;
                }
            }
            let _ = input.shutdown().await;
        });
        Self { lines, close, writer }
    }

    /// Ends stdin (the runner stops) and waits briefly for it to be shut.
    pub(crate) async fn close(mut self) {
        self.close.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.writer).await;
    }
}

impl Drop for RunnerStdin {
    fn drop(&mut self) {
        self.close.cancel();
    }
}

/// Asks the agent's way to the core what a runner's flow asks, and
/// writes the answers on the runner's stdin.
struct Relay {
    subflows: Arc<dyn Subflows>,
    task_cache: Arc<dyn TaskCache>,
    answers: tokio::sync::mpsc::UnboundedSender<RunnerInput>,
    /// Questions in flight; dropped (aborted) with the follower.
    asking: tokio::task::JoinSet<()>,
}

impl Relay {
    fn answer(&mut self, answer: impl Future<Output = RunnerInput> + Send + 'static) {
        let answers = self.answers.clone();
        self.asking.spawn(async move {
            let _ = answers.send(answer.await);
        });
    }

    fn ask_child(&mut self, id: u64, op: ChildOp) {
        let asked = self.subflows.ask(op);
        self.answer(async move { RunnerInput::Child { id, answer: asked.await.into() } });
    }

    fn ask_cache(&mut self, id: u64, op: CacheOp) {
        let asked = self.task_cache.ask(op);
        self.answer(async move { RunnerInput::Cache { id, answer: asked.await } });
    }
}

/// Reads one line of at most `max` bytes (without its newline); `None` at
/// the end of input.
pub(crate) async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok((!line.is_empty()).then_some(line));
        }
        let (taken, done) = match buffer.iter().position(|b| *b == b'\n') {
            Some(end) => (end + 1, true),
            None => (buffer.len(), false),
        };
        let chunk = buffer.get(..taken).unwrap_or_default();
        line.extend_from_slice(chunk.strip_suffix(b"\n").unwrap_or(chunk));
        reader.consume(taken);
        if line.len() > max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a line over {max} bytes"),
            ));
        }
        if done {
            return Ok(Some(line));
        }
    }
}

/// The last lines a runner wrote to stderr, to say why it died.
#[derive(Default)]
pub(crate) struct StderrTail(VecDeque<String>);

impl StderrTail {
    /// Keeps reading `stderr` to its end, logging each line.
    pub(crate) async fn follow(
        tail: Arc<std::sync::Mutex<StderrTail>>,
        stderr: impl AsyncRead + Unpin,
    ) {
        let mut stderr = BufReader::new(stderr);
        loop {
            let line = match read_line(&mut stderr, MAX_LINE_BYTES).await {
                Ok(Some(line)) => line,
                Ok(None) | Err(_) => return,
            };
            tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(&line);
        }
    }

    /// Keeps `line` (cut if long) as the last one, logging it.
    pub(crate) fn push(&mut self, line: &[u8]) {
        let mut line = String::from_utf8_lossy(line).into_owned();
        if line.len() > MAX_STDERR_LINE_BYTES {
            line = baton_proto::v1::limits::cut(&line, MAX_STDERR_LINE_BYTES);
        }
        tracing::debug!(target: "baton::runner", "{line}");
        if self.0.len() == STDERR_TAIL_LINES {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }

    /// The lines kept, joined.
    pub(crate) fn text(&self) -> String {
        self.0.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }

    /// Whether the runner died of an allocation that failed (its memory
    /// limit).
    pub(crate) fn out_of_memory(&self) -> bool {
        self.0.iter().any(|line| line.contains("memory allocation of"))
    }
}

/// What a backend makes of a runner's output, line by line: its reports
/// passed on, its start told once (running on the infrastructure it was
/// given), and its outcome.
pub(crate) struct Follower<'a> {
    reporter: &'a dyn RunReporter,
    started: Option<(OnStarted, Infrastructure)>,
    /// Where lines that are not messages go when stdout and stderr come
    /// mixed (a pod's log); `None`: such a line is an error.
    stray: Option<Arc<std::sync::Mutex<StderrTail>>>,
    /// Where the flow's questions to the core go; `None` where the runner
    /// has no stdin to answer on (a pod's runner asks the API itself).
    relay: Option<Relay>,
}

impl<'a> Follower<'a> {
    pub(crate) fn new(
        reporter: &'a dyn RunReporter,
        started: OnStarted,
        infrastructure: Infrastructure,
    ) -> Self {
        Self { reporter, started: Some((started, infrastructure)), stray: None, relay: None }
    }

    /// The runner's questions (subflow calls, its task cache) are asked
    /// of the job's way to the core, answered on `stdin`.
    pub(crate) fn relaying_questions(
        mut self,
        subflows: &Arc<dyn Subflows>,
        task_cache: &Arc<dyn TaskCache>,
        stdin: &RunnerStdin,
    ) -> Self {
        self.relay = Some(Relay {
            subflows: Arc::clone(subflows),
            task_cache: Arc::clone(task_cache),
            answers: stdin.lines.clone(),
            asking: tokio::task::JoinSet::new(),
        });
        self
    }

    /// Lines that are not messages are the runner's stderr, kept in `tail`.
    pub(crate) fn mixed_with_stderr(mut self, tail: Arc<std::sync::Mutex<StderrTail>>) -> Self {
        self.stray = Some(tail);
        self
    }

    /// Takes one line; the run's outcome once the runner says it.
    pub(crate) fn take(&mut self, line: &[u8]) -> Result<Option<RunOutcome>, String> {
        match serde_json::from_slice::<RunnerMessage>(line) {
            Ok(RunnerMessage::Started) => {
                if let Some((started, infrastructure)) = self.started.take() {
                    started(infrastructure);
                }
            }
            Ok(RunnerMessage::Report { report }) => self.reporter.report(report),
            Ok(RunnerMessage::Finished { outcome }) => return Ok(Some(outcome)),
            Ok(RunnerMessage::Child { id, op }) => match &mut self.relay {
                Some(relay) => relay.ask_child(id, op),
                None => tracing::debug!("a runner without stdin asked about a subflow"),
            },
            Ok(RunnerMessage::Cache { id, op }) => match &mut self.relay {
                Some(relay) => relay.ask_cache(id, op),
                None => tracing::debug!("a runner without stdin asked its task cache"),
            },
            Err(_) if self.stray.is_some() => {
                if let Some(tail) = &self.stray {
                    tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
                }
            }
            Err(error) => {
                return Err(format!(
                    "the runner wrote something that is not a runner message ({error}): {}",
                    baton_proto::v1::limits::cut(&String::from_utf8_lossy(line), 200)
                ));
            }
        }
        Ok(None)
    }
}

/// Follows a runner's stdout to its end: the run's outcome if the runner
/// said it (see [`Follower`]).
pub(crate) async fn follow_stdout(
    stdout: impl AsyncRead + Unpin,
    mut follower: Follower<'_>,
) -> Result<Option<RunOutcome>, String> {
    let mut stdout = BufReader::new(stdout);
    loop {
        let line = match read_line(&mut stdout, MAX_LINE_BYTES).await {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(error) => return Err(format!("reading the runner's output: {error}")),
        };
        if let Some(outcome) = follower.take(&line)? {
            return Ok(Some(outcome));
        }
    }
}

/// Where a runner's job comes from.
pub enum JobSource<R> {
    /// One line on this input, kept open: its end cancels the run.
    Stdin(R),
    /// This file (a Kubernetes pod's mounted Secret); SIGTERM alone cancels.
    File(PathBuf),
}

/// The runner's side: reads a [`RunnerJob`], runs it, and writes
/// [`RunnerMessage`]s to `output`. Returns an error only when it could not
/// say how the run ended.
pub async fn exec(
    source: JobSource<impl AsyncRead + Unpin + Send + 'static>,
    output: impl AsyncWrite + Unpin + Send + 'static,
) -> Result<(), String> {
    let cancel = CancellationToken::new();
    let (send, receive) = tokio::sync::mpsc::unbounded_channel();
    let (job, stdio): (_, Option<Arc<StdioAsker>>) = match source {
        JobSource::Stdin(input) => {
            let mut input = BufReader::new(input);
            let line = read_line(&mut input, MAX_LINE_BYTES)
                .await
                .map_err(|e| format!("reading the job: {e}"))?
                .ok_or("no job on stdin")?;
            let asker = Arc::new(StdioAsker::new(send.clone()));
            // Answers to the flow's questions follow; stdin closing is the
            // cancellation.
            tokio::spawn({
                let cancel = cancel.clone();
                let asker = Arc::clone(&asker);
                async move {
                    while let Ok(Some(line)) = read_line(&mut input, MAX_LINE_BYTES).await {
                        if let Ok(input) = serde_json::from_slice::<RunnerInput>(&line) {
                            asker.answered(input);
                        }
                    }
                    cancel.cancel();
                }
            });
            (line, Some(asker))
        }
        JobSource::File(path) => {
            let job = tokio::fs::read(&path)
                .await
                .map_err(|e| format!("reading the job at {}: {e}", path.display()))?;
            (job, None)
        }
    };
    let job: RunnerJob =
        serde_json::from_slice(&job).map_err(|e| format!("reading the job: {e}"))?;
    // Answers come on stdin when there is one, else from the API.
    let core: CoreWay = match (stdio, &job.run_url, &job.execution_key) {
        (Some(stdio), ..) => (stdio.clone(), stdio),
        (None, Some(url), Some(key)) => {
            let api = Arc::new(ApiAsker {
                client: reqwest::Client::new(),
                run_url: url.clone(),
                key: key.clone(),
                attempt: job.attempt,
            });
            (api.clone(), api)
        }
        _ => (
            Arc::new(NoSubflows(
                "this runner has no way to the core for subflows (its job names no run_url)"
                    .to_owned(),
            )),
            Arc::new(MemoryTaskCache::default()),
        ),
    };
    set_rlimits(&job.rlimits)?;

    // SIGTERM (a container's stop, a pod's deletion) cancels too, which a
    // container's first process would otherwise ignore.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("listening for SIGTERM: {e}"))?;
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            terminate.recv().await;
            cancel.cancel();
        }
    });
    let writer = tokio::spawn(write_messages(receive, output));
    let outcome = run_job(job, &send, core, cancel).await;
    let _ = send.send(RunnerMessage::Finished { outcome });
    drop(send);
    writer.await.map_err(|e| format!("writing the outcome: {e}"))?
}

/// Where a runner's flow asks about its children and its task cache.
type CoreWay = (Arc<dyn Subflows>, Arc<dyn TaskCache>);

async fn run_job(
    job: RunnerJob,
    messages: &tokio::sync::mpsc::UnboundedSender<RunnerMessage>,
    (subflows, task_cache): CoreWay,
    cancel: CancellationToken,
) -> RunOutcome {
    let crashed = |message: String| RunOutcome::Crashed { message };
    let digest: Digest = match job.digest.parse() {
        Ok(digest) => digest,
        Err(error) => return crashed(format!("the runner's job: {error}")),
    };
    let sandbox = match Sandbox::new(&SandboxConfig {
        cache_dir: Some(job.cache.clone()),
        max_instances: 1,
        scratch_dir: job.scratch_dir.clone(),
        ..SandboxConfig::default()
    }) {
        Ok(sandbox) => sandbox,
        Err(error) => return crashed(format!("the runner's sandbox: {error}")),
    };
    let flow = match sandbox.load_cached(&digest) {
        Some(flow) => flow,
        None => {
            let bytes = tokio::select! {
                bytes = component_bytes(&job, &digest) => bytes,
                () = cancel.cancelled() => return RunOutcome::Cancelled,
            };
            let loaded = bytes.and_then(|bytes| {
                if Digest::of(&bytes) == digest {
                    sandbox.load(&bytes).map_err(|e| format!("loading the component: {e}"))
                } else {
                    Err(format!("the component the runner was given is not sha256:{digest}"))
                }
            });
            match loaded {
                Ok(flow) => flow,
                Err(message) => return crashed(message),
            }
        }
    };
    let outgoing_hosts = match OutgoingHosts::parse(&job.outgoing_hosts) {
        Ok(hosts) => hosts,
        Err(message) => return crashed(message),
    };
    let _ = messages.send(RunnerMessage::Started);
    let request = RunRequest {
        params: serde_json::Value::Object(job.params),
        limits: RunLimits {
            memory_bytes: job.memory_bytes,
            timeout: Duration::from_millis(job.timeout_ms),
            scratch_bytes: job.scratch_bytes,
        },
        grants: Grants {
            variables: job.variables,
            secrets: job.secrets,
            outgoing_hosts,
            // A runner is the flow's own process: its pool lets it run
            // what the deployment lists.
            commands: CommandGrant::Allowed(job.commands),
        },
        reporter: Arc::new(ChannelReporter(messages.clone())),
        subflows,
        task_cache,
        cancel,
        env: job.env.into_iter().collect(),
    };
    sandbox.run(&flow, request).await
}

/// The component's bytes: staged in `components`, else fetched from the
/// job's artifact URL.
async fn component_bytes(job: &RunnerJob, digest: &Digest) -> Result<Vec<u8>, String> {
    let path = component_file(&job.components, digest);
    match (tokio::fs::read(&path).await, &job.artifact_url) {
        (Ok(bytes), _) => Ok(bytes),
        (Err(error), None) => Err(format!("reading the component at {}: {error}", path.display())),
        (Err(_), Some(url)) => fetch_component(url).await,
    }
}

/// `GET url` with the runner's API token, at most
/// [`MAX_FETCHED_COMPONENT_BYTES`].
async fn fetch_component(url: &str) -> Result<Vec<u8>, String> {
    let failed =
        |error: &dyn std::fmt::Display| format!("fetching the component from {url}: {error}");
    let mut request = reqwest::Client::new().get(url);
    if let Ok(token) = std::env::var(API_TOKEN_ENV) {
        request = request.bearer_auth(token.trim());
    }
    let mut response = request.send().await.map_err(|e| failed(&e))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(failed(&format!("{status}: {}", baton_proto::v1::limits::cut(&body, 300))));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(&e))? {
        if bytes.len() + chunk.len() > MAX_FETCHED_COMPONENT_BYTES {
            return Err(failed(&format!(
                "it is larger than the {} MiB a runner fetches",
                MAX_FETCHED_COMPONENT_BYTES >> 20
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

async fn write_messages(
    mut messages: tokio::sync::mpsc::UnboundedReceiver<RunnerMessage>,
    output: impl AsyncWrite + Unpin,
) -> Result<(), String> {
    let mut output = tokio::io::BufWriter::new(output);
    while let Some(message) = messages.recv().await {
        let mut line = serde_json::to_vec(&message).map_err(|e| e.to_string())?;
        line.push(b'\n');
        output.write_all(&line).await.map_err(|e| format!("writing to stdout: {e}"))?;
        // Reports go out as they happen, not when a buffer fills.
        if messages.is_empty() {
            output.flush().await.map_err(|e| format!("writing to stdout: {e}"))?;
        }
    }
    output.flush().await.map_err(|e| format!("writing to stdout: {e}"))
}

/// The runner's way to the core: the flow's questions out on stdout,
/// answers in on stdin, matched by number.
struct StdioAsker {
    messages: tokio::sync::mpsc::UnboundedSender<RunnerMessage>,
    next_id: std::sync::atomic::AtomicU64,
    waiting:
        std::sync::Mutex<std::collections::HashMap<u64, tokio::sync::oneshot::Sender<RunnerInput>>>,
}

impl StdioAsker {
    fn new(messages: tokio::sync::mpsc::UnboundedSender<RunnerMessage>) -> Self {
        Self { messages, next_id: Default::default(), waiting: Default::default() }
    }

    fn answered(&self, input: RunnerInput) {
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&input.id());
        if let Some(waiting) = waiting {
            let _ = waiting.send(input);
        }
    }

    /// Sends the question `message(id)`; the answer that comes back for it.
    fn ask(
        &self,
        message: impl FnOnce(u64) -> RunnerMessage,
    ) -> impl Future<Output = Result<RunnerInput, String>> + Send + 'static {
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, answer);
        let sent = self.messages.send(message(id)).is_ok();
        async move {
            if !sent {
                return Err("the runner could not ask its agent".to_owned());
            }
            answered.await.map_err(|_| "the runner's agent went away before answering".to_owned())
        }
    }
}

impl Subflows for StdioAsker {
    fn ask(&self, op: ChildOp) -> ChildAnswerFuture {
        let asked = StdioAsker::ask(self, |id| RunnerMessage::Child { id, op });
        Box::pin(async move {
            match asked.await? {
                RunnerInput::Child { answer, .. } => answer.into_result(),
                RunnerInput::Cache { .. } => Err("the agent answered another question".to_owned()),
            }
        })
    }
}

impl TaskCache for StdioAsker {
    fn ask(&self, op: CacheOp) -> CacheAnswerFuture {
        let asked = StdioAsker::ask(self, |id| RunnerMessage::Cache { id, op });
        Box::pin(async move {
            match asked.await {
                Ok(RunnerInput::Cache { answer, .. }) => answer,
                Ok(RunnerInput::Child { .. }) => {
                    CacheAnswer::Refused { reason: "the agent answered another question".into() }
                }
                Err(reason) => CacheAnswer::Refused { reason },
            }
        })
    }
}

struct ChannelReporter(tokio::sync::mpsc::UnboundedSender<RunnerMessage>);

impl RunReporter for ChannelReporter {
    fn report(&self, report: RunReport) {
        let _ = self.0.send(RunnerMessage::Report { report });
    }
}

/// Puts the job's OS limits on this process, and asks to be killed with
/// its parent (stdin closing already stops the run; this also stops a
/// runner stuck before it reads stdin again).
fn set_rlimits(limits: &Rlimits) -> Result<(), String> {
    use rustix::process::{Resource, Rlimit, Signal, set_parent_process_death_signal, setrlimit};
    if let Some(bytes) = limits.data_bytes {
        setrlimit(Resource::Data, Rlimit { current: Some(bytes), maximum: Some(bytes) })
            .map_err(|e| format!("setting the memory limit (RLIMIT_DATA) to {bytes} bytes: {e}"))?;
    }
    // The soft limit sends SIGXCPU, which the backend names; the hard one
    // a second later kills.
    if let Some(seconds) = limits.cpu_seconds {
        let hard = seconds.saturating_add(1);
        setrlimit(Resource::Cpu, Rlimit { current: Some(seconds), maximum: Some(hard) })
            .map_err(|e| format!("setting the CPU-time limit (RLIMIT_CPU) to {seconds} s: {e}"))?;
    }
    set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| format!("asking to die with the agent: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_line_at_the_limit_is_read_and_one_byte_over_is_refused() {
        let input = format!("{}\n{}\n", "a".repeat(16), "b".repeat(17));
        // A small buffer: lines arrive in several pieces.
        let mut reader = BufReader::with_capacity(4, input.as_bytes());
        assert_eq!(read_line(&mut reader, 16).await.unwrap(), Some(b"a".repeat(16)));
        let error = read_line(&mut reader, 16).await.unwrap_err();
        assert!(error.to_string().contains("a line over 16 bytes"), "{error}");

        let mut last = BufReader::new(&b"no newline at the end"[..]);
        assert_eq!(
            read_line(&mut last, 64).await.unwrap(),
            Some(b"no newline at the end".to_vec())
        );
        assert_eq!(read_line(&mut last, 64).await.unwrap(), None);
    }

    struct Nowhere;

    impl RunReporter for Nowhere {
        fn report(&self, _: RunReport) {}
    }

    #[test]
    fn a_stray_line_is_an_error_unless_stderr_comes_mixed_in() {
        let infrastructure =
            || Infrastructure { kind: baton_proto::v1::PoolKind::Process, id: None, host: None };
        let mut strict = Follower::new(&Nowhere, Box::new(|_| {}), infrastructure());
        let error = strict.take(b"thread 'main' panicked").unwrap_err();
        assert!(error.contains("not a runner message"), "{error}");

        let tail = Arc::new(std::sync::Mutex::new(StderrTail::default()));
        let mut mixed = Follower::new(&Nowhere, Box::new(|_| {}), infrastructure())
            .mixed_with_stderr(Arc::clone(&tail));
        assert_eq!(mixed.take(b"thread 'main' panicked"), Ok(None));
        let finished =
            serde_json::to_vec(&RunnerMessage::Finished { outcome: RunOutcome::Cancelled })
                .unwrap();
        assert_eq!(mixed.take(&finished), Ok(Some(RunOutcome::Cancelled)));
        assert_eq!(tail.lock().unwrap().text(), "thread 'main' panicked");
    }
}
