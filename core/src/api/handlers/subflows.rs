//! A run's subflow calls over the API: from a runner with no link to its
//! agent (a Kubernetes pod), authorised by its execution's key, not by an
//! API token.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use baton_proto::v1::link::ChildRequest;
use baton_proto::v1::{ChildAnswer, ChildCall};

use super::JsonBody;
use crate::api::{ApiFailure, ApiResult, AppState};
use crate::store::Asker;

/// `POST /api/runs/{id}/children`: start a child of the run, or wait for
/// one, as attempt `attempt` of it (whose key is the bearer token).
pub async fn child_call(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(call): JsonBody<ChildCall>,
) -> ApiResult<Json<ChildAnswer>> {
    let key = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !key.is_some_and(|key| state.store.is_execution_key(&id, call.attempt, key)) {
        return Err(ApiFailure::unauthorized(format!(
            "a subflow call needs the key of attempt {} of run {id} as its bearer token",
            call.attempt
        )));
    }
    let request = ChildRequest { run_id: id, attempt: call.attempt, op: call.op };
    match state.subflows.answer(Asker::Execution, request).await {
        Some(answer) => Ok(Json(answer)),
        None => Err(ApiFailure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database could not answer; ask again",
        )),
    }
}
