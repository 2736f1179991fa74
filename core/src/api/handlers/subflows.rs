//! A run's subflow calls over the API: from a runner with no link to its
//! agent (a Kubernetes pod), authorised by its execution's key, not by an
//! API token.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use baton_proto::v1::link::ChildRequest;
use baton_proto::v1::{ChildAnswer, ChildCall};

use super::{JsonBody, ask_again, check_execution_key};
use crate::api::{ApiResult, AppState};
use crate::store::Asker;

/// `POST /api/runs/{id}/children`: start a child of the run, or wait for
/// one, as attempt `attempt` of it (whose key is the bearer token).
pub async fn child_call(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(call): JsonBody<ChildCall>,
) -> ApiResult<Json<ChildAnswer>> {
    check_execution_key(&state, &headers, (&id, call.attempt), "a subflow call")?;
    let request = ChildRequest { run_id: id, attempt: call.attempt, op: call.op };
    state.subflows.answer(Asker::Execution, request).await.map(Json).ok_or_else(ask_again)
}
