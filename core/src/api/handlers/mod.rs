//! The API's handlers, one module per resource; each turns HTTP into a
//! store or command call and back. What several of them share lives here.

pub mod agents;
pub mod api_tokens;
pub mod artifacts;
pub mod automations;
pub mod deployments;
pub mod events;
pub mod logs;
pub mod pools;
pub mod runs;
pub mod schedules;
pub mod secrets;
pub mod service;
pub mod subflows;
pub mod variables;
pub mod webhooks;

pub(super) use super::body::{JsonBody, raw_body};

/// `sha256:<hex>` whether or not the prefix was given.
fn digest(raw: &str) -> String {
    if raw.starts_with("sha256:") { raw.to_owned() } else { format!("sha256:{raw}") }
}
