//! The Baton agent: connects to the core over QUIC, takes the runs it is
//! assigned and executes them through an execution backend (`backend`: one
//! trait, one module per backend: `wasm`, the WebAssembly sandbox,
//! [`sandbox`], the `baton-sandbox` crate, kept separate because it is the
//! only crate that links wasmtime and is slow to build; `process`, a child
//! process per run running [`runner`]; `container`, a container per run
//! through the Docker Engine API, [`engine`]; `kubernetes`, a Job per run),
//! streaming their events back.
//!
//! [`Agent::start`] is the entry point. [`tls`] pins the core's CA to the
//! token's fingerprint; [`outbox`] keeps events until the core acknowledges
//! them, so they survive a reconnect.

mod agent;
mod asking;
mod backend;
mod cores;
mod fetch;
mod metrics;
pub mod outbox;
pub mod runner;
mod runs;
mod session;
pub mod tls;
mod traces;

pub use agent::{
    Agent, AgentConfig, AgentError, BackendConfig, DEFAULT_CACHE_MAX_BYTES, LinkError,
};
pub use backend::container::engine;
pub use backend::labels;
pub use baton_sandbox as sandbox;
pub use cores::CoreAddresses;
