//! Subflows: a flow starting a run of another deployment (its *child*,
//! Prefect's `run_deployment`) and, if it likes, waiting for its end.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{StateName, Timestamp};

/// How deep a chain of parents may go: the run a flow starts from a run
/// this deep is refused, so a flow that starts itself stops somewhere.
pub const MAX_SUBFLOW_DEPTH: u32 = 10;

/// A flow's `run_deployment` call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChildStart {
    /// Counts the calls of one execution from 1. With the parent run and
    /// its attempt it names the child, so a call sent again (after a lost
    /// connection) finds the child it started instead of starting another.
    pub call: u32,
    /// `flow/name`.
    pub deployment: String,
    /// Overrides of the deployment's parameters.
    #[serde(default)]
    pub parameters: Map<String, Value>,
    /// Whether the parent waits for the child: cancelling the parent then
    /// cancels the child.
    pub wait: bool,
}

/// A child run, as its parent (and its parent's page) sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChildRun {
    pub id: String,
    /// `flow/name` of its deployment.
    pub deployment: String,
    pub state: StateName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_message: Option<String>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Its result once `COMPLETED`: given to the flow that waited for it,
    /// left out of listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// What an execution asks of the core about its children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ChildOp {
    /// Start the child of this call (or find the one it started).
    Start(ChildStart),
    /// Answer once the child has ended, or after `timeout_ms` with its
    /// state then.
    Wait {
        child_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
}

/// A subflow call over the API (`POST /api/runs/{id}/children`), from a
/// runner with no link to its agent, with its execution's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChildCall {
    /// The attempt of the run that asks: its key is that attempt's.
    pub attempt: u32,
    #[serde(flatten)]
    pub op: ChildOp,
}

/// The core's answer to a [`ChildOp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum ChildAnswer {
    Run {
        run: ChildRun,
    },
    /// Refused, for a reason the flow is given (an unknown deployment,
    /// bad parameters, the depth limit, a parent no longer held).
    Refused {
        reason: String,
    },
}

impl ChildAnswer {
    pub fn into_result(self) -> Result<ChildRun, String> {
        match self {
            Self::Run { run } => Ok(run),
            Self::Refused { reason } => Err(reason),
        }
    }
}

impl From<Result<ChildRun, String>> for ChildAnswer {
    fn from(result: Result<ChildRun, String>) -> Self {
        match result {
            Ok(run) => Self::Run { run },
            Err(reason) => Self::Refused { reason },
        }
    }
}

/// The idempotency key of the child of `call` in attempt `attempt` of run
/// `parent`: a call resent finds the child it started.
pub fn child_key(parent: &str, attempt: u32, call: u32) -> String {
    format!("subflow/{parent}/{attempt}/{call}")
}
