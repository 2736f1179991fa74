//! Deployments: a flow artifact on the server with everything needed to run
//! it remotely (when, where, how), as in Prefect's `prefect.yaml`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Timestamp;

/// The work pool and queue of a deployment that names none.
pub const DEFAULT_WORK_POOL: &str = "default";
pub const DEFAULT_WORK_QUEUE: &str = "default";

/// What happens to a new run when its deployment's concurrency limit is
/// reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ConcurrencyPolicy {
    /// It waits for a slot.
    #[default]
    Enqueue,
    /// It is cancelled at once.
    CancelNew,
}

/// What the sandbox grants a deployment's runs beyond nothing at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Capabilities {
    /// Names of variables the flow may read.
    pub variables: Vec<String>,
    /// Names of secrets the flow may read.
    pub secrets: Vec<String>,
    /// Hosts the flow may call over HTTP, checked at deploy: `example.com`
    /// (ports 80 and 443), `*.example.com`, `example.com:8443`,
    /// `127.0.0.1:8080`, `https://api.example.com/v2/`.
    pub outgoing_hosts: Vec<String>,
    /// Native programs the flow may run, where its pool gives it a process
    /// of its own (process, container, kubernetes): `sh`, `dbt` (looked up
    /// on `PATH`) or a path, matched exactly.
    pub commands: Vec<String>,
}

/// Entries a capability list may have.
pub const MAX_CAPABILITY_ENTRIES: usize = 256;
/// The longest entry of a capability list.
pub const MAX_CAPABILITY_ENTRY_BYTES: usize = 1024;

impl Capabilities {
    /// Checks what a deployment grants: sizes, and every entry's form.
    pub fn check(&self) -> Result<(), String> {
        for (what, entries) in [
            ("variables", &self.variables),
            ("secrets", &self.secrets),
            ("outgoing_hosts", &self.outgoing_hosts),
            ("commands", &self.commands),
        ] {
            if entries.len() > MAX_CAPABILITY_ENTRIES {
                return Err(format!(
                    "capabilities.{what} has {} entries, over the limit of {MAX_CAPABILITY_ENTRIES}",
                    entries.len()
                ));
            }
            if let Some(long) = entries.iter().find(|e| e.len() > MAX_CAPABILITY_ENTRY_BYTES) {
                return Err(format!(
                    "capabilities.{what} has an entry of {} bytes, over the limit of {MAX_CAPABILITY_ENTRY_BYTES}",
                    long.len()
                ));
            }
        }
        super::outgoing::OutgoingHosts::parse(&self.outgoing_hosts)?;
        if let Some(bad) = self
            .commands
            .iter()
            .find(|c| c.trim().is_empty() || c.trim() != c.as_str() || c.contains('\0'))
        {
            return Err(format!(
                "capabilities.commands: {bad:?} is not a program (a name such as `sh`, or a path)"
            ));
        }
        Ok(())
    }
}

/// What the scheduler does about a schedule's times that passed while no
/// core was running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum CatchUp {
    /// None of them runs.
    #[default]
    Skip,
    /// One run, for the newest of them.
    Latest,
    /// All of them, within the catch-up window.
    All,
}

/// One schedule of a deployment (executed by the scheduler).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Cron expression: five fields as in Unix cron, or six or seven with
    /// seconds first (and a year last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Interval in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// iCalendar recurrence rule (`FREQ=WEEKLY;BYDAY=MO`, optionally with
    /// a `DTSTART` line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrule: Option<String>,
    /// Where an interval's steps start, and an rrule's default `DTSTART`
    /// (default: 2020-01-01 00:00 in the schedule's time zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Timestamp>,
    /// IANA time zone the schedule is read in.
    #[serde(default = "utc")]
    pub timezone: String,
    /// Parameters this schedule's runs override.
    #[serde(default)]
    pub parameters: Map<String, Value>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub catch_up: CatchUp,
}

/// A schedule as the core keeps it: its id is derived from its content
/// (all but `active`), so re-deploying the same schedule keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Schedule {
    pub id: String,
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    /// Its next times (at most three), while it is active.
    pub next: Vec<Timestamp>,
}

fn utc() -> String {
    "UTC".to_owned()
}

fn yes() -> bool {
    true
}

/// The body of `PUT /api/deployments/{flow}/{name}`: everything about a
/// deployment that its author sets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(transform = super::schema::required(&["artifact"])))]
pub struct DeploymentSpec {
    /// Digest of the flow artifact (`sha256:<hex>`), uploaded beforehand.
    #[cfg_attr(feature = "schema", schemars(pattern(super::limits::DIGEST_PATTERN)))]
    pub artifact: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// Parameters every run gets unless it overrides them.
    pub parameters: Map<String, Value>,
    #[cfg_attr(feature = "schema", schemars(pattern(super::limits::name_pattern())))]
    pub work_pool: Option<String>,
    #[cfg_attr(feature = "schema", schemars(pattern(super::limits::name_pattern())))]
    pub work_queue: Option<String>,
    /// Overrides of the work pool's base job template.
    pub job_variables: Map<String, Value>,
    pub schedules: Vec<ScheduleSpec>,
    /// Runs of this deployment that may be active at once.
    pub concurrency_limit: Option<u32>,
    pub concurrency_policy: ConcurrencyPolicy,
    pub paused: bool,
    pub capabilities: Capabilities,
    /// Times a failed or crashed run is tried again.
    pub retries: u32,
    pub retry_delay_seconds: u64,
    /// Wall-clock limit of a run.
    pub timeout_seconds: Option<u64>,
}

/// A deployment as the core stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Deployment {
    pub id: String,
    /// The flow's name (from the artifact's `describe`).
    pub flow: String,
    pub name: String,
    #[serde(flatten)]
    pub spec: DeploymentSpec,
    /// The flow's parameter schema, enforced on every run. Left out of
    /// lists (`GET /api/deployments`): read one deployment for it.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub parameter_schema: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The version its component's flow declares (`flow!(version = ...)`
    /// or its crate's).
    #[serde(default)]
    pub flow_version: String,
}

impl Deployment {
    /// `flow/name`, how people refer to a deployment.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.flow, self.name)
    }
}

/// The answer to an upsert: the deployment and what changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeploymentUpserted {
    pub deployment: Deployment,
    pub created: bool,
    /// Names of the fields whose value changed (empty when nothing did).
    pub changed: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_lists_are_held_to_their_limits_and_commands_to_their_form() {
        let names = |n: usize| (0..n).map(|i| format!("p{i}")).collect::<Vec<_>>();
        let at_limit =
            Capabilities { commands: names(MAX_CAPABILITY_ENTRIES), ..Capabilities::default() };
        assert_eq!(at_limit.check(), Ok(()));
        let over =
            Capabilities { commands: names(MAX_CAPABILITY_ENTRIES + 1), ..Capabilities::default() };
        let error = over.check().unwrap_err();
        assert!(
            error.contains("capabilities.commands has 257 entries, over the limit of 256"),
            "{error}"
        );

        let long = "x".repeat(MAX_CAPABILITY_ENTRY_BYTES);
        let at_limit = Capabilities { variables: vec![long.clone()], ..Capabilities::default() };
        assert_eq!(at_limit.check(), Ok(()));
        let over = Capabilities { variables: vec![long + "x"], ..Capabilities::default() };
        let error = over.check().unwrap_err();
        assert!(error.contains("capabilities.variables has an entry of 1025 bytes"), "{error}");

        for bad in ["", " sh", "sh\0"] {
            let bad = Capabilities { commands: vec![bad.to_owned()], ..Capabilities::default() };
            assert!(bad.check().unwrap_err().contains("is not a program"));
        }
        let hosts =
            Capabilities { outgoing_hosts: vec!["http://".into()], ..Capabilities::default() };
        assert!(hosts.check().is_err(), "a bad outgoing host passed");
    }
}
