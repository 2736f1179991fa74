//! The wasmtime sandbox that runs `baton:flow` components.
//!
//! This is the only crate that links wasmtime. It turns component bytes into
//! a [`LoadedFlow`] (compiled once, cached on disk by sha256, pre-linked for
//! microsecond instantiation) and runs it in a fresh instance per run with
//! nothing granted but what the [`RunRequest`] grants: no files but its own scratch directory, no network,
//! no environment; a memory cap, a wall-clock limit and cancellation through
//! epoch interruption. Every run ends in exactly one
//! [`RunOutcome`](baton_proto::v1::RunOutcome); the host survives all of them.

mod bindings;
mod cache;
mod commands;
mod host;
mod http;
mod limits;
mod run;
mod sandbox;
mod scratch;
mod stdio;
mod subflows;
mod task_cache;

pub use cache::Digest;
pub use commands::{CommandGrant, MAX_COMMAND_OUTPUT_BYTES};
pub use host::{Grants, ReportCollector, RunReporter, now};
pub use run::{RunLimits, RunRequest};
pub use sandbox::{LoadError, LoadedFlow, Sandbox, SandboxConfig, SandboxError, SandboxStats};
pub use subflows::{ChildAnswerFuture, NoSubflows, Subflows};
pub use task_cache::{
    CACHE_ANSWER_TIMEOUT, CacheAnswerFuture, MAX_MEMORY_TASK_CACHE_BYTES, MemoryTaskCache,
    TaskCache, key_digest,
};
pub use tokio_util::sync::CancellationToken;
