//! Version 1 of Baton's wire types.

mod api;
mod automation;
mod deployment;
mod flow;
mod jobs;
pub mod limits;
pub mod link;
pub mod outgoing;
#[cfg(feature = "validate")]
mod params;
mod run;
mod run_artifact;
pub mod run_names;
#[cfg(feature = "schema")]
mod schema;
pub mod schema_view;
mod state;
mod subflow;
pub mod suggest;
mod task_cache;

pub use api::{
    API_TOKEN_PREFIX, AgentInfo, AgentTokenCreated, ApiError, ApiScope, ApiTokenCreated,
    ApiTokenInfo, Artifact, CreateAgentToken, CreateApiToken, CreateRun, EmitEvent, Event,
    FieldError, FlowDeployment, FlowRun, FlowRunDetail, FlowSummary, FlowVersion, Health,
    Infrastructure, LogLine, Page, PoolKind, PoolSpec, ProposeState, QueueSpec, RunAttempt,
    RunBucket, RunProgress, RunStats, SIGNATURE_HEADER, SecretInfo, SecretValue, SetValue,
    SkipLate, Skipped, StateChange, StateCount, TaskRun, Transition, Variable, Verdict, Webhook,
    WebhookSpec, WorkPool, WorkQueue, split_api_token,
};
pub use automation::{
    ACTION_KINDS, Action, Automation, AutomationSpec, EventTrigger, Trigger, WEBHOOK_METHODS,
    as_written, parse_seconds, seconds_text,
};
pub use deployment::{
    Capabilities, CatchUp, ConcurrencyPolicy, DEFAULT_WORK_POOL, DEFAULT_WORK_QUEUE, Deployment,
    DeploymentSpec, DeploymentUpserted, Schedule, ScheduleSpec,
};
pub use flow::FlowInfo;
pub use jobs::{
    DEFAULT_SCRATCH_MIB, MAX_SANDBOX_MEMORY_MIB, default_base_job_template, merge_job_variables,
    scratch_bytes, variables_schema,
};
#[cfg(feature = "validate")]
pub use jobs::{check_base_job_template, resolve_job_variables};
#[cfg(feature = "validate")]
pub use params::{ParamError, ParamErrors, validate_params};
pub use run::{LogLevel, ReportBody, RunOutcome, RunReport, TaskOutcome, Timestamp};
pub use run_artifact::{
    MAX_ARTIFACT_KEY_CHARS, MAX_RUN_ARTIFACT_BYTES, RunArtifact, RunArtifactKind,
    check_artifact_key, check_run_artifact, is_web_url, table_columns,
};
pub use state::{StateName, UnknownState};
pub use subflow::{
    ChildAnswer, ChildCall, ChildOp, ChildRun, ChildStart, MAX_SUBFLOW_DEPTH, child_key,
};
pub use task_cache::{
    CacheAnswer, CacheCall, CacheOp, MAX_CACHED_RESULT_BYTES, MAX_TASK_CACHE_BYTES_PER_DEPLOYMENT,
    MAX_TASK_CACHE_ENTRIES_PER_DEPLOYMENT,
};
