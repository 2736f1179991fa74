//! Subflows: start a run of another deployment from a flow, as Prefect's
//! `run_deployment`, and by default wait for its result. The child records
//! this run as its parent; it may run in another pool (a heavy step on a
//! container pool, say). Cancelling this run cancels a child it waits for.
//! A chain of parents deeper than the core allows (a flow that starts
//! itself) is refused with an error that says so.
//!
//! ```text
//! let child = baton_sdk::run_deployment("etl/nightly", &json!({"day": "2026-11-30"}), true)?;
//! let rows: u64 = child.output()?;
//! // With a timeout (the child is returned as it stands then):
//! let child = RunDeployment::new("etl/nightly").param("day", "2026-11-30")
//!     .timeout(Duration::from_secs(600)).run()?;
//! ```

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::baton::flow::subflows;

/// Starts a run of `deployment` (`flow/name`) with `params` (anything that
/// serialises to a JSON object of parameter overrides) and, with `wait`,
/// waits for it to end. [`RunDeployment`] also sets a timeout.
pub fn run_deployment(deployment: &str, params: &impl Serialize, wait: bool) -> Result<ChildRun> {
    RunDeployment::new(deployment).params(params)?.wait(wait).run()
}

/// A subflow to start: its parameters and whether to wait for it.
#[derive(Debug, Clone)]
#[must_use]
pub struct RunDeployment {
    deployment: String,
    params: serde_json::Map<String, serde_json::Value>,
    wait: bool,
    timeout: Option<Duration>,
}

impl RunDeployment {
    /// A run of `deployment` (`flow/name`), waited for, without a timeout.
    pub fn new(deployment: &str) -> Self {
        Self {
            deployment: deployment.to_owned(),
            params: serde_json::Map::new(),
            wait: true,
            timeout: None,
        }
    }

    /// Sets one parameter (over the deployment's own value).
    pub fn param(mut self, name: &str, value: impl Serialize) -> Self {
        // A value that cannot be JSON is refused when the run starts.
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.params.insert(name.to_owned(), value);
        self
    }

    /// Sets the parameters from a struct (or map) that serialises to a
    /// JSON object.
    pub fn params(mut self, params: impl Serialize) -> Result<Self> {
        match serde_json::to_value(params).context("the subflow's parameters")? {
            serde_json::Value::Object(map) => self.params.extend(map),
            other => return Err(anyhow!("a subflow's parameters must be an object, not {other}")),
        }
        Ok(self)
    }

    /// Whether to wait for the child to end (the default) or return once
    /// it is created.
    pub fn wait(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }

    /// Waits at most this long; the child is returned as it stands then
    /// (and keeps running).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Starts the child (and, by default, waits for it).
    pub fn run(&self) -> Result<ChildRun> {
        let params = serde_json::Value::Object(self.params.clone()).to_string();
        let timeout_ms = self.timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        subflows::run_deployment(&self.deployment, &params, self.wait, timeout_ms)
            .map(ChildRun)
            .map_err(|why| anyhow!("run_deployment {}: {why}", self.deployment))
    }
}

/// A child run as it stood when [`RunDeployment::run`] returned.
#[derive(Debug, Clone)]
pub struct ChildRun(subflows::ChildRun);

impl ChildRun {
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// `flow/name` of its deployment.
    pub fn deployment(&self) -> &str {
        &self.0.deployment
    }

    /// Its state as the API names it: `COMPLETED`, `FAILED`, `RUNNING`...
    pub fn state(&self) -> &str {
        &self.0.state
    }

    /// Why it is in that state, if said.
    pub fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    pub fn is_completed(&self) -> bool {
        self.0.state == "COMPLETED"
    }

    /// Its output as `T`; an error if it did not complete (naming its
    /// state and message) or its output is not a `T`.
    pub fn output<T: DeserializeOwned>(&self) -> Result<T> {
        if !self.is_completed() {
            return Err(anyhow!(
                "subflow {} of {} is {}{}",
                self.0.id,
                self.0.deployment,
                self.0.state,
                self.0.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
            ));
        }
        let output = self.0.output.as_deref().unwrap_or("null");
        serde_json::from_str(output).with_context(|| {
            format!("the output of subflow {} of {}", self.0.id, self.0.deployment)
        })
    }
}
