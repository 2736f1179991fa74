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
pub mod task_cache;
pub mod variables;
pub mod webhooks;

pub(super) use super::body::{JsonBody, raw_body};

use axum::http::{HeaderMap, StatusCode};

use super::{ApiFailure, ApiResult, AppState};

/// Refuses an execution's call (`what`) over the API unless its bearer
/// token is the key of attempt `attempt` of run `run_id`.
fn check_execution_key(
    state: &AppState,
    headers: &HeaderMap,
    (run_id, attempt): (&str, u32),
    what: &str,
) -> ApiResult<()> {
    let key = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match key.is_some_and(|key| state.store.is_execution_key(run_id, attempt, key)) {
        true => Ok(()),
        false => Err(ApiFailure::unauthorized(format!(
            "{what} needs the key of attempt {attempt} of run {run_id} as its bearer token"
        ))),
    }
}

/// What a command that got no answer from the database says: ask again.
fn ask_again() -> ApiFailure {
    ApiFailure::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the database could not answer; ask again",
    )
}

/// `sha256:<hex>` whether or not the prefix was given.
fn digest(raw: &str) -> String {
    if raw.starts_with("sha256:") { raw.to_owned() } else { format!("sha256:{raw}") }
}

/// `?dry_run=true` of a PUT: only check; write nothing.
#[derive(serde::Deserialize)]
pub struct DryRun {
    #[serde(default)]
    dry_run: bool,
}
