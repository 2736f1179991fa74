//! The task cache across runs: a task started with a cache key is answered
//! with the result a run of the same deployment stored under that key,
//! until it expires (Prefect's `cache_key_fn` and `cache_expiration`).
//! The core keeps the results; an execution asks it, as it asks about its
//! children: over its agent's link, or from a pod over the API with its
//! execution's key.

use serde::{Deserialize, Serialize};

/// Largest task result the cache keeps; a larger one is not cached (and
/// the run's log says so), the task runs again next time.
pub const MAX_CACHED_RESULT_BYTES: usize = 1 << 20;

/// Bytes of results a deployment's cache keeps; past them the oldest
/// entries go first.
pub const MAX_TASK_CACHE_BYTES_PER_DEPLOYMENT: u64 = 64 << 20;

/// Entries a deployment's cache keeps; past them the oldest go first.
pub const MAX_TASK_CACHE_ENTRIES_PER_DEPLOYMENT: u64 = 10_000;

/// What an execution asks of the task cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CacheOp {
    /// The result stored under `key`, unless it has expired. A key on the
    /// wire is the sha256 (hex) of the flow's: the key itself, which may
    /// hold a secret, never leaves the execution.
    Get { key: String },
    /// Store `output` (JSON text) under `key`, usable for `expire_after_ms`
    /// from now (none: until the deployment's budget pushes it out).
    Put {
        key: String,
        output: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expire_after_ms: Option<u64>,
    },
}

impl CacheOp {
    pub fn key(&self) -> &str {
        match self {
            Self::Get { key } | Self::Put { key, .. } => key,
        }
    }
}

/// A cache question over the API (`POST /api/runs/{id}/task-cache`), from
/// a runner with no link to its agent, with its execution's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CacheCall {
    /// The attempt of the run that asks: its key is that attempt's.
    pub attempt: u32,
    #[serde(flatten)]
    pub op: CacheOp,
}

/// The core's answer to a [`CacheOp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum CacheAnswer {
    /// The stored result, and the run that stored it (none from a local
    /// run's cache in memory).
    Hit {
        output: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
    },
    /// Nothing usable under the key: run the task.
    Miss,
    /// The result is stored.
    Stored,
    /// Not stored, or not asked, for a reason the run's log is given (a
    /// result over [`MAX_CACHED_RESULT_BYTES`], a run no longer held).
    Refused { reason: String },
}
