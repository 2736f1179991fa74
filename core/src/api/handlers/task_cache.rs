//! A run's task cache over the API: from a runner with no link to its
//! agent (a Kubernetes pod), authorised by its execution's key, not by an
//! API token.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use baton_proto::v1::link::CacheRequest;
use baton_proto::v1::{CacheAnswer, CacheCall};

use super::{JsonBody, ask_again, check_execution_key};
use crate::api::{ApiResult, AppState};
use crate::store::Asker;
use crate::task_cache;

/// `POST /api/runs/{id}/task-cache`: look up or store a task's result in
/// the run's deployment's cache, as attempt `attempt` of the run (whose
/// key is the bearer token).
pub async fn cache_call(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(call): JsonBody<CacheCall>,
) -> ApiResult<Json<CacheAnswer>> {
    check_execution_key(&state, &headers, (&id, call.attempt), "a task cache call")?;
    let request = CacheRequest { run_id: id, attempt: call.attempt, op: call.op };
    task_cache::answer(&state.store, Asker::Execution, request)
        .await
        .map(Json)
        .ok_or_else(ask_again)
}
