//! The Baton core: the server that holds deployments, flow runs and their
//! states.
//!
//! - [`store`]: SQLite or PostgreSQL through one set of queries; knows no HTTP.
//! - [`orchestration`]: the run state machine and its rules; pure.
//! - [`api`]: the REST API (axum); knows no SQL.
//! - [`server`]: `baton server start`: store, API and background loops.
//! - [`secrets`]: sealing secrets at rest.
//! - [`link`]: the QUIC gateway agents connect to: TLS identity, tokens,
//!   sessions, component fetches.
//! - [`dispatch`]: which agent gets which due run; crash detection.

pub mod api;
pub mod automations;
pub mod dispatch;
pub mod feed;
pub mod hooks;
pub mod link;
pub mod metrics;
pub mod orchestration;
pub mod prepare;
pub mod schedule;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod store;
pub mod subflows;
pub mod task_cache;
mod traces;
