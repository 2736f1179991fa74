//! Bodies of the REST API that are not deployments: runs, artifacts, pools,
//! variables, secrets, events, errors.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{FlowInfo, LogLevel, StateName, Timestamp};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApiError {
    /// Stable, machine-readable: `not_found`, `invalid_parameters`, ...
    pub code: String,
    /// One line for people.
    pub message: String,
    /// Per-field problems, when the request body is at fault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    /// `ok`, or `degraded` (answered with 503) when the store is not.
    pub status: String,
    pub version: String,
    pub database: String,
    /// `ok`, `full` (writes fail for want of space), `unreachable` (no
    /// answer within the health check's own timeout) or `failing`.
    #[serde(default)]
    pub store: String,
    /// This core's name in the agent leases it holds (several cores may
    /// share one database).
    #[serde(default)]
    pub core_id: String,
}

/// What the core knows of an uploaded flow artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Artifact {
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
    pub flow: FlowInfo,
    pub created_at: Timestamp,
}

/// The body of `POST /api/deployments/{flow}/{name}/runs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct CreateRun {
    /// Overrides of the deployment's parameters.
    pub parameters: Map<String, Value>,
    /// When to start; now when absent.
    pub scheduled_at: Option<Timestamp>,
    /// Creating a run twice with the same key returns the first run.
    pub idempotency_key: Option<String>,
    pub tags: Vec<String>,
    /// Overrides of the deployment's job variables (which override its
    /// pool's base job template's defaults), checked against the template.
    pub job_variables: Map<String, Value>,
}

/// One flow run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FlowRun {
    pub id: String,
    /// A readable name (`brave-otter`), derived from its id.
    #[serde(default)]
    pub name: String,
    pub flow: String,
    /// `flow/name` of its deployment.
    pub deployment: String,
    pub deployment_id: String,
    pub parameters: Map<String, Value>,
    pub state: StateName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_message: Option<String>,
    pub state_changed_at: Timestamp,
    /// When it is (or was) due.
    pub scheduled_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Times it has started running (1 + retries so far).
    pub run_count: u32,
    pub max_retries: u32,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    pub created_at: Timestamp,
    /// The work pool and queue it waits in.
    pub work_pool: String,
    pub work_queue: String,
    /// The agent it was last pushed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Its current attempt: how many times it was pushed to an agent (0:
    /// never). Only events of this attempt change the run.
    #[serde(default)]
    pub attempt: u32,
    /// The job variables it was created with (over its deployment's and
    /// its pool's).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub job_variables: Map<String, Value>,
    /// Where its current attempt runs or ran, once it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<Infrastructure>,
    /// The run whose flow started it (`run_deployment`), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The run this one retries by hand, if it is such a retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// The latest progress its current attempt reported, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<RunProgress>,
}

/// How far a run says it has got (`progress(fraction, message)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RunProgress {
    /// From 0 to 1.
    pub fraction: f64,
    pub message: String,
    pub at: Timestamp,
}

/// Where an execution runs: the backend of its pool's type and, for what
/// a backend creates per run, what it created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Infrastructure {
    #[serde(rename = "type")]
    pub kind: PoolKind,
    /// The process id, container id or Job name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where that lives: the host, the container engine, the cluster
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Infrastructure {
    /// The sandbox of the agent that runs it: nothing per run.
    pub fn sandbox() -> Self {
        Self { kind: PoolKind::Wasm, id: None, host: None }
    }
}

/// `wasm sandbox`, `process 4242`, `container 3f2a… on unix:///…`.
impl std::fmt::Display for Infrastructure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            PoolKind::Wasm => f.write_str("wasm sandbox")?,
            kind => f.write_str(kind.as_str())?,
        }
        if let Some(id) = &self.id {
            write!(f, " {id}")?;
        }
        if let Some(host) = &self.host {
            write!(f, " on {host}")?;
        }
        Ok(())
    }
}

/// One accepted state change of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StateChange {
    pub state: StateName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub at: Timestamp,
}

/// One task attempt within a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskRun {
    /// The run's attempt it ran in.
    #[serde(default)]
    pub run_attempt: u32,
    pub task_id: u64,
    pub name: String,
    pub attempt: u32,
    pub max_attempts: u32,
    /// `RUNNING`, `COMPLETED` or `FAILED`.
    pub state: StateName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Set when the task did not run but was answered from the task cache
    /// (`COMPLETED`, shown as `CACHED`): the run whose result it reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_from: Option<String>,
}

/// A run with its history: `GET /api/runs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FlowRunDetail {
    #[serde(flatten)]
    pub run: FlowRun,
    pub states: Vec<StateChange>,
    /// The run's first task runs, by attempt and task id (at most 500).
    pub task_runs: Vec<TaskRun>,
    /// Set when the run has more task runs than `task_runs` holds: page on
    /// with `GET /api/runs/{id}/task-runs?cursor=...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_runs_next_cursor: Option<String>,
    /// Every dispatch of the run, oldest first.
    #[serde(default)]
    pub attempts: Vec<RunAttempt>,
    /// The artifacts the run created, oldest first (at most 100; all of
    /// them with `GET /api/runs/{id}/artifacts`).
    #[serde(default)]
    pub artifacts: Vec<super::RunArtifact>,
    /// The runs its flow started, oldest first (at most 100; all of them
    /// with `GET /api/runs?parent_id=...`).
    #[serde(default)]
    pub children: Vec<super::ChildRun>,
}

/// One dispatch of a run to an agent, and how that execution went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RunAttempt {
    /// 1, 2, ...: the fencing token of this execution.
    pub number: u32,
    pub agent_id: String,
    pub dispatched_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// The run's state when this attempt last changed it.
    pub state: StateName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Its output, if it completed the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// What this execution reported after it had lost the run (a newer
    /// attempt held it, or it had ended): kept for diagnosis, never
    /// applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_outcome: Option<String>,
}

/// One log line of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LogLine {
    /// The run's attempt that wrote it; `seq` counts within the attempt.
    #[serde(default)]
    pub attempt: u32,
    #[cfg_attr(feature = "schema", schemars(range(max = u32::MAX)))]
    pub seq: u64,
    pub at: Timestamp,
    pub level: LogLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<u64>,
}

impl LogLine {
    /// Where the line stands in its run's log (attempt, then seq): the
    /// `after` cursor of `GET /api/runs/{id}/logs`.
    pub fn position(&self) -> u64 {
        (u64::from(self.attempt) << 32) | self.seq.min(u64::from(u32::MAX))
    }
}

/// The body of `POST /api/runs/{id}/state`: a proposed transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProposeState {
    pub state: StateName,
    #[serde(default)]
    pub message: Option<String>,
    /// The flow's output, with `COMPLETED`.
    #[serde(default)]
    pub output: Option<Value>,
}

/// How the core answered a proposed transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The run is now in the proposed state, or in the state a rule chose
    /// instead (a failure with retries left becomes `AWAITING_RETRY`).
    Accepted,
    /// The transition is not allowed; the run is unchanged.
    Rejected,
    /// Not now (no concurrency slot); propose again later.
    Delayed,
}

/// The answer to a proposed transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Transition {
    pub verdict: Verdict,
    /// Why, when not simply accepted as proposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub run: FlowRun,
}

/// `GET /api/runs/stats`: runs counted by state in equal time buckets of
/// their scheduled time, oldest bucket first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RunStats {
    pub since: Timestamp,
    pub until: Timestamp,
    pub bucket_seconds: u64,
    /// Every bucket of the window, empty ones too.
    pub buckets: Vec<RunBucket>,
}

/// One bucket of [`RunStats`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RunBucket {
    pub start: Timestamp,
    /// States with at least one run.
    pub counts: Vec<StateCount>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StateCount {
    pub state: StateName,
    pub count: u64,
}

/// A page of a list (runs newest first, a run's task runs in the order
/// they started); pass `next_cursor` back as `cursor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "Page_of_{T}"))]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Infrastructure a work pool runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    #[default]
    Wasm,
    Process,
    Container,
    Kubernetes,
}

impl PoolKind {
    /// The type's name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolKind::Wasm => "wasm",
            PoolKind::Process => "process",
            PoolKind::Container => "container",
            PoolKind::Kubernetes => "kubernetes",
        }
    }
}

/// The body of `POST /api/pools`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(transform = super::schema::required(&["name"])))]
pub struct PoolSpec {
    #[cfg_attr(feature = "schema", schemars(pattern(super::limits::name_pattern())))]
    pub name: String,
    /// The pool's infrastructure (`type` on the wire; `kind` is read too).
    #[serde(rename = "type", alias = "kind")]
    pub kind: PoolKind,
    pub description: Option<String>,
    pub concurrency_limit: Option<u32>,
    /// `variables`: a JSON schema of the job variables the pool's type
    /// understands, with their defaults. Empty at creation: the type's
    /// default template.
    pub base_job_template: Map<String, Value>,
    /// A wasm pool's bigger sibling: a run that runs out of sandbox memory
    /// here (or asks for more than the sandbox allows) is resubmitted to
    /// it, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(pattern(super::limits::name_pattern())))]
    pub escalate_to: Option<String>,
}

/// The body of `POST /api/runs/skip-late`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct SkipLate {
    /// Only this deployment's late runs (`FLOW/DEPLOYMENT`); all when absent.
    #[cfg_attr(feature = "schema", schemars(pattern(super::limits::deployment_pattern())))]
    pub deployment: Option<String>,
}

/// How many runs `POST /api/runs/skip-late` cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Skipped {
    pub skipped: u64,
}

/// What `PUT /api/pools/{name}/queues/{queue}` sets on a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Lower numbers are served first.
    #[serde(default = "first_priority")]
    pub priority: u32,
    #[serde(default)]
    pub concurrency_limit: Option<u32>,
    #[serde(default)]
    pub paused: bool,
}

fn first_priority() -> u32 {
    1
}

/// A work queue within a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WorkQueue {
    pub name: String,
    /// Lower numbers are served first.
    pub priority: u32,
    pub concurrency_limit: Option<u32>,
    pub paused: bool,
}

/// A work pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WorkPool {
    #[serde(flatten)]
    pub spec: PoolSpec,
    pub paused: bool,
    pub queues: Vec<WorkQueue>,
    pub created_at: Timestamp,
}

/// A variable (plain text, readable by flows it is granted to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Variable {
    pub name: String,
    pub value: String,
    pub updated_at: Timestamp,
}

/// A secret as listed: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SecretInfo {
    pub name: String,
    pub updated_at: Timestamp,
}

/// The body of `PUT /api/variables/{name}` and `PUT /api/secrets/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SetValue {
    pub value: String,
}

/// `GET /api/secrets/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SecretValue {
    pub name: String,
    pub value: String,
}

/// Something that happened: every state change emits one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Event {
    pub id: String,
    pub occurred: Timestamp,
    /// `run.completed`, `deployment.updated`, ...
    pub name: String,
    /// What it happened to: `run/<id>`, `deployment/<flow>/<name>`.
    pub resource: String,
    #[serde(default)]
    pub related: Vec<String>,
    #[serde(default)]
    pub payload: Value,
}

/// The body of `POST /api/events`: an event to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EmitEvent {
    #[cfg_attr(feature = "schema", schemars(pattern(super::limits::EVENT_NAME_PATTERN)))]
    pub name: String,
    /// What it is about (default `api`).
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub related: Vec<String>,
    #[serde(default)]
    pub payload: Value,
}

/// What `baton webhook create` sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    #[cfg_attr(feature = "schema", schemars(pattern(super::limits::name_pattern())))]
    pub slug: String,
    /// Callers must sign the body with it (HMAC-SHA256, header
    /// `X-Baton-Signature: sha256=<hex>`).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub secret: Option<String>,
    /// The name of the events its calls become (default `webhook.<slug>`).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(pattern(super::limits::EVENT_NAME_PATTERN)))]
    pub event: Option<String>,
}

/// An incoming webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Webhook {
    pub slug: String,
    /// Where to call it: `POST` on the core's address.
    pub path: String,
    pub event: String,
    /// Whether calls must be signed.
    pub signed: bool,
    pub created_at: Timestamp,
}

/// The header a signed webhook call carries.
pub const SIGNATURE_HEADER: &str = "x-baton-signature";

/// An agent the core knows (`GET /api/agents`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AgentInfo {
    /// The core that holds its session (`Health::core_id`), if connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_id: Option<String>,
    /// The address it reached that core at (`HOST:PORT`, as it was given
    /// it), if connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_address: Option<String>,
    pub id: String,
    pub name: String,
    pub pool: String,
    /// Queues it takes runs from; empty means all of its pool's.
    pub queues: Vec<String>,
    pub slots: u32,
    /// Runs it holds now (`PENDING`, `RUNNING` or `CANCELLING`).
    pub running: u32,
    pub version: String,
    pub connected: bool,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Digests of the components it holds compiled (as of its last
    /// connection, the runs since and what it was asked to prepare).
    #[serde(default)]
    pub cached: Vec<String>,
}

/// `POST /api/agent-tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreateAgentToken {
    #[cfg_attr(feature = "schema", schemars(pattern(super::limits::name_pattern())))]
    pub pool: String,
}

/// A new agent token: shown once, never stored in the clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AgentTokenCreated {
    pub pool: String,
    /// `baton1.<id>.<secret>.<fingerprint>`: give it to `baton agent start --token`.
    pub token: String,
    /// Where agents reach the core over QUIC.
    pub quic_address: String,
}

/// What an API token may do. `read`: every resource but secret values;
/// `run`: also create, cancel and change runs, and emit events; `admin`:
/// everything, secret values included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ApiScope {
    Read,
    Run,
    Admin,
}

impl ApiScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::Read => "read",
            ApiScope::Run => "run",
            ApiScope::Admin => "admin",
        }
    }
}

impl std::fmt::Display for ApiScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ApiScope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "read" => Ok(ApiScope::Read),
            "run" => Ok(ApiScope::Run),
            "admin" => Ok(ApiScope::Admin),
            other => Err(format!("`{other}` is not a scope: read, run or admin")),
        }
    }
}

/// `POST /api/api-tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateApiToken {
    pub scope: ApiScope,
    /// What it is for, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(pattern(super::limits::name_pattern())))]
    pub name: Option<String>,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApiTokenInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub scope: ApiScope,
    pub created_at: Timestamp,
}

/// A new API token: shown once, only a hash of it is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApiTokenCreated {
    #[serde(flatten)]
    pub info: ApiTokenInfo,
    /// `baton-api.<id>.<secret>`: send it as `Authorization: Bearer <token>`
    /// (the CLI reads `BATON_API_TOKEN`).
    pub token: String,
}

/// The prefix of every API token.
pub const API_TOKEN_PREFIX: &str = "baton-api.";

/// An API token's id and secret, if `token` has an API token's shape.
pub fn split_api_token(token: &str) -> Option<(&str, &str)> {
    token.strip_prefix(API_TOKEN_PREFIX)?.split_once('.')
}

/// A flow as the core knows it: the versions of it uploaded and the
/// deployments that run it (`GET /api/flows`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FlowSummary {
    pub name: String,
    /// Newest first.
    pub versions: Vec<FlowVersion>,
    /// `flow/name` of each deployment, sorted, with the digest each runs.
    pub deployments: Vec<FlowDeployment>,
}

/// One uploaded component of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FlowVersion {
    pub version: String,
    pub digest: String,
    pub description: String,
    pub created_at: Timestamp,
}

/// A deployment of a flow and the component it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FlowDeployment {
    pub deployment: String,
    pub digest: String,
    pub paused: bool,
}
