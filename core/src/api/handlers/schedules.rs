//! A deployment's schedules.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_proto::v1::{Schedule, ScheduleSpec};

use super::JsonBody;
use crate::api::{ApiResult, AppState};
use crate::store::StoreError;

pub async fn list_schedules(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Schedule>>> {
    Ok(Json(state.store.schedules(&flow, &name).await?))
}

/// A deployment's schedule by id, as listed.
async fn schedule_of(
    state: &AppState,
    flow: &str,
    name: &str,
    id: &str,
) -> ApiResult<Json<Schedule>> {
    let schedules = state.store.schedules(flow, name).await?;
    schedules
        .into_iter()
        .find(|s| s.id == id)
        .map(Json)
        .ok_or_else(|| StoreError::not_found(format!("schedule {id} of {flow}/{name}")).into())
}

pub async fn add_schedule(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<ScheduleSpec>,
) -> ApiResult<(StatusCode, Json<Schedule>)> {
    let id = state.store.add_schedule(&flow, &name, body).await?;
    state.scheduler.wake();
    Ok((StatusCode::CREATED, schedule_of(&state, &flow, &name, &id).await?))
}

pub async fn pause_schedule(
    State(state): State<AppState>,
    Path((flow, name, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Schedule>> {
    state.store.set_schedule_active(&flow, &name, &id, false).await?;
    state.scheduler.wake();
    schedule_of(&state, &flow, &name, &id).await
}

pub async fn resume_schedule(
    State(state): State<AppState>,
    Path((flow, name, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Schedule>> {
    state.store.set_schedule_active(&flow, &name, &id, true).await?;
    state.scheduler.wake();
    schedule_of(&state, &flow, &name, &id).await
}

pub async fn delete_schedule(
    State(state): State<AppState>,
    Path((flow, name, id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    state.store.delete_schedule(&flow, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
